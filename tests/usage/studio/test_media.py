"""The Studio's media tools (Image, Video, Speech, Music) end to end: held at the price list's estimate, run once by
the worker through a provider, captured exactly with the media stored and listed in History, or released (failure,
timeout, cancel, a lost worker) with nothing charged; and the pages, for every kind of person.

The provider is `MediaProvider` below (any implementation of `StudioProvider` will do): it is passed to
`studio_job_run` like the Celery task's price provider would be, or put in place of the demo's for the runs the
outbox starts (`demo_is`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import ledger
from billing.models import Hold, HoldStatus
from billing.reconcile import reconcile
from orgs.models import Organization
from tests.concurrency import run_together
from tests.usage.conftest import MeteredWorkspace, make_metered_workspace
from tests.usage.studio.media_provider import PNG, MediaProvider
from usage.catalog import prices_ensure_defaults
from usage.models import Price, Provider, UsageEvent, UsageStatus
from usage.refusals import UnknownPrice
from usage.services import holds_expire
from usage.studio import providers
from usage.studio.models import JobStatus, StudioJob
from usage.studio.pricing import media_units
from usage.studio.providers import ProviderError, ProviderTimeout
from usage.studio.services import (
    studio_job_cancel,
    studio_job_key,
    studio_job_run,
    studio_job_start,
    studio_jobs_abandon,
)
from usage.studio.tasks import studio_job_run_task
from workspaces.models import HistoryItem, history_storage
from workspaces.services import history_item_delete, member_remove


@pytest.fixture
def demo_is(monkeypatch) -> Callable[[MediaProvider], MediaProvider]:
    """Make the price list's `demo` provider this one, for the runs the outbox starts (views, concurrency)."""

    def install(provider: MediaProvider) -> MediaProvider:
        monkeypatch.setitem(providers.FACTORIES, Provider.DEMO, lambda: provider)
        return provider

    return install


def available(metered: MeteredWorkspace) -> int:
    return ledger.available_credits(metered.workspace, Organization.objects.get(pk=metered.organization.pk))


def price(tool: str, model: str) -> Price:
    return Price.objects.get(tool=tool, model=model)


def start(metered: MeteredWorkspace, tool: str = "image", model: str = "flux-schnell", **options: Any) -> StudioJob:
    """A job held and queued (its run, queued on commit, never fires inside the test's transaction)."""
    prompt = options.pop("prompt", "A lighthouse at dawn")
    defaults = {"image": {"size": "1024x1024", "count": 1}, "video": {"seconds": 4}, "music": {"seconds": 10}}
    return studio_job_start(
        workspace=metered.workspace,
        user=metered.member,
        tool=tool,
        price=price(tool, model),
        prompt=prompt,
        options={**defaults.get(tool, {"voice": "nova"}), **options},
    )


# --- services ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_job_holds_the_estimate_captures_it_exactly_and_lands_in_history_with_its_media(studio):
    job = start(studio, size="1792x1024", count=2)  # wide counts twice: 4 units of 4 credits
    event = UsageEvent.objects.get(pk=job.usage_event_id)
    assert (event.status, event.units, event.credits) == (UsageStatus.HELD, 4, 16)
    assert event.idempotency_key == studio_job_key(job.pk)
    assert job.estimated_credits == 16
    assert available(studio) == 10_000 - 16

    provider = MediaProvider()
    studio_job_run(job_id=job.pk, provider=provider)

    assert provider.calls == [
        ("image", {"model": "flux-schnell", "prompt": "A lighthouse at dawn", "size": "1792x1024", "count": 2})
    ]
    job.refresh_from_db()
    assert (job.status, job.credits, job.progress, job.error) == (JobStatus.DONE, 16, 100, "")
    event.refresh_from_db()
    assert (event.status, event.units, event.credits) == (UsageStatus.CAPTURED, 4, 16)
    assert available(studio) == 10_000 - 16
    storage = history_storage()
    assert [output["content_type"] for output in job.outputs] == ["image/png", "image/png"]
    with storage.open(job.outputs[1]["name"]) as second:
        assert second.read() == PNG + b"A lighthouse at dawn:1792x1024:1"
    assert job.outputs[0]["name"].startswith(f"history/{studio.workspace.pk}/")
    item = HistoryItem.objects.get(usage_event_id=event.pk)
    assert item.pk == job.history_item_id
    assert (item.tool, item.model, item.credits, item.prompt) == ("image", "flux-schnell", 16, "A lighthouse at dawn")
    assert (item.media.name, item.media_content_type) == (job.outputs[0]["name"], "image/png")  # the same file
    assert item.metadata["job_id"] == job.pk
    assert (item.metadata["size"], item.metadata["count"], item.metadata["outputs"]) == ("1792x1024", 2, 2)
    assert reconcile() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tool", "model", "options", "content_type", "magic"),
    [
        ("image", "sdxl", {"size": "512x512", "count": 2}, "image/png", b"\x89PNG"),
        ("speech", "elevenlabs-v2", {"voice": "fable"}, "audio/wav", b"RIFF"),
        ("video", "kling-1.6", {"seconds": 2}, "video/mp4", b"ftyp"),
        ("music", "stable-audio", {"seconds": 10}, "audio/wav", b"RIFF"),
    ],
)
def test_the_demo_provider_runs_every_tool_into_history(studio, tool, model, options, content_type, magic):
    """The price list's own provider (`demo`, offline), chosen by the price as the worker does."""
    job = start(studio, tool, model, prompt="A short bright jingle", **options)
    studio_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.progress) == (JobStatus.DONE, "", 100)
    assert job.credits == job.estimated_credits > 0
    assert {output["content_type"] for output in job.outputs} == {content_type}
    assert len(job.outputs) == options.get("count", 1)
    item = HistoryItem.objects.get(pk=job.history_item_id)
    assert item.media_content_type == content_type
    assert magic in item.media.read()[:16]
    assert available(studio) == 10_000 - job.credits


@pytest.mark.django_db
def test_fewer_images_than_asked_charge_only_those(studio):
    job = start(studio, count=3)
    studio_job_run(job_id=job.pk, provider=MediaProvider(images=1))
    job.refresh_from_db()
    assert (job.status, job.credits, len(job.outputs)) == (JobStatus.DONE, 4, 1)
    assert available(studio) == 10_000 - 4
    assert reconcile() == []


@pytest.mark.django_db
def test_speech_is_priced_per_started_thousand_characters_and_keeps_its_audio(studio):
    text = "Welcome to the launch. " * 110  # 2,530 characters: 3 blocks of 1k at 8 credits
    job = start(studio, "speech", "elevenlabs-v2", prompt=text, voice="nova")
    assert job.estimated_credits == 24
    provider = MediaProvider()
    studio_job_run(job_id=job.pk, provider=provider)
    job.refresh_from_db()
    assert (job.status, job.credits) == (JobStatus.DONE, 24)
    assert provider.calls[0][1]["voice"] == "nova"
    item = HistoryItem.objects.get(pk=job.history_item_id)
    assert item.media_content_type == "audio/wav"
    assert item.media.read().startswith(b"RIFF")


@pytest.mark.django_db
def test_video_and_music_report_progress_and_are_priced_by_the_second(studio):
    video = start(studio, "video", "kling-1.6", seconds=6)  # 20 a second
    music = start(studio, "music", "stable-audio", seconds=60)  # 10 per started 30 seconds
    assert (video.estimated_credits, music.estimated_credits) == (120, 20)
    seen: list[int] = []
    provider = MediaProvider(during=lambda step: seen.append(StudioJob.objects.get(pk=video.pk).progress))
    studio_job_run(job_id=video.pk, provider=provider)
    assert seen == [0, 0, 25, 50]  # written as the provider reports it
    studio_job_run(job_id=music.pk, provider=MediaProvider())
    video.refresh_from_db()
    music.refresh_from_db()
    assert (video.status, video.credits, video.outputs[0]["content_type"]) == (JobStatus.DONE, 120, "video/mp4")
    assert (music.status, music.credits, music.outputs[0]["content_type"]) == (JobStatus.DONE, 20, "audio/wav")
    assert available(studio) == 10_000 - 140


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ProviderError("The model's server failed (HTTP 500). Nothing was charged."), "HTTP 500"),
        (ProviderTimeout("The model took too long to answer. Nothing was charged."), "took too long"),
        (RuntimeError("a bug"), "The model failed. Nothing was charged; please try again."),
    ],
)
def test_a_failure_or_timeout_releases_the_hold_and_charges_nothing(studio, error, message):
    job = start(studio, "video", "kling-1.6", seconds=4)
    assert available(studio) == 10_000 - 80
    studio_job_run(job_id=job.pk, provider=MediaProvider(error=error))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert message in job.error
    assert (job.credits, job.outputs) == (0, [])
    event = UsageEvent.objects.get(pk=job.usage_event_id)
    assert (event.status, event.credits) == (UsageStatus.RELEASED, 0)
    assert Hold.objects.get(pk=event.hold_id).status == HoldStatus.RELEASED
    assert available(studio) == 10_000
    assert not HistoryItem.objects.exists()
    assert reconcile() == []


@pytest.mark.django_db
def test_cancel_mid_job_stops_the_provider_releases_the_hold_and_charges_nothing(studio):
    job = start(studio, "video", "runway-gen3", seconds=10)  # 250 credits held

    def press_cancel(step: int) -> None:
        if step == 2:  # another request, half way through
            assert studio_job_cancel(job=StudioJob.objects.get(pk=job.pk)) is True

    provider = MediaProvider(steps=10, during=press_cancel)
    studio_job_run(job_id=job.pk, provider=provider)
    job.refresh_from_db()
    assert (job.status, job.credits, job.outputs) == (JobStatus.CANCELLED, 0, [])
    assert 0 < job.progress < 100
    assert "Nothing was charged" in job.error
    assert UsageEvent.objects.get(pk=job.usage_event_id).status == UsageStatus.RELEASED
    assert available(studio) == 10_000
    assert not HistoryItem.objects.exists()
    assert reconcile() == []


@pytest.mark.django_db
def test_cancel_before_the_run_releases_at_once_and_the_run_then_does_nothing(studio):
    job = start(studio, "music", "suno-v4")
    assert available(studio) == 10_000 - 30
    assert studio_job_cancel(job=job) is True
    assert available(studio) == 10_000  # back before any worker picked it up
    provider = MediaProvider()
    assert studio_job_run(job_id=job.pk, provider=provider).status == JobStatus.CANCELLED
    assert provider.calls == []
    assert studio_job_cancel(job=job) is False  # finished: nothing to cancel
    assert reconcile() == []


@pytest.mark.django_db
def test_a_run_delivered_twice_runs_once(studio, demo_is):
    provider = demo_is(MediaProvider())
    job = start(studio)
    assert [studio_job_run_task.apply(args=[job.pk]).get() for _ in range(2)] == [JobStatus.DONE, JobStatus.DONE]
    assert len(provider.calls) == 1
    assert HistoryItem.objects.count() == 1
    assert UsageEvent.objects.get(pk=job.usage_event_id).status == UsageStatus.CAPTURED
    assert available(studio) == 10_000 - 4
    assert reconcile() == []


@pytest.mark.django_db
def test_a_lost_job_is_released_by_the_sweeper_and_closed_never_charged(studio, settings):
    """A worker killed mid-job: the job stays `running`; past the hold's expiry the sweeper releases the hold and
    the job is closed as interrupted, with nothing charged; a late redelivery does nothing."""
    job = start(studio, "video", "kling-1.6", seconds=2)
    StudioJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progress=40)
    later = job.created_at + timedelta(seconds=settings.STUDIO_HOLD_TTL_SECONDS + 1)
    assert studio_jobs_abandon(at=later) == 0  # the hold is still pending: not yet
    assert holds_expire(at=later) == 1
    assert studio_jobs_abandon(at=later) == 1
    assert studio_jobs_abandon(at=later) == 0  # run again (the next minute, or a redelivery): nothing more to do
    job.refresh_from_db()
    assert (job.status, job.credits, job.error) == (
        JobStatus.FAILED,
        0,
        "The generation was interrupted. Nothing was charged.",
    )
    provider = MediaProvider()
    assert studio_job_run(job_id=job.pk, provider=provider).status == JobStatus.FAILED
    assert provider.calls == []
    assert available(studio) == 10_000
    assert not HistoryItem.objects.exists()
    assert reconcile() == []


@pytest.mark.django_db
def test_a_run_that_outlives_its_hold_is_not_charged_and_keeps_no_files(studio, settings):
    job = start(studio)
    Hold.objects.filter(pk=UsageEvent.objects.get(pk=job.usage_event_id).hold_id).update(
        expires_at=job.created_at - timedelta(seconds=1)
    )
    studio_job_run(job_id=job.pk, provider=MediaProvider())
    job.refresh_from_db()
    assert (job.status, job.credits, job.outputs) == (JobStatus.FAILED, 0, [])
    assert not HistoryItem.objects.exists()
    folder = f"history/{studio.workspace.pk}"
    assert not history_storage().exists(folder) or not any(history_storage().listdir(folder)[1])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tool", "options", "field"),
    [
        ("image", {"size": "999x999", "count": 1}, "size"),
        ("image", {"size": "1024x1024", "count": 9}, "count"),
        ("video", {"seconds": 7}, "seconds"),
        ("music", {"seconds": "long"}, "seconds"),
        ("speech", {"voice": "robot"}, "voice"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(studio, tool, options, field):
    model = {"image": "flux-schnell", "video": "kling-1.6", "music": "suno-v4", "speech": "elevenlabs-v2"}[tool]
    with pytest.raises(ValidationError) as refused:
        studio_job_start(
            workspace=studio.workspace,
            user=studio.member,
            tool=tool,
            price=price(tool, model),
            prompt="Something",
            options=options,
        )
    assert field in refused.value.message_dict
    assert not StudioJob.objects.exists()
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_a_price_of_another_tool_or_that_cannot_be_estimated_is_refused(studio):
    for tool, model in (("image", "gpt-4o"), ("speech", "whisper")):
        chat_or_minutes = Price.objects.get(model=model)
        with pytest.raises(UnknownPrice):
            studio_job_start(
                workspace=studio.workspace,
                user=studio.member,
                tool=tool,
                price=chat_or_minutes,
                prompt="x",
                options={"size": "1024x1024", "count": 1, "voice": "nova"},
            )
    assert not StudioJob.objects.exists()


@pytest.mark.django_db
def test_units_follow_the_price_lists_unit():
    prices_ensure_defaults()  # a transactional test before this one may have emptied the table
    image, song, clip = price("image", "sdxl"), price("music", "suno-v4"), price("video", "kling-1.6")
    assert media_units(price=image, prompt="", options={"size": "1024x1792", "count": 3}) == 6
    assert media_units(price=song, prompt="", options={"seconds": 60}) == 1  # a song is one unit
    assert media_units(price=clip, prompt="", options={"seconds": 10}) == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_against_a_nearly_empty_balance_never_overspend(demo_is):
    metered = make_metered_workspace(credits=20)  # flux-schnell holds 4 credits an image: five fit
    demo_is(MediaProvider())

    def starter(index: int):
        def worker(go):
            go()
            try:
                job = start(metered, prompt=f"Picture {index}")  # eager: the run follows the commit
            except ledger.CreditLimitReached as refusal:
                return refusal.limit
            return StudioJob.objects.get(pk=job.pk).status

        return worker

    results = run_together([starter(i) for i in range(8)])
    assert results.count(JobStatus.DONE) == 5, results
    assert results.count("workspace_balance") + results.count("pool") == 3, results
    assert available(metered) == 0
    assert sum(UsageEvent.objects.filter(status=UsageStatus.CAPTURED).values_list("credits", flat=True)) == 20
    assert StudioJob.objects.count() == 5  # a refused start leaves nothing behind
    assert HistoryItem.objects.count() == 5
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_cancel_from_another_connection_stops_a_running_video(demo_is):
    """The worker runs the video in its own connection (here: the eager run after the start's commit, in a thread);
    the member's Cancel, from another connection, stops it at its next progress report and gives the credits back."""
    metered = make_metered_workspace()
    demo_is(MediaProvider(steps=200, delay=0.02))
    started: list[StudioJob] = []

    def worker() -> None:
        try:
            started.append(start(metered, "video", "kling-1.6", seconds=10))
        finally:
            connections.close_all()

    running = threading.Thread(target=worker)
    running.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not StudioJob.objects.filter(progress__gte=5).exists():
        time.sleep(0.02)
    job = StudioJob.objects.get()
    assert studio_job_cancel(job=job) is True
    running.join(20)
    assert started
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert 5 <= job.progress < 99
    assert available(metered) == 10_000
    assert reconcile() == []


# --- web ---------------------------------------------------------------------------------------------------------


def url(metered: MeteredWorkspace, name: str, **kwargs: object) -> str:
    return reverse(
        f"studio:{name}", kwargs={"org_slug": metered.organization.slug, "ws_slug": metered.workspace.slug, **kwargs}
    )


@pytest.mark.django_db
def test_a_member_generates_images_and_sees_them_in_place_and_in_history(
    client, studio, demo_is, django_capture_on_commit_callbacks
):
    demo_is(MediaProvider())
    client.force_login(studio.member)
    form = {"price": "flux-schnell", "prompt": "Two foxes", "size": "1024x1024", "count": "2"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(studio, "image_run"), form)
    job = StudioJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url(studio, "image") + f"#job-{job.pk}"
    page = client.get(url(studio, "image")).content.decode()
    first = url(studio, "job_media", job_id=job.pk, index=0)
    second = url(studio, "job_media", job_id=job.pk, index=1)
    assert f'<img src="{first}"' in page
    assert f'<img src="{second}"' in page
    assert f'href="{second}?download=1"' in page
    assert "8 credits" in page
    assert "In History" in page
    media = client.get(second)
    assert media.status_code == 200
    assert media["Content-Type"] == "image/png"
    assert b"".join(media.streaming_content) == PNG + b"Two foxes:1024x1024:1"
    assert "attachment" in client.get(second + "?download=1")["Content-Disposition"]
    assert client.get(url(studio, "job_media", job_id=job.pk, index=2)).status_code == 404
    history = reverse(
        "workspaces:history_media",
        kwargs={"org_slug": studio.organization.slug, "ws_slug": studio.workspace.slug, "item_id": job.history_item_id},
    )
    assert b"".join(client.get(history).streaming_content) == PNG + b"Two foxes:1024x1024:0"
    detail = client.get(history.removesuffix("media/")).content.decode()
    assert f'href="{url(studio, "job", job_id=job.pk)}">Open the generation in the Studio</a>' in detail
    assert "(all 2 images)" in detail
    # Deleted from History: gone from the Studio too.
    history_item_delete(item=HistoryItem.objects.get(pk=job.history_item_id), actor=studio.owner)
    assert client.get(second).status_code == 404
    assert "Its History item was deleted" in client.get(url(studio, "image")).content.decode()


@pytest.mark.django_db
def test_speech_and_video_results_are_playable_in_place(client, studio, demo_is, django_capture_on_commit_callbacks):
    demo_is(MediaProvider())
    client.force_login(studio.member)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url(studio, "speech_run"), {"price": "elevenlabs-v2", "prompt": "Hello team", "voice": "onyx"})
        client.post(url(studio, "video_run"), {"price": "kling-1.6", "prompt": "Waves", "seconds": "2"})
    speech, video = StudioJob.objects.order_by("pk")
    assert f'<audio controls preload="metadata" src="{url(studio, "job_media", job_id=speech.pk, index=0)}"' in (
        client.get(url(studio, "speech")).content.decode()
    )
    assert f'<video controls preload="metadata" src="{url(studio, "job_media", job_id=video.pk, index=0)}"' in (
        client.get(url(studio, "video")).content.decode()
    )


@pytest.mark.django_db
def test_a_running_video_polls_every_second_and_cancel_gives_the_credits_back(client, studio):
    job = start(studio, "video", "kling-1.6", seconds=4)
    client.force_login(studio.member)
    hx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": f"job-{job.pk}"}
    seen: dict[str, Any] = {}

    def member_watches_then_cancels(step: int) -> None:
        """The member's browser, while the worker runs the video."""
        if step == 2:
            seen["page"] = client.get(url(studio, "video")).content.decode()
            seen["fragment"] = client.get(url(studio, "job", job_id=job.pk), **hx).content.decode()
            seen["cancel"] = client.post(url(studio, "job_cancel", job_id=job.pk)).status_code

    studio_job_run(job_id=job.pk, provider=MediaProvider(steps=4, during=member_watches_then_cancels))
    page, fragment = seen["page"], seen["fragment"]
    assert 'hx-trigger="every 1s"' in page
    assert 'value="25"' in page  # the progress reported so far
    assert "Cancel</button>" in page
    assert "Refresh</a>" in page  # without JavaScript
    assert "80 credits held" in page
    assert "<html" not in fragment
    assert 'hx-trigger="every 1s"' in fragment
    assert seen["cancel"] == 302

    job.refresh_from_db()
    assert (job.status, job.credits) == (JobStatus.CANCELLED, 0)
    finished = client.get(url(studio, "job", job_id=job.pk), **hx).content.decode()
    assert "hx-trigger" not in finished  # polling stops
    assert "Nothing was charged" in finished
    assert '<strong id="studio-balance">10,000</strong>' in client.get(url(studio, "video")).content.decode()


@pytest.mark.django_db
def test_cancel_of_a_waiting_job_releases_it_from_the_page(client, studio):
    job = start(studio, "music", "suno-v4")
    client.force_login(studio.member)
    client.post(url(studio, "job_cancel", job_id=job.pk))
    job.refresh_from_db()
    assert (job.status, job.credits) == (JobStatus.CANCELLED, 0)
    assert available(studio) == 10_000


@pytest.mark.django_db
def test_the_price_follows_the_options_live_and_without_javascript(client, studio):
    client.force_login(studio.member)
    hx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "media-price"}
    one = client.get(url(studio, "image_price"), {"price": "flux-pro", "size": "1024x1024", "count": "1"}, **hx)
    assert b"<html" not in one.content
    assert b"12 credits" in one.content
    wide = client.get(url(studio, "image_price"), {"price": "flux-pro", "size": "1792x1024", "count": "3"}, **hx)
    assert b"72 credits" in wide.content  # 3 wide images: 6 units of 12
    video = client.get(url(studio, "video_price"), {"price": "runway-gen3", "seconds": "8"}, **hx)
    assert b"200 credits" in video.content
    # Without JavaScript, "Update the price" posts the form and the page shows the price for what was picked.
    preview = client.post(url(studio, "video_run"), {"price": "runway-gen3", "seconds": "10", "preview": "1"})
    assert preview.status_code == 200
    assert "250 credits" in preview.content.decode()
    assert not StudioJob.objects.exists()


@pytest.mark.django_db
def test_bad_options_from_the_form_are_form_errors_and_nothing_is_written(client, studio):
    client.force_login(studio.member)
    response = client.post(url(studio, "image_run"), {"price": "flux-pro", "prompt": "x", "size": "9x9", "count": "1"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert (
        client.post(url(studio, "video_run"), {"price": "kling-1.6", "prompt": "", "seconds": "2"}).status_code == 400
    )
    assert (
        client.post(url(studio, "speech_run"), {"price": "whisper", "prompt": "x", "voice": "nova"}).status_code == 400
    )
    assert not StudioJob.objects.exists()
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_a_refusal_says_which_limit_and_offers_credits_to_admins(client):
    metered = make_metered_workspace(credits=0)
    client.force_login(metered.owner)
    form = {"price": "kling-1.6", "prompt": "Waves", "seconds": "2"}
    response = client.post(url(metered, "video_run"), form)
    body = response.content.decode()
    assert response.status_code == 402
    assert "has 0 credits left" in body
    assert "Buy credits" in body
    assert not StudioJob.objects.exists()
    client.force_login(metered.member)
    body = client.post(url(metered, "video_run"), form).content.decode()
    assert "Buy credits" not in body
    assert "Ask an Owner or Admin" in body


@pytest.mark.django_db
def test_viewers_read_only_removed_members_and_other_workspaces_refused(client, studio):
    job = start(studio, "video", "kling-1.6", seconds=2)
    StudioJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    form = {"price": "kling-1.6", "prompt": "Waves", "seconds": "2"}
    client.force_login(studio.viewer)
    page = client.get(url(studio, "video")).content.decode()
    assert "Read-only." in page
    assert "cannot run its tools" in page
    assert "Generate</button>" not in page
    assert "Cancel</button>" not in page
    assert f'id="job-{job.pk}"' in page  # sees the workspace's jobs
    for name in ("chat", "image", "speech", "music"):
        assert client.get(url(studio, name)).status_code == 200
    refused = client.post(url(studio, "video_run"), form)
    assert refused.status_code == 403
    assert b"cannot run its tools" in refused.content
    assert client.post(url(studio, "job_cancel", job_id=job.pk)).status_code == 403
    assert not StudioJob.objects.get(pk=job.pk).cancel_requested
    assert StudioJob.objects.count() == 1

    other = make_metered_workspace()
    client.force_login(other.member)
    assert client.get(url(studio, "job", job_id=job.pk)).status_code == 404
    assert client.get(url(other, "job", job_id=job.pk)).status_code == 404  # under one's own workspace
    assert client.get(url(other, "job_media", job_id=job.pk, index=0)).status_code == 404
    assert client.post(url(other, "job_cancel", job_id=job.pk)).status_code == 404
    assert str(job.pk) not in client.get(url(other, "video")).content.decode().split("job-list")[-1]

    member_remove(membership=studio.organization.memberships.get(user=studio.member), actor=studio.owner)
    client.force_login(studio.member)
    assert client.get(url(studio, "video")).status_code == 404
    assert client.get(url(studio, "job", job_id=job.pk)).status_code == 404
    assert client.post(url(studio, "video_run"), form).status_code == 404
    assert StudioJob.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("tool", ["image", "video", "speech", "music"])
def test_tool_pages_make_the_same_queries_at_two_sizes(client, studio, django_assert_num_queries, tool):
    model = {"image": "sdxl", "video": "kling-1.6", "music": "suno-v4", "speech": "elevenlabs-v2"}[tool]
    options = {"image": {"size": "1024x1024", "count": 2}, "speech": {"voice": "nova"}}.get(tool, {"seconds": 2})

    def grow(jobs: int) -> None:
        for n in range(jobs):
            StudioJob.objects.create(
                organization=studio.organization,
                workspace=studio.workspace,
                author=studio.member if n % 2 else studio.owner,
                tool=tool,
                model=model,
                provider="demo",
                prompt=f"P{n}",
                options=options,
                status=[JobStatus.DONE, JobStatus.RUNNING, JobStatus.FAILED][n % 3],
                estimated_credits=5,
                credits=5,
                outputs=[{"name": f"history/x/{n}.png", "content_type": "image/png"}],
                history_item_id=n + 1,
            )

    client.force_login(studio.member)
    counts = []
    for jobs in (1, 9):
        grow(jobs)
        client.get(url(studio, tool))  # warm the session and caches
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(studio, tool)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    with django_assert_num_queries(counts[0]):
        client.get(url(studio, tool))


@pytest.mark.django_db
def test_the_studio_lists_every_tool(client, studio):
    client.force_login(studio.member)
    page = client.get(url(studio, "chat")).content.decode()
    for name, label in (("image", "Image"), ("video", "Video"), ("speech", "Speech"), ("music", "Music")):
        assert f'href="{url(studio, name)}">{label}</a>' in page
