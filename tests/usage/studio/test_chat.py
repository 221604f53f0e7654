"""Chat turns end to end against a real OpenAI-compatible server on loopback (tests/usage/studio/fake_openai.py):
held at the estimate, streamed into the turn, captured at the provider's tokens, released on failure, timeout or a
stop before anything was written, and never overspent by concurrent turns."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import ledger
from billing.models import Hold, HoldStatus
from billing.reconcile import reconcile
from orgs.models import Organization
from tests.concurrency import run_together
from tests.usage.conftest import MeteredWorkspace, make_metered_workspace
from tests.usage.studio.conftest import openai_price
from usage.models import UsageEvent, UsageStatus
from usage.services import holds_expire
from usage.studio.models import ChatThread, ChatTurn, TurnStatus
from usage.studio.pricing import chat_units
from usage.studio.services import chat_turn_key, chat_turn_run, chat_turn_start, chat_turn_stop, chat_turns_abandon
from workspaces.models import HistoryItem
from workspaces.services import member_remove


def available(metered: MeteredWorkspace) -> int:
    return ledger.available_credits(metered.workspace, Organization.objects.get(pk=metered.organization.pk))


def start(metered: MeteredWorkspace, prompt: str = "Summarise our launch plan", thread: ChatThread | None = None):
    """A turn held and queued; the test runs it (`chat_turn_run`), as the Celery worker would."""
    return chat_turn_start(
        workspace=metered.workspace, user=metered.member, price=openai_price(), prompt=prompt, thread=thread
    )


@pytest.mark.django_db
def test_a_turn_streams_is_captured_at_the_actual_tokens_and_lands_in_the_thread(studio, fake_openai, settings):
    settings.STUDIO_CHAT_MAX_TOKENS = 5000  # held: 6 units of 1k tokens
    turn = start(studio)
    event = UsageEvent.objects.get(pk=turn.usage_event_id)
    assert (event.status, event.units, event.credits) == (UsageStatus.HELD, 6, 30)
    assert event.idempotency_key == chat_turn_key(turn.pk)
    assert available(studio) == 10_000 - 30

    chat_turn_run(turn_id=turn.pk)

    turn.refresh_from_db()
    assert turn.status == TurnStatus.DONE
    assert turn.reply == "".join(f"word{i} " for i in range(10))
    assert (turn.prompt_tokens, turn.completion_tokens) == (1500, 700)  # the server's usage chunk
    assert turn.credits == 3 * 5  # 2,200 tokens: 3 units of gpt-4o
    event.refresh_from_db()
    assert (event.status, event.units, event.credits) == (UsageStatus.CAPTURED, 3, 15)
    assert available(studio) == 10_000 - 15
    item = HistoryItem.objects.get(usage_event_id=event.pk)
    assert (item.tool, item.model, item.credits, item.prompt) == ("chat", "gpt-4o", 15, "Summarise our launch plan")
    assert item.output_text == turn.reply
    assert item.metadata["thread_id"] == turn.thread_id
    request = fake_openai.behaviour.requests[-1]
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "fake-large"  # the price's provider model
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert reconcile() == []


@pytest.mark.django_db
def test_the_threads_context_is_sent_with_the_next_message(studio, fake_openai):
    first = start(studio, "What is our budget?")
    chat_turn_run(turn_id=first.pk)
    second = start(studio, "And the deadline?", thread=first.thread)
    chat_turn_run(turn_id=second.pk)
    messages = fake_openai.behaviour.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "What is our budget?"
    assert messages[2]["content"].startswith("word0")
    assert messages[3]["content"] == "And the deadline?"
    assert ChatTurn.objects.filter(thread=first.thread).count() == 2


@pytest.mark.django_db
def test_a_run_delivered_twice_charges_once(studio, fake_openai):
    turn = start(studio)
    chat_turn_run(turn_id=turn.pk)
    chat_turn_run(turn_id=turn.pk)  # a redelivered task: the turn is claimed already
    assert len(fake_openai.behaviour.requests) == 1
    assert UsageEvent.objects.get(pk=turn.usage_event_id).status == UsageStatus.CAPTURED
    assert HistoryItem.objects.count() == 1
    assert reconcile() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "The model's server failed (HTTP 500). Nothing was charged."),
        ("bad_request", "The model refused this request: This prompt is not allowed. Nothing was charged."),
        ("timeout", "The model took too long to answer. Nothing was charged; please try again."),
        ("stall", "The model took too long to answer. Nothing was charged; please try again."),
    ],
)
def test_a_failure_or_timeout_releases_the_hold_and_charges_nothing(studio, fake_openai, mode, message):
    fake_openai.behaviour.mode = mode
    turn = start(studio)
    assert available(studio) < 10_000
    chat_turn_run(turn_id=turn.pk)
    turn.refresh_from_db()
    assert (turn.status, turn.error, turn.credits) == (TurnStatus.FAILED, message, 0)
    event = UsageEvent.objects.get(pk=turn.usage_event_id)
    assert (event.status, event.credits) == (UsageStatus.RELEASED, 0)
    assert Hold.objects.get(pk=event.hold_id).status == HoldStatus.RELEASED
    assert available(studio) == 10_000
    assert not HistoryItem.objects.exists()
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_a_stop_mid_stream_charges_only_what_was_produced(fake_openai, settings):
    settings.STUDIO_CHAT_MAX_TOKENS = 5000  # held: 6 units
    metered = make_metered_workspace()
    fake_openai.behaviour.tokens = [f"t{i} " for i in range(400)]
    fake_openai.behaviour.token_delay = 0.01
    stopped: list[bool] = []

    def stopper() -> None:
        """Another request: once some of the reply is in the turn, press Stop."""
        deadline = time.monotonic() + 10
        turn = None
        while time.monotonic() < deadline:
            turn = ChatTurn.objects.filter(reply__gt="").first()
            if turn is not None:
                break
            time.sleep(0.02)
        stopped.append(turn is not None and chat_turn_stop(turn=turn))
        connections.close_all()

    pressing = threading.Thread(target=stopper)
    pressing.start()
    turn = start(metered, "Write a long essay")  # eager: the run follows the commit, in this thread
    pressing.join(20)
    assert stopped == [True]

    turn.refresh_from_db()
    assert turn.status == TurnStatus.STOPPED
    produced = turn.reply.split()
    assert 0 < len(produced) < 400
    assert turn.completion_tokens == len(produced)  # counted as the chunks received
    assert turn.credits == 5 * chat_units(turn.total_tokens) < 30
    event = UsageEvent.objects.get(pk=turn.usage_event_id)
    assert (event.status, event.credits) == (UsageStatus.CAPTURED, turn.credits)
    assert available(metered) == 10_000 - turn.credits
    assert HistoryItem.objects.get(usage_event_id=event.pk).metadata["stopped"] is True
    assert reconcile() == []


@pytest.mark.django_db
def test_a_stop_before_the_run_releases_everything(studio, fake_openai):
    turn = start(studio)
    chat_turn_stop(turn=turn)
    chat_turn_run(turn_id=turn.pk)
    turn.refresh_from_db()
    assert (turn.status, turn.credits) == (TurnStatus.STOPPED, 0)
    assert fake_openai.behaviour.requests == []
    assert available(studio) == 10_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_turns_against_a_nearly_empty_balance_never_overspend(fake_openai):
    metered = make_metered_workspace(credits=25)  # gpt-4o holds 5 credits a turn: five fit
    openai_price()
    fake_openai.behaviour.prompt_tokens, fake_openai.behaviour.completion_tokens = 10, 10

    def sender(index: int):
        def worker(go):
            go()
            try:
                turn = start(metered, f"Question {index}")  # eager: the run follows the commit
            except ledger.CreditLimitReached as refusal:
                return refusal.limit
            return ChatTurn.objects.get(pk=turn.pk).status

        return worker

    results = run_together([sender(i) for i in range(8)])
    assert results.count(TurnStatus.DONE) == 5, results
    assert results.count("workspace_balance") + results.count("pool") == 3, results
    assert available(metered) == 0
    assert sum(UsageEvent.objects.filter(status=UsageStatus.CAPTURED).values_list("credits", flat=True)) == 25
    assert ChatTurn.objects.count() == 5  # a refused turn leaves nothing behind
    assert reconcile() == []


# --- web ---------------------------------------------------------------------------------------------------------


def _studio_url(metered: MeteredWorkspace, name: str = "studio:chat", **kwargs: object) -> str:
    return reverse(name, kwargs={"org_slug": metered.organization.slug, "ws_slug": metered.workspace.slug, **kwargs})


@pytest.mark.django_db
def test_a_member_sends_a_message_and_reads_the_reply(client, studio, fake_openai, django_capture_on_commit_callbacks):
    openai_price()
    client.force_login(studio.member)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_studio_url(studio, "studio:chat_turn_start"), {"price": "gpt-4o", "prompt": "Hi"})
    turn = ChatTurn.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/studio/chat/{turn.thread_id}/#turn-{turn.pk}")
    page = client.get(response["Location"])
    assert "word9" in page.content.decode()
    partial = client.get(
        _studio_url(studio, "studio:chat_turn", thread_id=turn.thread_id, turn_id=turn.pk),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="chat-live",
    )
    body = partial.content.decode()
    assert "<html" not in body
    assert f'id="turn-{turn.pk}"' in body
    assert "hx-trigger" not in body


@pytest.mark.django_db
def test_an_unfinished_turn_polls_until_done(client, studio):
    turn = chat_turn_start(
        workspace=studio.workspace, user=studio.member, price=openai_price(), prompt="Hi"
    )  # not run: the on-commit task never fires inside the test's transaction
    client.force_login(studio.member)
    body = client.get(_studio_url(studio, "studio:chat_thread", thread_id=turn.thread_id)).content.decode()
    assert 'id="chat-live"' in body
    assert 'hx-trigger="every 500ms"' in body
    assert "Stop</button>" in body


@pytest.mark.django_db
def test_the_poll_that_sees_the_turn_settled_updates_the_balance_and_reprices(client, studio, fake_openai, settings):
    settings.STUDIO_CHAT_MAX_TOKENS = 5000  # held: 30 credits
    turn = start(studio)
    client.force_login(studio.member)
    url = _studio_url(studio, "studio:chat_turn", thread_id=turn.thread_id, turn_id=turn.pk)
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "chat-live"}
    live = client.get(url, **htmx)
    assert 'id="studio-balance"' not in live.content.decode()  # still held: nothing settled to show
    assert "HX-Trigger" not in live

    chat_turn_run(turn_id=turn.pk)
    turn.refresh_from_db()
    settled = client.get(url, **htmx)
    body = settled.content.decode()
    assert turn.credits == 15  # 2,200 tokens of gpt-4o, below the 30 held
    assert f'data-credits="{turn.credits}"' in body
    assert f'<strong id="studio-balance" hx-swap-oob="true">{10_000 - turn.credits:,}</strong>' in body
    assert json.loads(settled["HX-Trigger"]) == {"change": {"target": "#id_price"}}  # the composer re-prices
    # Without htmx (JavaScript off) the page is whole and carries no out-of-band fragment.
    assert "hx-swap-oob" not in client.get(url).content.decode()


@pytest.mark.django_db
def test_a_follow_up_is_priced_and_sent_with_the_threads_model(client, studio, fake_openai):
    turn = start(studio)  # gpt-4o, which is not the first chat model of the list
    chat_turn_run(turn_id=turn.pk)
    client.force_login(studio.member)
    body = client.get(_studio_url(studio, "studio:chat_thread", thread_id=turn.thread_id)).content.decode()
    assert '<option value="gpt-4o" selected>' in body
    assert "(gpt-4o, 5 per 1,000 tokens" in body


def test_studio_tasks_go_to_their_own_queue_in_production():
    """base.py routes the Studio's tasks to `studio` (a thread-pool worker); everything else stays on the default."""
    from celery import Celery

    from qolaba.settings import base

    app = Celery("routes", set_as_current=False)
    app.conf.update(task_routes=base.CELERY_TASK_ROUTES, task_default_queue=base.CELERY_TASK_DEFAULT_QUEUE)
    route = app.amqp.router.route
    assert route({}, "usage.studio.tasks.chat_turn_run_task")["queue"].name == "studio"
    assert route({}, "usage.tasks.holds_expire_run")["queue"].name == "qolaba"


@pytest.mark.django_db
def test_a_refusal_says_which_limit_and_offers_credits_to_admins(client, fake_openai):
    metered = make_metered_workspace(credits=0)
    openai_price()
    client.force_login(metered.owner)
    response = client.post(_studio_url(metered, "studio:chat_turn_start"), {"price": "gpt-4o", "prompt": "Hi"})
    body = response.content.decode()
    assert response.status_code == 402
    assert "has 0 credits left" in body
    assert "Buy credits" in body
    assert not ChatThread.objects.exists()
    client.force_login(metered.member)
    body = client.post(_studio_url(metered, "studio:chat_turn_start"), {"price": "gpt-4o", "prompt": "Hi"}).content
    assert b"Buy credits" not in body
    assert b"Ask an Owner or Admin" in body


@pytest.mark.django_db
def test_viewers_removed_members_and_other_workspaces_are_refused(client, studio):
    turn = chat_turn_start(workspace=studio.workspace, user=studio.member, price=openai_price(), prompt="Hi")
    thread_url = _studio_url(studio, "studio:chat_thread", thread_id=turn.thread_id)
    client.force_login(studio.viewer)
    page = client.get(_studio_url(studio)).content.decode()
    assert "Read-only." in page
    assert "cannot run its tools" in page
    assert "Send</button>" not in page
    assert client.get(thread_url).status_code == 200
    refused = client.post(_studio_url(studio, "studio:chat_turn_start"), {"price": "gpt-4o", "prompt": "Hi"})
    assert refused.status_code == 403
    assert b"cannot run its tools" in refused.content
    assert ChatTurn.objects.count() == 1

    other = make_metered_workspace()
    client.force_login(other.member)
    assert client.get(thread_url).status_code == 404
    foreign = reverse(
        "studio:chat_thread",
        kwargs={"org_slug": other.organization.slug, "ws_slug": other.workspace.slug, "thread_id": turn.thread_id},
    )
    assert client.get(foreign).status_code == 404  # another workspace's thread under one's own workspace

    membership = studio.organization.memberships.get(user=studio.member)
    member_remove(membership=membership, actor=studio.owner)
    client.force_login(studio.member)
    assert client.get(thread_url).status_code == 404
    assert client.post(_studio_url(studio, "studio:chat_turn_start"), {"prompt": "x"}).status_code == 404


@pytest.mark.django_db
def test_rename_delete_and_search_threads(client, studio):
    turn = chat_turn_start(workspace=studio.workspace, user=studio.member, price=openai_price(), prompt="Budget plan")
    client.force_login(studio.member)
    client.post(_studio_url(studio, "studio:chat_thread_rename", thread_id=turn.thread_id), {"title": "Q3 budget"})
    assert ChatThread.objects.get().title == "Q3 budget"
    assert b"Q3 budget" in client.get(_studio_url(studio) + "?q=q3").content
    assert b"Q3 budget" not in client.get(_studio_url(studio) + "?q=video").content
    client.post(_studio_url(studio, "studio:chat_thread_delete", thread_id=turn.thread_id))
    assert ChatThread.objects.get().deleted_at is not None
    assert client.get(_studio_url(studio, "studio:chat_thread", thread_id=turn.thread_id)).status_code == 404


@pytest.mark.django_db
def test_the_price_endpoint_estimates_the_message_as_written(client, studio):
    client.force_login(studio.member)
    url = _studio_url(studio, "studio:chat_price")
    short = client.get(url, {"price": "gpt-4o", "prompt": "Hi"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="chat-price")
    assert b"up to 5 credits" in short.content
    assert b"<html" not in short.content
    long = client.get(url, {"price": "gpt-4o", "prompt": "x" * 8000})  # 2,000 tokens + the reply: 3 units
    assert b"up to 15 credits" in long.content


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["studio:chat", "studio:chat_thread"])
def test_studio_pages_make_the_same_queries_at_two_sizes(client, studio, django_assert_num_queries, url_name):
    price = openai_price()

    def grow(threads: int, turns: int) -> ChatThread:
        last = None
        for t in range(threads):
            last = ChatThread.objects.create(
                organization=studio.organization, workspace=studio.workspace, author=studio.member, title=f"T{t}"
            )
            for n in range(turns):
                ChatTurn.objects.create(
                    thread=last,
                    author=studio.member,
                    model=price.model,
                    provider=price.provider,
                    prompt=f"Q{n}",
                    reply=f"A{n}",
                    status=TurnStatus.DONE,
                    estimated_credits=5,
                    credits=5,
                )
        assert last is not None
        return last

    client.force_login(studio.member)
    counts = []
    for threads, turns in ((1, 1), (6, 5)):
        thread = grow(threads, turns)
        kwargs = {"thread_id": thread.pk} if url_name == "studio:chat_thread" else {}
        url = _studio_url(studio, url_name, **kwargs)
        client.get(url)  # warm the session and caches
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    with django_assert_num_queries(counts[0]):
        client.get(url)


@pytest.mark.django_db
def test_a_lost_run_is_released_by_the_sweeper_and_closed_never_charged(studio, settings):
    """A worker killed mid-stream: the turn stays `streaming`; past the hold's expiry the sweeper releases the hold
    and the turn is closed as interrupted, with nothing charged."""
    turn = start(studio)
    ChatTurn.objects.filter(pk=turn.pk).update(status=TurnStatus.STREAMING, reply="half a rep")
    later = turn.created_at + timedelta(seconds=settings.STUDIO_HOLD_TTL_SECONDS + 1)
    assert chat_turns_abandon(at=later) == 0  # the hold is still pending: not yet
    assert holds_expire(at=later) == 1
    assert chat_turns_abandon(at=later) == 1
    assert chat_turns_abandon(at=later) == 0  # run again (the next minute, or a redelivery): nothing more to do
    turn.refresh_from_db()
    assert (turn.status, turn.credits, turn.error) == (
        TurnStatus.FAILED,
        0,
        "The reply was interrupted. Nothing was charged.",
    )
    assert available(studio) == 10_000
    assert chat_turn_run(turn_id=turn.pk).status == TurnStatus.FAILED  # a late redelivery does nothing
    assert reconcile() == []
