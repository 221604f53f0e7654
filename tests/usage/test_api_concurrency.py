"""The metering API under concurrency, on real PostgreSQL: committed data (transaction=True), one Django test
client per thread (so one database connection per thread, as separate web processes would have), released together
by a barrier, joined with a timeout.

- concurrent replays of one Idempotency-Key are answered once and charged once;
- concurrent charges with different keys against a small balance or limit never overspend, and are refused 402;
- a capture racing a release of one hold: exactly one wins, the other is 409 hold_not_pending.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing import ledger
from billing.models import AccountStripe, Hold, HoldStatus, LedgerTransaction, TransactionKind
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, credits_transfer, workspace_limit_set
from orgs.models import CreditMode, Organization
from tests.concurrency import run_together
from tests.usage.conftest import MeteredWorkspace, make_metered_workspace
from usage.fastpath import charge_fast
from usage.models import IdempotentRequest, UsageEvent, UsageStatus
from workspaces.models import HistoryItem, Workspace, api_key_parse

pytestmark = pytest.mark.django_db(transaction=True)

CHARGES = "/api/v1/charges"
HOLDS = "/api/v1/holds"


def poster(metered: MeteredWorkspace, path: str, body: dict[str, Any] | None, key: str | None):
    """A worker that sends one POST with its own client once released."""

    def worker(start):
        client = Client(raise_request_exception=False)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {metered.key}"}
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        start()
        response = client.post(path, data=json.dumps(body or {}), content_type="application/json", **headers)
        return response.status_code, response.content, response.get("Idempotent-Replayed")

    return worker


def available(metered: MeteredWorkspace, workspace: Workspace | None = None) -> int:
    organization = Organization.objects.get(pk=metered.organization.pk)
    return ledger.available_credits(workspace or metered.workspace, organization)


# --- concurrent replays of one key -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_concurrent_replays_of_one_key_are_answered_once_and_charged_once(path):
    metered = make_metered_workspace()
    body = {"member": metered.member.email, "tool": "image", "model": "flux-pro", "units": 2}
    body["history"] = {"prompt": "eight retries"}
    threads = 8
    answers = run_together([poster(metered, path, body, "one-key") for _ in range(threads)])

    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {201: threads}, answers
    bodies = {json.dumps(json.loads(content), sort_keys=True) for _, content, _ in answers}
    assert len(bodies) == 1, bodies
    replayed = Counter(flag for _, _, flag in answers)
    assert replayed == {None: 1, "true": threads - 1}, replayed

    event = UsageEvent.objects.get()
    assert json.loads(bodies.pop())["id"] == event.pk
    assert (event.idempotency_key, event.credits) == ("one-key", 24)
    assert available(metered) == 10_000 - 24
    assert IdempotentRequest.objects.count() == 1
    if path == CHARGES:
        assert LedgerTransaction.objects.filter(kind=TransactionKind.CHARGE).count() == 1
        assert HistoryItem.objects.get().prompt == "eight retries"
    else:
        assert Hold.objects.count() == 1
        assert not HistoryItem.objects.exists()
    assert reconcile() == []


def test_concurrent_replays_of_one_capture_capture_once():
    metered = make_metered_workspace()
    hold = (
        Client()
        .post(
            HOLDS,
            data=json.dumps({"member": metered.member.email, "tool": "video", "model": "kling-1.6", "units": 10}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="hold",
            HTTP_AUTHORIZATION=f"Bearer {metered.key}",
        )
        .json()
    )
    path = f"/api/v1/holds/{hold['id']}/capture"
    answers = run_together([poster(metered, path, {"units": 4}, "capture-key") for _ in range(8)])
    assert Counter(status for status, _, _ in answers) == {200: 8}, answers
    assert len({json.dumps(json.loads(content), sort_keys=True) for _, content, _ in answers}) == 1
    assert Counter(flag for _, _, flag in answers) == {None: 1, "true": 7}
    assert LedgerTransaction.objects.filter(kind=TransactionKind.CAPTURE).count() == 1
    assert HistoryItem.objects.count() == 1
    assert available(metered) == 10_000 - 80
    assert reconcile() == []


# --- different keys against a balance or a limit that allows only some ------------------------------------------

DEADLOCK = (
    "BUG: concurrent charges (different keys) against a nearly exhausted balance answer 500 (PostgreSQL "
    "'deadlock detected'): usage_charge and idempotent_answer run ledger.charge inside a transaction, so the "
    "one-statement charge's conditional UPDATE of a stripe keeps its row lock after failing its recheck, then the "
    "general path waits for the account's advisory debit lock (lock_for_debit) held by a collector that waits for "
    "that stripe. The one-statement charge assumes autocommit ('never waits while holding a lock')."
)


def _overspend_round(binding: str) -> None:
    price, cap = 12, 12 * 7 + 5  # room for exactly 7 of the 64 charges
    threads, per_thread = 16, 4
    metered = make_metered_workspace(credits=cap if binding == "pool" else 10_000)
    paying = metered.workspace
    if binding == "workspace_balance":
        organization = credit_mode_switch(
            organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner
        )
        primary = Workspace.objects.get(organization=organization, is_primary=True)
        credits_transfer(
            organization=organization, source=primary, target=metered.workspace, amount=cap, actor=metered.owner
        )
    elif binding == "member_monthly_limit":
        workspace_limit_set(workspace=metered.workspace, user=metered.member, monthly_limit=cap, actor=metered.owner)
    elif binding == "workspace_monthly_limit":
        workspace_limit_set(workspace=metered.workspace, user=None, monthly_limit=cap, actor=metered.owner)
    start_balance = available(metered, paying)
    body = {"member": metered.member.email, "tool": "image", "model": "flux-pro", "units": 1}

    def worker(index: int):
        def run(start):
            client = Client(raise_request_exception=False)
            answers = []
            start()
            for attempt in range(per_thread):
                response = client.post(
                    CHARGES,
                    data=json.dumps(body),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {metered.key}",
                    HTTP_IDEMPOTENCY_KEY=f"w{index}-{attempt}",
                )
                answers.append((response.status_code, response.content))
            return answers

        return run

    answers = [answer for result in run_together([worker(i) for i in range(threads)]) for answer in result]
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 402}, statuses
    successes = statuses[201]
    assert successes == cap // price  # never more, and every charge that could succeed did
    refusals = [json.loads(content)["error"] for status, content in answers if status == 402]
    assert {error["code"] for error in refusals} == {"insufficient_credits"}
    assert {error["limit"] for error in refusals} == {binding}
    assert all(0 <= error["available"] < price for error in refusals), refusals
    events = UsageEvent.objects.filter(workspace=metered.workspace)
    assert events.filter(status=UsageStatus.CAPTURED).count() == successes
    assert HistoryItem.objects.filter(workspace=metered.workspace).count() == successes
    assert IdempotentRequest.objects.filter(workspace=metered.workspace).count() == successes  # refusals: not stored
    assert sum(events.values_list("credits", flat=True)) == successes * price <= cap
    assert available(metered, paying) == start_balance - successes * price
    assert reconcile() == []


@pytest.mark.parametrize(
    "binding",
    [
        "pool",
        "workspace_balance",
        "member_monthly_limit",
        "workspace_monthly_limit",
    ],
)
def test_concurrent_charges_never_overspend_and_refusals_are_402(binding):
    """16 clients x 4 charges with their own keys, where only 7 fit; three rounds (the deadlock of the bug shows
    in nearly every round; one round alone can miss it)."""
    for _ in range(3):
        _overspend_round(binding)


# --- capture racing release ------------------------------------------------------------------------------------


def test_capture_racing_release_exactly_one_wins():
    metered = make_metered_workspace()
    rounds = 6
    client = Client()
    holds = []
    for index in range(rounds):
        response = client.post(
            HOLDS,
            data=json.dumps({"member": metered.member.email, "tool": "video", "model": "kling-1.6", "units": 5}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"hold-{index}",
            HTTP_AUTHORIZATION=f"Bearer {metered.key}",
        )
        holds.append(response.json()["id"])
    assert available(metered) == 10_000 - rounds * 100

    outcomes = Counter()
    for hold_id in holds:
        capture, release = run_together(
            [
                poster(metered, f"/api/v1/holds/{hold_id}/capture", {"units": 2}, f"cap-{hold_id}"),
                poster(metered, f"/api/v1/holds/{hold_id}/release", None, None),
            ]
        )
        statuses = (capture[0], release[0])
        assert statuses in {(200, 409), (409, 200)}, (capture, release)
        loser = capture if capture[0] == 409 else release
        assert json.loads(loser[1])["error"]["code"] == "hold_not_pending"
        event = UsageEvent.objects.get(pk=hold_id)
        hold = Hold.objects.get(pk=event.hold_id)
        if capture[0] == 200:
            outcomes["captured"] += 1
            assert (event.status, event.credits, hold.status) == (UsageStatus.CAPTURED, 40, HoldStatus.CAPTURED)
            assert HistoryItem.objects.filter(usage_event_id=hold_id).count() == 1
        else:
            outcomes["released"] += 1
            assert (event.status, event.credits, hold.status) == (UsageStatus.RELEASED, 0, HoldStatus.RELEASED)
            assert not HistoryItem.objects.filter(usage_event_id=hold_id).exists()
    assert available(metered) == 10_000 - 40 * outcomes["captured"]
    assert reconcile() == []


def test_two_captures_of_one_hold_with_different_keys_one_wins():
    metered = make_metered_workspace()
    hold_id = (
        Client()
        .post(
            HOLDS,
            data=json.dumps({"member": metered.member.email, "tool": "video", "model": "kling-1.6", "units": 5}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="hold",
            HTTP_AUTHORIZATION=f"Bearer {metered.key}",
        )
        .json()["id"]
    )
    path = f"/api/v1/holds/{hold_id}/capture"
    answers = run_together([poster(metered, path, {"units": 1 + i % 5}, f"capture-{i}") for i in range(6)])
    assert sorted(status for status, _, _ in answers) == [200] + [409] * 5, answers
    assert LedgerTransaction.objects.filter(kind=TransactionKind.CAPTURE).count() == 1
    assert HistoryItem.objects.count() == 1
    captured = UsageEvent.objects.get(pk=hold_id).credits
    assert available(metered) == 10_000 - captured
    assert reconcile() == []


# --- the one-statement charge never waits for a stripe another transaction holds --------------------------------


def _spread_over_stripes(account_id: int) -> list[int]:
    """Spread the account's balance evenly over its stripes (the sum, so the ledger, unchanged); their ids."""
    stripes = AccountStripe.objects.filter(account_id=account_id).order_by("stripe")
    total, count = sum(stripe.balance for stripe in stripes), len(stripes)
    for stripe in stripes:
        stripe.balance = total // count + (1 if stripe.stripe < total % count else 0)
        stripe.save(update_fields=["balance"])
    return [stripe.pk for stripe in stripes]


def _other_connection_locking(stripe_ids: list[int]) -> psycopg.Connection:
    other = psycopg.connect(**connection.get_connection_params())
    other.execute("SELECT id FROM billing_accountstripe WHERE id = ANY(%s) FOR UPDATE", [stripe_ids])
    return other


def _fast_charge(metered: MeteredWorkspace, key: str):
    prefix, secret_hash = api_key_parse(metered.key)
    return charge_fast(
        prefix=prefix,
        secret_hash=secret_hash,
        email=metered.member.email,
        tool="chat",
        model="gpt-4o-mini",
        units=1,
        idempotency_key=key,
        fingerprint="f" * 64,
        prompt="",
        output_text="",
        metadata={},
        created=timezone.now(),
    )


def test_a_charge_debits_a_free_stripe_instead_of_waiting_for_a_busy_one():
    metered = make_metered_workspace(credits=8_000)
    organization = Organization.objects.get(pk=metered.organization.pk)
    paying = ledger.paying_account(metered.workspace, organization).account_id
    stripe_ids = _spread_over_stripes(paying)
    assert len(stripe_ids) > 1
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")  # waiting for a busy stripe would fail the statement
    own = connection.connection.info.backend_pid % len(stripe_ids)  # the stripe this connection starts from
    free = stripe_ids[(own + 1) % len(stripe_ids)]  # busy: its own stripe and every other but the next one
    other = _other_connection_locking([pk for pk in stripe_ids if pk != free])
    try:
        charged = _fast_charge(metered, "skip-busy-stripes")
    finally:
        other.rollback()
        other.close()

    assert charged is not None
    price = charged.credits
    balances = dict(AccountStripe.objects.filter(account_id=paying).values_list("pk", "balance"))
    assert balances[free] == 8_000 // len(stripe_ids) - price
    assert all(balances[pk] == 8_000 // len(stripe_ids) for pk in stripe_ids if pk != free)
    assert charged.available == 8_000 - price == available(metered)
    assert reconcile() == []


def test_a_charge_that_finds_every_stripe_busy_leaves_it_to_the_general_path_at_once():
    metered = make_metered_workspace(credits=8_000)
    organization = Organization.objects.get(pk=metered.organization.pk)
    stripe_ids = _spread_over_stripes(ledger.paying_account(metered.workspace, organization).account_id)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    other = _other_connection_locking(stripe_ids)
    try:
        started = time.monotonic()
        charged = _fast_charge(metered, "every-stripe-busy")
        waited = time.monotonic() - started
    finally:
        other.rollback()
        other.close()

    assert charged is None  # nothing done: the general path decides (and waits its turn there)
    assert waited < 2.0
    assert not UsageEvent.objects.filter(idempotency_key="every-stripe-busy").exists()
    assert available(metered) == 8_000
    assert reconcile() == []
