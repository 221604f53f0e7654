"""The metering services below the API: each writes its usage event, history item and ledger movement in one
transaction (a failure after the ledger moved leaves nothing), the sweeper releases expired holds, and stored
idempotent answers are pruned after the retention.

Atomicity tests use committed data (transaction=True), as production does: the service's own transaction is the
outermost one, and what is rolled back is checked on the database afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils.timezone import now

from billing import ledger
from billing.models import Hold, HoldStatus, LedgerTransaction, TransactionKind
from billing.reconcile import reconcile
from orgs.models import Organization
from tests.factories import make_workspace
from tests.usage.conftest import MeteredWorkspace, make_metered_workspace
from usage import services
from usage.models import IdempotentRequest, Price, UsageEvent, UsageStatus
from usage.refusals import HoldNotFound, IdempotencyKeyReused, UnitsAboveHeld, UnknownPrice
from usage.selectors import held_event_find, price_find
from usage.services import (
    IDEMPOTENCY_RETENTION,
    Answer,
    HistoryContent,
    holds_expire,
    idempotent_answer,
    idempotent_requests_prune,
    usage_charge,
    usage_hold_capture,
    usage_hold_place,
    usage_hold_release,
)
from usage.tasks import holds_expire_run, idempotent_requests_prune_run
from workspaces.models import HistoryItem

START = 10_000


class Boom(Exception):
    pass


def boom(*args, **kwargs):
    raise Boom("failure after the ledger moved")


def flux() -> Price:
    return price_find(tool="image", model="flux-pro")  # 12 per image


def kling() -> Price:
    return price_find(tool="video", model="kling-1.6")  # 20 per second


def available(metered: MeteredWorkspace) -> int:
    return ledger.available_credits(metered.workspace, Organization.objects.get(pk=metered.organization.pk))


def state() -> tuple[int, int, int, list[tuple[int, str]]]:
    return (
        UsageEvent.objects.count(),
        HistoryItem.objects.count(),
        LedgerTransaction.objects.count(),
        list(Hold.objects.order_by("pk").values_list("pk", "status")),
    )


def place(metered: MeteredWorkspace, *, units: int = 10, ttl: int = 900, key: str = "h", history=None):
    return usage_hold_place(
        workspace=metered.workspace,
        user=metered.member,
        price=kling(),
        units=units,
        ttl=timedelta(seconds=ttl),
        idempotency_key=key,
        history=history,
    )


# --- what each service writes ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_usage_charge_writes_event_history_and_ledger(metered):
    content = HistoryContent(prompt="a fox", output_text="fox.png", metadata={"seed": 1})
    metered_charge = usage_charge(
        workspace=metered.workspace, user=metered.member, price=flux(), units=3, idempotency_key="k", history=content
    )
    event = metered_charge.event
    assert metered_charge.available == START - 36 == available(metered)
    assert (event.organization_id, event.workspace_id, event.user_id) == (
        metered.organization.pk,
        metered.workspace.pk,
        metered.member.pk,
    )
    assert (event.tool, event.model, event.units, event.credits, event.status, event.idempotency_key) == (
        "image",
        "flux-pro",
        3,
        36,
        UsageStatus.CAPTURED,
        "k",
    )
    assert event.settled_at == event.created_at
    txn = LedgerTransaction.objects.get(pk=event.ledger_transaction_id)
    assert (txn.kind, txn.amount, txn.workspace_id, txn.actor_id) == (
        TransactionKind.CHARGE,
        36,
        metered.workspace.pk,
        metered.member.pk,
    )
    item = HistoryItem.objects.get()
    assert (item.usage_event_id, item.prompt, item.output_text, item.metadata, item.credits) == (
        event.pk,
        "a fox",
        "fox.png",
        {"seed": 1},
        36,
    )
    assert item.created_at == event.created_at
    assert reconcile() == []


@pytest.mark.django_db
def test_hold_capture_and_release_services(metered):
    held = place(metered, units=10, history=HistoryContent(prompt="p", metadata={"a": 1}))
    assert held.available == START - 200
    assert held.event.status == UsageStatus.HELD
    assert held.event.history_draft == {"prompt": "p", "output_text": "", "metadata": {"a": 1}}
    assert not HistoryItem.objects.exists()

    event = held_event_find(workspace=metered.workspace, event_id=held.event.pk)
    captured = usage_hold_capture(
        event=event, workspace=metered.workspace, units=3, history=HistoryContent(output_text="o", metadata={"b": 2})
    )
    assert captured.available == START - 60 == available(metered)
    event.refresh_from_db()
    assert (event.status, event.units, event.credits, event.history_draft) == (UsageStatus.CAPTURED, 3, 60, None)
    item = HistoryItem.objects.get()
    assert (item.prompt, item.output_text, item.metadata, item.credits) == ("p", "o", {"a": 1, "b": 2}, 60)
    assert LedgerTransaction.objects.get(pk=event.ledger_transaction_id).kind == TransactionKind.CAPTURE

    other = place(metered, units=5, key="h2")
    released = usage_hold_release(event=held_event_find(workspace=metered.workspace, event_id=other.event.pk))
    assert (released.status, released.credits) == (UsageStatus.RELEASED, 0)
    assert LedgerTransaction.objects.get(pk=released.ledger_transaction_id).kind == TransactionKind.RELEASE
    assert available(metered) == START - 60
    # Releasing again changes nothing; capturing or releasing a settled hold is refused.
    again = usage_hold_release(event=released)
    assert again.ledger_transaction_id == released.ledger_transaction_id
    with pytest.raises(ledger.HoldNotPending):
        usage_hold_capture(event=released, workspace=metered.workspace)
    with pytest.raises(ledger.HoldNotPending):
        usage_hold_release(event=event)
    assert reconcile() == []


@pytest.mark.django_db
def test_capture_above_the_held_units_is_refused_and_changes_nothing(metered):
    held = place(metered, units=4)
    before = state()
    with pytest.raises(UnitsAboveHeld):
        usage_hold_capture(event=held.event, workspace=metered.workspace, units=5)
    assert state() == before
    assert available(metered) == START - 80


@pytest.mark.django_db
def test_price_and_hold_lookups(metered):
    Price.objects.filter(tool="chat", model="gpt-4o").update(is_active=False)
    for tool, model in [("chat", "gpt-4o"), ("chat", "nope"), ("image", "gpt-4o-mini")]:
        with pytest.raises(UnknownPrice):
            price_find(tool=tool, model=model)
    charged = usage_charge(
        workspace=metered.workspace, user=metered.member, price=flux(), units=1, idempotency_key="c"
    ).event
    held = place(metered).event
    sibling = make_workspace(metered.organization)
    for workspace, event_id in [
        (metered.workspace, charged.pk),  # a plain charge is not a hold
        (sibling, held.pk),  # another workspace's
        (metered.workspace, 0),
        (metered.workspace, -5),
        (metered.workspace, 2**63),
        (metered.workspace, 10**20),
    ]:
        with pytest.raises(HoldNotFound):
            held_event_find(workspace=workspace, event_id=event_id)
    assert held_event_find(workspace=metered.workspace, event_id=held.pk).pk == held.pk


# --- atomicity: a failure after the ledger moved leaves nothing --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_usage_charge_is_atomic_when_history_fails(monkeypatch):
    metered = make_metered_workspace()
    before = state()
    monkeypatch.setattr(services, "history_item_create", boom)
    with pytest.raises(Boom):
        usage_charge(workspace=metered.workspace, user=metered.member, price=flux(), units=2, idempotency_key="atomic")
    assert state() == before
    assert available(metered) == START
    assert not LedgerTransaction.objects.filter(kind=TransactionKind.CHARGE).exists()
    assert reconcile() == []
    monkeypatch.undo()
    usage_charge(workspace=metered.workspace, user=metered.member, price=flux(), units=2, idempotency_key="atomic")
    assert available(metered) == START - 24


@pytest.mark.django_db(transaction=True)
def test_usage_charge_is_atomic_on_the_general_ledger_path(monkeypatch):
    """With a monthly limit the ledger takes its general path (counters, conditional updates): also rolled back."""
    from billing.models import SpendCounter
    from billing.services import workspace_limit_set

    metered = make_metered_workspace()
    workspace_limit_set(workspace=metered.workspace, user=metered.member, monthly_limit=1_000, actor=metered.owner)
    before = state()
    monkeypatch.setattr(services, "history_item_create", boom)
    with pytest.raises(Boom):
        usage_charge(workspace=metered.workspace, user=metered.member, price=flux(), units=2, idempotency_key="g")
    assert state() == before
    assert available(metered) == START
    assert sum(SpendCounter.objects.values_list("spent", flat=True)) == 0
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_usage_hold_place_is_atomic_when_the_event_fails(monkeypatch):
    metered = make_metered_workspace()
    before = state()
    monkeypatch.setattr(UsageEvent.objects, "create", boom)
    with pytest.raises(Boom):
        place(metered)
    monkeypatch.undo()
    assert state() == before
    assert not Hold.objects.exists()
    assert available(metered) == START
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_usage_hold_capture_is_atomic_when_history_fails(monkeypatch):
    metered = make_metered_workspace()
    held = place(metered, units=10, history=HistoryContent(prompt="kept"))
    before = state()
    monkeypatch.setattr(services, "history_item_create", boom)
    with pytest.raises(Boom):
        usage_hold_capture(event=held.event, workspace=metered.workspace, units=4)
    monkeypatch.undo()
    assert state() == before
    event = UsageEvent.objects.get(pk=held.event.pk)
    assert (event.status, event.units, event.credits) == (UsageStatus.HELD, 10, 200)
    assert event.history_draft == {"prompt": "kept", "output_text": "", "metadata": {}}
    assert Hold.objects.get().status == HoldStatus.PENDING
    assert available(metered) == START - 200
    assert reconcile() == []
    # The hold is still whole: it can be captured now.
    usage_hold_capture(
        event=held_event_find(workspace=metered.workspace, event_id=event.pk), workspace=metered.workspace
    )
    assert HistoryItem.objects.get().prompt == "kept"


@pytest.mark.django_db(transaction=True)
def test_usage_hold_release_is_atomic_when_the_event_fails(monkeypatch):
    metered = make_metered_workspace()
    held = place(metered, units=10)
    before = state()
    monkeypatch.setattr(UsageEvent, "save", boom)
    with pytest.raises(Boom):
        usage_hold_release(event=held.event)
    monkeypatch.undo()
    assert state() == before
    assert UsageEvent.objects.get(pk=held.event.pk).status == UsageStatus.HELD
    assert Hold.objects.get().status == HoldStatus.PENDING
    assert available(metered) == START - 200
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_idempotent_answer_stores_nothing_when_the_charge_fails(monkeypatch):
    metered = make_metered_workspace()

    def produce():
        usage_charge(workspace=metered.workspace, user=metered.member, price=flux(), units=1, idempotency_key="i")
        raise Boom

    with pytest.raises(Boom):
        idempotent_answer(workspace=metered.workspace, key="i", request_hash="h", produce=produce)
    assert not IdempotentRequest.objects.exists()
    assert not UsageEvent.objects.exists()
    assert available(metered) == START


# --- idempotent answers ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_idempotent_answer_replays_and_detects_conflicts(metered):
    calls = []

    def produce():
        calls.append(1)
        return 201, {"n": len(calls)}

    first = idempotent_answer(workspace=metered.workspace, key="k", request_hash="h1", produce=produce)
    assert first == Answer(201, {"n": 1}, replayed=False)
    again = idempotent_answer(workspace=metered.workspace, key="k", request_hash="h1", produce=produce)
    assert again == Answer(201, {"n": 1}, replayed=True)
    with pytest.raises(IdempotencyKeyReused):
        idempotent_answer(workspace=metered.workspace, key="k", request_hash="h2", produce=produce)
    assert len(calls) == 1
    stored = IdempotentRequest.objects.get()
    assert (stored.key, stored.status_code, stored.response) == ("k", 201, {"n": 1})
    # Keys are per workspace.
    sibling = make_workspace(metered.organization)
    other = idempotent_answer(workspace=sibling, key="k", request_hash="h2", produce=produce)
    assert other == Answer(201, {"n": 2}, replayed=False)


@pytest.mark.django_db
def test_refusals_are_not_stored_so_the_key_can_be_retried(metered):
    def refuse():
        raise ledger.CreditLimitReached(limit="pool", available=0, resets_at=None)

    with pytest.raises(ledger.CreditLimitReached):
        idempotent_answer(workspace=metered.workspace, key="k", request_hash="h", produce=refuse)
    assert not IdempotentRequest.objects.exists()
    answer = idempotent_answer(workspace=metered.workspace, key="k", request_hash="h", produce=lambda: (201, {}))
    assert not answer.replayed


@pytest.mark.django_db
def test_idempotent_requests_prune_forgets_old_answers(metered):
    at = now()
    for key, age in [
        ("new", timedelta(0)),
        ("day", timedelta(days=1)),
        ("edge", IDEMPOTENCY_RETENTION - timedelta(minutes=1)),
    ]:
        IdempotentRequest.objects.create(
            workspace=metered.workspace, key=key, request_hash="h", status_code=201, created_at=at - age
        )
    for key, age in [("old", IDEMPOTENCY_RETENTION + timedelta(minutes=1)), ("ancient", timedelta(days=400))]:
        IdempotentRequest.objects.create(
            workspace=metered.workspace, key=key, request_hash="h", status_code=201, created_at=at - age
        )

    assert idempotent_requests_prune() == 2
    assert set(IdempotentRequest.objects.values_list("key", flat=True)) == {"new", "day", "edge"}
    assert idempotent_requests_prune() == 0
    assert idempotent_requests_prune(before=at - timedelta(hours=1)) == 2
    assert set(IdempotentRequest.objects.values_list("key", flat=True)) == {"new"}
    with time_machine.travel(at + IDEMPOTENCY_RETENTION + timedelta(minutes=1), tick=False):
        assert idempotent_requests_prune_run.delay().get() == 1
    assert not IdempotentRequest.objects.exists()


@pytest.mark.django_db
def test_a_pruned_key_is_a_new_request(metered):
    def produce():
        return 201, {"id": IdempotentRequest.objects.count()}

    idempotent_answer(workspace=metered.workspace, key="k", request_hash="h", produce=produce)
    with time_machine.travel(now() + IDEMPOTENCY_RETENTION + timedelta(days=1), tick=False):
        assert idempotent_requests_prune() == 1
        again = idempotent_answer(workspace=metered.workspace, key="k", request_hash="h", produce=produce)
    assert not again.replayed


# --- the sweeper -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_holds_expire_releases_expired_holds_and_leaves_the_others(metered):
    short = place(metered, units=10, ttl=60, key="short").event  # 200
    medium = place(metered, units=5, ttl=600, key="medium").event  # 100
    long = place(metered, units=1, ttl=3_600, key="long").event  # 20
    assert available(metered) == START - 320
    assert holds_expire() == 0

    with time_machine.travel(now() + timedelta(seconds=61), tick=False):
        assert holds_expire() == 1
        assert holds_expire() == 0  # nothing twice
    short.refresh_from_db()
    assert (short.status, short.credits) == (UsageStatus.RELEASED, 0)
    assert short.settled_at is not None
    assert Hold.objects.get(pk=short.hold_id).status == HoldStatus.RELEASED
    assert LedgerTransaction.objects.get(pk=short.ledger_transaction_id).kind == TransactionKind.RELEASE
    assert available(metered) == START - 120
    for event in (medium, long):
        event.refresh_from_db()
        assert event.status == UsageStatus.HELD
        assert Hold.objects.get(pk=event.hold_id).status == HoldStatus.PENDING

    with time_machine.travel(now() + timedelta(seconds=601), tick=False):
        assert holds_expire_run.delay().get() == 1  # the beat task
    medium.refresh_from_db()
    long.refresh_from_db()
    assert (medium.status, long.status) == (UsageStatus.RELEASED, UsageStatus.HELD)
    assert available(metered) == START - 20
    assert not HistoryItem.objects.exists()
    assert reconcile() == []


@pytest.mark.django_db
def test_holds_expire_at_an_explicit_time_and_skips_settled_holds(metered):
    captured = place(metered, units=2, ttl=60, key="captured").event
    usage_hold_capture(event=captured, workspace=metered.workspace)
    released = place(metered, units=2, ttl=60, key="released").event
    usage_hold_release(event=released)
    pending = place(metered, units=2, ttl=60, key="pending").event
    assert holds_expire(at=now() + timedelta(seconds=30)) == 0
    assert holds_expire(at=now() + timedelta(seconds=120)) == 1
    for event, status in [(captured, "captured"), (released, "released"), (pending, "released")]:
        event.refresh_from_db()
        assert event.status == status
    assert available(metered) == START - 40
    assert reconcile() == []


@pytest.mark.django_db
def test_holds_expire_releases_ledger_holds_placed_outside_the_api(metered):
    organization = Organization.objects.get(pk=metered.organization.pk)
    ledger.hold_place(
        organization=organization,
        workspace=metered.workspace,
        user=metered.member,
        amount=50,
        ttl=timedelta(seconds=10),
    )
    assert available(metered) == START - 50
    assert holds_expire(at=now() + timedelta(seconds=11)) == 1
    assert Hold.objects.get().status == HoldStatus.RELEASED
    assert available(metered) == START
    assert reconcile() == []


@pytest.mark.django_db
def test_an_expired_hold_is_swept_even_in_budget_mode_back_to_its_workspace(metered):
    from billing.services import credit_mode_switch, credits_transfer
    from orgs.models import CreditMode
    from workspaces.models import Workspace

    organization = credit_mode_switch(organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner)
    primary = Workspace.objects.get(organization=organization, is_primary=True)
    credits_transfer(
        organization=organization, source=primary, target=metered.workspace, amount=300, actor=metered.owner
    )
    place(metered, units=10, ttl=60)
    assert available(metered) == 100
    assert holds_expire(at=now() + timedelta(seconds=61)) == 1
    assert available(metered) == 300
    assert reconcile() == []
