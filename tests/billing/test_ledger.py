"""The credits ledger (billing.ledger, billing.services) on PostgreSQL: grants, charges in both credit modes, typed
refusals that write nothing, amounts, idempotency, holds, refunds, transfers, mode switches, archiving, monthly
limits, and the agreement of the single-statement charge (no limits) with the general path (limits).

Every test ends with `reconcile() == []`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db.models import Sum

from billing import services as billing_services
from billing.ledger import (
    CreditLimitReached,
    HoldNotPending,
    IdempotencyConflict,
    InvalidAmount,
    LedgerError,
    ModeMismatch,
    charge,
    credits_grant,
    credits_transfer,
    hold_capture,
    hold_place,
    hold_release,
    period_bounds,
    refund,
)
from billing.models import (
    Account,
    AccountKind,
    Hold,
    HoldStatus,
    LedgerEntry,
    LedgerTransaction,
    SpendCounter,
    TransactionKind,
    WorkspaceLimit,
)
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, workspace_credits_return, workspace_limit_set
from orgs.models import AuditEvent, CreditMode, Organization
from qolaba.lifecycle import workspace_archive, workspace_restore
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole

pytestmark = pytest.mark.django_db


# --- helpers -----------------------------------------------------------------------------------------------------


def make_ctx(*, timezone: str = "UTC", grant: int = 0) -> SimpleNamespace:
    owner = UserFactory()
    org = make_organization(owner=owner, timezone=timezone)
    primary = Workspace.objects.get(organization=org, is_primary=True)
    a = make_workspace(org, name="A")
    b = make_workspace(org, name="B")
    member = make_member(org, workspaces={a: WorkspaceRole.MEMBER, b: WorkspaceRole.MEMBER}).user
    ctx = SimpleNamespace(org=org, owner=owner, member=member, primary=primary, a=a, b=b)
    if grant:
        credits_grant(organization=org, amount=grant, actor=owner)
    return ctx


def switch(ctx: SimpleNamespace, mode: str) -> None:
    """Switch the credit mode; later calls use the organization as it is now (services read its mode)."""
    ctx.org = credit_mode_switch(organization=ctx.org, mode=mode, actor=ctx.owner)


def budget_ctx(*, grant: int = 10_000, to_a: int = 0, to_b: int = 0) -> SimpleNamespace:
    ctx = make_ctx(grant=grant)
    switch(ctx, CreditMode.BUDGET)
    if to_a:
        credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=to_a, actor=ctx.owner)
    if to_b:
        credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.b, amount=to_b, actor=ctx.owner)
    return ctx


def bal(workspace: Workspace) -> int:
    return Account.objects.get(workspace=workspace).balance


def balances(ctx: SimpleNamespace) -> tuple[int, int, int]:
    return bal(ctx.primary), bal(ctx.a), bal(ctx.b)


def system_total(org, kind: AccountKind) -> int:
    """What a system account holds: the sum of its entries (system balances are not cached)."""
    account = Account.objects.get(organization=org, kind=kind)
    into = LedgerEntry.objects.filter(to_account=account).aggregate(s=Sum("amount"))["s"] or 0
    out = LedgerEntry.objects.filter(from_account=account).aggregate(s=Sum("amount"))["s"] or 0
    return into - out


def consumed(org) -> int:
    return system_total(org, AccountKind.SINK)


def held(org) -> int:
    return system_total(org, AccountKind.HOLDS)


def counter(workspace: Workspace, user=None, period_start=None) -> int:
    period_start = period_start or period_bounds(workspace.organization)[0]
    row = SpendCounter.objects.filter(workspace=workspace, user=user, period_start=period_start).first()
    return row.spent if row else 0


def ledger_state(org) -> dict:
    """Everything a refused operation must leave untouched."""
    return {
        "transactions": sorted(LedgerTransaction.objects.filter(organization=org).values_list("pk", flat=True)),
        "entries": LedgerEntry.objects.filter(transaction__organization=org).count(),
        "holds": sorted(Hold.objects.filter(organization=org).values_list("pk", "status", "captured_amount")),
        "balances": dict(Account.objects.filter(organization=org).values_list("pk", "balance")),
        "counters": sorted(
            SpendCounter.objects.filter(workspace__organization=org).values_list(
                "workspace_id", "user_id", "period_start", "spent"
            )
        ),
    }


def month_end(org) -> datetime:
    """The instant the organization's current month ends, in its time zone."""
    tz = ZoneInfo(org.timezone)
    local = datetime.now(tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=tz)


def txn(result) -> LedgerTransaction:
    return LedgerTransaction.objects.get(pk=result.transaction_id)


# --- grants ------------------------------------------------------------------------------------------------------


def test_grant_lands_in_the_primary_workspace():
    ctx = make_ctx()
    granted = credits_grant(organization=ctx.org, amount=10_000, actor=ctx.owner, memo="welcome")
    assert balances(ctx) == (10_000, 0, 0)
    assert (granted.kind, granted.amount, granted.actor, granted.memo) == (
        TransactionKind.GRANT,
        10_000,
        ctx.owner,
        "welcome",
    )
    (entry,) = granted.entries.all()
    assert (entry.from_account.kind, entry.to_account.workspace, entry.amount) == (
        AccountKind.SOURCE,
        ctx.primary,
        10_000,
    )
    # Grants land in the Primary Workspace in budget mode too.
    switch(ctx, CreditMode.BUDGET)
    credits_grant(organization=ctx.org, amount=500, actor=None, kind=TransactionKind.PURCHASE)
    assert balances(ctx) == (10_500, 0, 0)
    assert system_total(ctx.org, AccountKind.SOURCE) == -10_500
    assert reconcile() == []


def test_grant_idempotency():
    ctx = make_ctx()
    first = credits_grant(organization=ctx.org, amount=700, actor=ctx.owner, idempotency_key="renewal-2026-01")
    again = credits_grant(organization=ctx.org, amount=700, actor=ctx.owner, idempotency_key="renewal-2026-01")
    assert again.pk == first.pk
    before = ledger_state(ctx.org)
    with pytest.raises(IdempotencyConflict):
        credits_grant(organization=ctx.org, amount=800, actor=ctx.owner, idempotency_key="renewal-2026-01")
    assert ledger_state(ctx.org) == before
    assert bal(ctx.primary) == 700
    assert reconcile() == []


# --- charges -----------------------------------------------------------------------------------------------------


def test_charge_in_shared_mode_debits_the_pool():
    ctx = make_ctx(grant=10_000)
    result = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, memo="image")
    assert (result.available, result.replayed, result.hold) == (9_700, False, None)
    assert balances(ctx) == (9_700, 0, 0)
    assert consumed(ctx.org) == 300
    spent = txn(result)
    assert (spent.kind, spent.amount, spent.workspace, spent.actor, spent.memo) == (
        TransactionKind.CHARGE,
        300,
        ctx.a,
        ctx.member,
        "image",
    )
    assert spent.period_start == period_bounds(ctx.org)[0]
    (entry,) = spent.entries.all()
    assert (entry.from_account.workspace, entry.to_account.kind, entry.amount) == (ctx.primary, AccountKind.SINK, 300)
    assert reconcile() == []


def test_charge_in_budget_mode_debits_the_workspace_own_balance():
    ctx = budget_ctx(grant=10_000, to_a=2_000)
    result = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300)
    assert result.available == 1_700
    assert balances(ctx) == (8_000, 1_700, 0)
    (entry,) = txn(result).entries.all()
    assert entry.from_account.workspace == ctx.a
    # The Primary Workspace spends its own balance too.
    charge(organization=ctx.org, workspace=ctx.primary, user=ctx.owner, amount=1_000)
    assert balances(ctx) == (7_000, 1_700, 0)
    # A workspace at zero is blocked until it gets credits, however full the Primary Workspace is.
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.b, user=ctx.member, amount=1)
    assert (refused.value.limit, refused.value.available, refused.value.resets_at) == ("workspace_balance", 0, None)
    assert consumed(ctx.org) == 1_300
    assert reconcile() == []


def _refusal_setup(limit: str) -> tuple[SimpleNamespace, int, int]:
    """An organization where spending 200 in A by the member is stopped by `limit`; returns (ctx, amount, left)."""
    if limit == "pool":
        ctx = make_ctx(grant=150)
        return ctx, 200, 150
    if limit == "workspace_balance":
        ctx = budget_ctx(grant=10_000, to_a=150)
        return ctx, 200, 150
    ctx = make_ctx(grant=10_000)
    user = None if limit == "workspace_monthly_limit" else ctx.member
    workspace_limit_set(workspace=ctx.a, user=user, monthly_limit=500, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=350)
    return ctx, 200, 150


@pytest.mark.parametrize("operation", ["charge", "hold"])
@pytest.mark.parametrize("limit", ["pool", "workspace_balance", "workspace_monthly_limit", "member_monthly_limit"])
def test_refusal_names_the_limit_what_is_left_and_when_it_resets_and_writes_nothing(limit, operation):
    ctx, amount, left = _refusal_setup(limit)
    before = ledger_state(ctx.org)
    spend = charge if operation == "charge" else hold_place
    with pytest.raises(CreditLimitReached) as refused:
        spend(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=amount, idempotency_key="k-refused")
    error = refused.value
    assert (error.limit, error.available, error.code) == (limit, left, "insufficient_credits")
    if limit in ("pool", "workspace_balance"):
        assert error.resets_at is None
        assert "resets" not in error.message
    else:
        assert error.resets_at == month_end(ctx.org)
        assert error.resets_at == period_bounds(ctx.org)[1]
        assert "resets on" in error.message
    assert f"{left} credits left" in error.message
    assert ledger_state(ctx.org) == before
    # The key of a refused request is not burnt: the same request succeeds once credits are there.
    assert not LedgerTransaction.objects.filter(idempotency_key="k-refused").exists()
    assert reconcile() == []


def test_monthly_limit_refusal_resets_at_the_org_timezone_month_end():
    ctx = make_ctx(timezone="Asia/Kolkata", grant=1_000)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=10, actor=ctx.owner)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=11)
    resets_at = refused.value.resets_at
    assert resets_at == month_end(ctx.org)
    local = resets_at.astimezone(ZoneInfo("Asia/Kolkata"))
    assert (local.day, local.hour, local.minute, local.second) == (1, 0, 0, 0)
    assert reconcile() == []


# --- amounts -----------------------------------------------------------------------------------------------------

BAD_AMOUNTS = [0, -1, -500, True, False, 1.0, 2.5, Decimal("3"), "10", None]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
@pytest.mark.parametrize("operation", ["charge", "charge_general", "hold", "grant", "transfer", "refund"])
def test_amounts_must_be_positive_whole_numbers(operation, amount):
    ctx = budget_ctx(grant=1_000, to_a=500)
    paid = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
    if operation == "charge_general":
        workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=10_000, actor=ctx.owner)
    before = ledger_state(ctx.org)
    calls = {
        "charge": lambda: charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=amount),
        "charge_general": lambda: charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=amount),
        "hold": lambda: hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=amount),
        "grant": lambda: credits_grant(organization=ctx.org, amount=amount, actor=ctx.owner),
        "transfer": lambda: credits_transfer(
            organization=ctx.org, source=ctx.a, target=ctx.b, amount=amount, actor=ctx.owner
        ),
        "refund": lambda: refund(original=txn(paid), amount=amount, actor=ctx.owner, reason="r"),
    }
    with pytest.raises(InvalidAmount):
        calls[operation]()
    assert ledger_state(ctx.org) == before
    assert reconcile() == []


@pytest.mark.parametrize("operation", ["charge", "hold", "grant", "transfer"])
def test_amounts_beyond_bigint_are_refused(operation):
    ctx = budget_ctx(grant=1_000, to_a=500) if operation == "transfer" else make_ctx(grant=1_000)
    huge = 2**63
    calls = {
        "charge": lambda: charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=huge),
        "hold": lambda: hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=huge),
        "grant": lambda: credits_grant(organization=ctx.org, amount=huge, actor=ctx.owner),
        "transfer": lambda: credits_transfer(
            organization=ctx.org, source=ctx.a, target=ctx.b, amount=huge, actor=ctx.owner
        ),
    }
    with pytest.raises(InvalidAmount):
        calls[operation]()
    assert reconcile() == []


@pytest.mark.parametrize("amount", [-1, True, False, 1.0, 2.5, Decimal("3"), "10", None], ids=repr)
def test_capture_amount_must_be_a_whole_number(amount):
    ctx = make_ctx(grant=1_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100).hold
    before = ledger_state(ctx.org)
    with pytest.raises(InvalidAmount):
        hold_capture(hold=hold, amount=amount)
    assert ledger_state(ctx.org) == before
    hold_release(hold=hold)
    assert reconcile() == []


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), timedelta(hours=24, seconds=1)])
def test_hold_lasts_between_a_second_and_a_day(ttl):
    ctx = make_ctx(grant=1_000)
    before = ledger_state(ctx.org)
    with pytest.raises(InvalidAmount):
        hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=10, ttl=ttl)
    assert ledger_state(ctx.org) == before
    assert reconcile() == []


# --- idempotency -------------------------------------------------------------------------------------------------


def _maybe_limit(ctx: SimpleNamespace, path: str) -> None:
    """`general`: a (never reached) member limit sends A's charges down the general path."""
    if path == "general":
        workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=10**9, actor=ctx.owner)


@pytest.mark.parametrize("path", ["fast", "general"])
def test_charge_replay_returns_the_original_and_charges_once(path):
    ctx = make_ctx(grant=1_000)
    _maybe_limit(ctx, path)
    first = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, idempotency_key="gen-1")
    again = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, idempotency_key="gen-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.transaction_id == first.transaction_id
    assert again.available == 700
    assert bal(ctx.primary) == 700
    assert LedgerTransaction.objects.filter(idempotency_key="gen-1").count() == 1
    assert consumed(ctx.org) == 300
    if path == "general":
        assert counter(ctx.a, ctx.member) == 300
    assert reconcile() == []


@pytest.mark.parametrize("path", ["fast", "general"])
@pytest.mark.parametrize(
    "change",
    [
        {"amount": 301},
        {"workspace": "b"},
        {"user": "owner"},
    ],
    ids=["amount", "workspace", "user"],
)
def test_same_key_for_a_different_request_is_refused(path, change):
    ctx = make_ctx(grant=1_000)
    _maybe_limit(ctx, path)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, idempotency_key="gen-1")
    before = ledger_state(ctx.org)
    kwargs = {"organization": ctx.org, "workspace": ctx.a, "user": ctx.member, "amount": 300}
    if "amount" in change:
        kwargs["amount"] = change["amount"]
    if "workspace" in change:
        kwargs["workspace"] = ctx.b
    if "user" in change:
        kwargs["user"] = ctx.owner
    with pytest.raises(IdempotencyConflict) as refused:
        charge(**kwargs, idempotency_key="gen-1")
    assert refused.value.code == "idempotency_conflict"
    assert ledger_state(ctx.org) == before
    # A hold may not reuse a charge's key either.
    with pytest.raises(IdempotencyConflict):
        hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, idempotency_key="gen-1")
    assert ledger_state(ctx.org) == before
    assert reconcile() == []


def test_idempotency_keys_are_per_organization():
    one, two = make_ctx(grant=500), make_ctx(grant=500)
    first = charge(organization=one.org, workspace=one.a, user=one.member, amount=100, idempotency_key="same")
    second = charge(organization=two.org, workspace=two.a, user=two.member, amount=100, idempotency_key="same")
    assert first.transaction_id != second.transaction_id
    assert not second.replayed
    assert (bal(one.primary), bal(two.primary)) == (400, 400)
    assert reconcile() == []


@pytest.mark.parametrize(
    "path",
    [
        "fast",
        "general",
    ],
)
def test_charge_replay_after_the_balance_ran_out_is_still_a_replay(path):
    ctx = make_ctx(grant=300)
    _maybe_limit(ctx, path)
    first = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, idempotency_key="gen-1")
    assert bal(ctx.primary) == 0
    again = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300, idempotency_key="gen-1")
    assert (again.transaction_id, again.replayed) == (first.transaction_id, True)
    with pytest.raises(IdempotencyConflict):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=301, idempotency_key="gen-1")
    assert LedgerTransaction.objects.filter(organization=ctx.org, kind=TransactionKind.CHARGE).count() == 1
    assert reconcile() == []


@pytest.mark.parametrize(
    "operation",
    [
        "charge",
        "charge_general",
        "hold",
    ],
)
def test_spend_pays_from_the_balance_of_the_mode_in_force(operation):
    ctx = make_ctx(grant=1_000)
    _maybe_limit(ctx, "general" if operation == "charge_general" else "fast")
    loaded = Organization.objects.get(pk=ctx.org.pk)  # as a request loaded it, just before the switch
    switch(ctx, CreditMode.BUDGET)
    spend = hold_place if operation == "hold" else charge
    before = ledger_state(ctx.org)
    with pytest.raises(CreditLimitReached) as refused:
        spend(organization=loaded, workspace=ctx.a, user=ctx.member, amount=100)
    assert (refused.value.limit, refused.value.available) == ("workspace_balance", 0)
    assert ledger_state(ctx.org) == before
    assert reconcile() == []


def test_hold_capture_release_and_transfer_replays():
    ctx = budget_ctx(grant=1_000, to_a=400)
    moved = credits_transfer(
        organization=ctx.org, source=ctx.a, target=ctx.b, amount=100, actor=ctx.owner, idempotency_key="t1"
    )
    again = credits_transfer(
        organization=ctx.org, source=ctx.a, target=ctx.b, amount=100, actor=ctx.owner, idempotency_key="t1"
    )
    assert again.pk == moved.pk
    with pytest.raises(IdempotencyConflict):
        credits_transfer(
            organization=ctx.org, source=ctx.b, target=ctx.a, amount=100, actor=ctx.owner, idempotency_key="t1"
        )
    placed = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200, idempotency_key="h1")
    replayed = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200, idempotency_key="h1")
    assert (replayed.transaction_id, replayed.replayed, replayed.hold.pk) == (
        placed.transaction_id,
        True,
        placed.hold.pk,
    )
    captured = hold_capture(hold=placed.hold, amount=150, idempotency_key="c1")
    recaptured = hold_capture(hold=placed.hold, amount=150, idempotency_key="c1")
    assert (recaptured.transaction_id, recaptured.replayed) == (captured.transaction_id, True)
    assert balances(ctx) == (600, 150, 100)
    assert consumed(ctx.org) == 150
    assert Hold.objects.filter(organization=ctx.org).count() == 1
    assert reconcile() == []


# --- holds -------------------------------------------------------------------------------------------------------


def test_hold_reserves_then_capture_charges_at_most_what_was_held():
    ctx = make_ctx(grant=1_000)
    with time_machine.travel(datetime(2026, 5, 10, 12, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        placed = hold_place(
            organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400, ttl=timedelta(minutes=30)
        )
    hold = placed.hold
    assert (hold.status, hold.amount, hold.account.workspace, hold.user) == (
        HoldStatus.PENDING,
        400,
        ctx.primary,
        ctx.member,
    )
    assert hold.expires_at == datetime(2026, 5, 10, 12, 30, tzinfo=ZoneInfo("UTC"))
    assert placed.available == 600
    assert (bal(ctx.primary), held(ctx.org), consumed(ctx.org)) == (600, 400, 0)
    before = ledger_state(ctx.org)
    with pytest.raises(InvalidAmount):
        hold_capture(hold=hold, amount=401)
    assert ledger_state(ctx.org) == before
    result = hold_capture(hold=hold, amount=250)
    hold.refresh_from_db()
    assert (hold.status, hold.captured_amount, hold.settle_transaction_id) == (
        HoldStatus.CAPTURED,
        250,
        result.transaction_id,
    )
    assert hold.settled_at is not None
    assert result.available == 750
    assert (bal(ctx.primary), held(ctx.org), consumed(ctx.org)) == (750, 0, 250)
    assert txn(result).kind == TransactionKind.CAPTURE
    assert reconcile() == []


def test_capture_the_whole_hold_and_capture_nothing():
    ctx = make_ctx(grant=1_000)
    whole = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold
    nothing = hold_place(organization=ctx.org, workspace=ctx.b, user=ctx.member, amount=300).hold
    hold_capture(hold=whole, amount=400)
    hold_capture(hold=nothing, amount=0)
    assert (bal(ctx.primary), held(ctx.org), consumed(ctx.org)) == (600, 0, 400)
    assert reconcile() == []


@pytest.mark.parametrize(
    ("first", "second"),
    [("capture", "capture"), ("capture", "release"), ("release", "capture"), ("release", "release")],
)
def test_a_hold_settles_exactly_once(first, second):
    ctx = make_ctx(grant=1_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold

    def settle(how: str):
        return hold_capture(hold=hold, amount=100) if how == "capture" else hold_release(hold=hold)

    settle(first)
    before = ledger_state(ctx.org)
    with pytest.raises(HoldNotPending) as refused:
        settle(second)
    assert refused.value.code == "hold_not_pending"
    assert ledger_state(ctx.org) == before
    assert consumed(ctx.org) == (100 if first == "capture" else 0)
    assert reconcile() == []


def test_release_returns_the_credits():
    ctx = budget_ctx(grant=1_000, to_a=500)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=450).hold
    assert hold.account.workspace == ctx.a
    assert balances(ctx) == (500, 50, 0)
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=51)
    result = hold_release(hold=hold)
    assert result.available == 500
    assert balances(ctx) == (500, 500, 0)
    assert (held(ctx.org), consumed(ctx.org)) == (0, 0)
    hold.refresh_from_db()
    assert (hold.status, hold.captured_amount) == (HoldStatus.RELEASED, 0)
    assert txn(result).kind == TransactionKind.RELEASE
    assert reconcile() == []


def test_budget_hold_captured_after_switch_to_shared_returns_the_rest_to_the_pool():
    ctx = budget_ctx(grant=10_000, to_a=2_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_500).hold
    assert balances(ctx) == (8_000, 500, 0)
    switch(ctx, CreditMode.SHARED)
    assert balances(ctx) == (8_500, 0, 0)
    hold_capture(hold=hold, amount=600)
    assert balances(ctx) == (9_400, 0, 0)
    assert (held(ctx.org), consumed(ctx.org)) == (0, 600)
    assert reconcile() == []


def test_budget_hold_released_after_switch_to_shared_returns_everything_to_the_pool():
    ctx = budget_ctx(grant=10_000, to_a=2_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_500).hold
    switch(ctx, CreditMode.SHARED)
    hold_release(hold=hold)
    assert balances(ctx) == (10_000, 0, 0)
    assert reconcile() == []


def test_hold_of_an_archived_workspace_is_released_to_the_primary_workspace():
    ctx = budget_ctx(grant=10_000, to_a=2_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_500).hold
    workspace_archive(workspace=ctx.a, actor=ctx.owner)
    assert balances(ctx) == (8_500, 0, 0)
    hold_capture(hold=hold, amount=500)
    assert balances(ctx) == (9_500, 0, 0)
    assert consumed(ctx.org) == 500
    assert reconcile() == []


# --- refunds -----------------------------------------------------------------------------------------------------


def test_refund_up_to_what_was_consumed_back_to_the_paying_balance():
    ctx = budget_ctx(grant=1_000, to_a=500)
    paid = txn(charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300))
    first = refund(original=paid, amount=100, actor=ctx.owner, reason="bad output")
    assert (first.kind, first.amount, first.reverses, first.memo, first.workspace) == (
        TransactionKind.REFUND,
        100,
        paid,
        "bad output",
        ctx.a,
    )
    assert balances(ctx) == (500, 300, 0)
    before = ledger_state(ctx.org)
    with pytest.raises(InvalidAmount):
        refund(original=paid, amount=201, actor=ctx.owner, reason="too much")
    assert ledger_state(ctx.org) == before
    refund(original=paid, amount=200, actor=ctx.owner, reason="rest")
    with pytest.raises(InvalidAmount):
        refund(original=paid, amount=1, actor=ctx.owner, reason="nothing left")
    assert balances(ctx) == (500, 500, 0)
    assert consumed(ctx.org) == 0
    assert reconcile() == []


def test_refund_in_shared_mode_goes_back_to_the_pool():
    ctx = make_ctx(grant=1_000)
    paid = txn(charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300))
    refund(original=paid, amount=300, actor=ctx.owner, reason="r")
    assert balances(ctx) == (1_000, 0, 0)
    assert reconcile() == []


def test_refund_of_a_budget_charge_after_switch_to_shared_goes_to_the_pool():
    ctx = budget_ctx(grant=1_000, to_a=500)
    paid = txn(charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300))
    switch(ctx, CreditMode.SHARED)
    refund(original=paid, amount=300, actor=ctx.owner, reason="r")
    assert balances(ctx) == (1_000, 0, 0)
    assert reconcile() == []


def test_refund_of_a_capture_goes_to_the_account_that_held():
    ctx = budget_ctx(grant=1_000, to_a=500)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold
    captured = txn(hold_capture(hold=hold, amount=250))
    with pytest.raises(InvalidAmount):
        refund(original=captured, amount=251, actor=ctx.owner, reason="more than captured")
    refund(original=captured, amount=250, actor=ctx.owner, reason="r")
    assert balances(ctx) == (500, 500, 0)
    assert consumed(ctx.org) == 0
    assert reconcile() == []


def test_refund_replay_and_only_spends_are_refundable():
    ctx = make_ctx(grant=1_000)
    paid = txn(charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300))
    first = refund(original=paid, amount=100, actor=ctx.owner, reason="r", idempotency_key="rf1")
    assert refund(original=paid, amount=100, actor=ctx.owner, reason="r", idempotency_key="rf1").pk == first.pk
    with pytest.raises(IdempotencyConflict):
        refund(original=paid, amount=150, actor=ctx.owner, reason="r", idempotency_key="rf1")
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
    before = ledger_state(ctx.org)
    for not_a_spend in (
        LedgerTransaction.objects.get(organization=ctx.org, kind=TransactionKind.GRANT),
        txn(hold),
        first,
    ):
        with pytest.raises(LedgerError):
            refund(original=not_a_spend, amount=1, actor=ctx.owner, reason="r")
    assert ledger_state(ctx.org) == before
    hold_release(hold=hold.hold)
    assert bal(ctx.primary) == 800
    assert reconcile() == []


def test_refund_of_a_capture_of_nothing_is_a_typed_refusal():
    ctx = make_ctx(grant=1_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100).hold
    nothing = txn(hold_capture(hold=hold, amount=0))
    with pytest.raises(InvalidAmount):
        refund(original=nothing, amount=1, actor=ctx.owner, reason="r")
    assert reconcile() == []


# --- transfers ---------------------------------------------------------------------------------------------------


def test_spec_example_transfers_and_switches():
    """10,000 total, 2,000 to A and 3,000 to B → Primary shows 5,000; switch back → Primary 10,000."""
    ctx = make_ctx(grant=10_000)
    switch(ctx, CreditMode.BUDGET)
    assert balances(ctx) == (10_000, 0, 0)
    billing_services.credits_transfer(
        organization=ctx.org, source=ctx.primary, target=ctx.a, amount=2_000, actor=ctx.owner
    )
    billing_services.credits_transfer(
        organization=ctx.org, source=ctx.primary, target=ctx.b, amount=3_000, actor=ctx.owner
    )
    assert balances(ctx) == (5_000, 2_000, 3_000)
    assert AuditEvent.objects.filter(organization=ctx.org, action="credits.transferred").count() == 2
    transactions = LedgerTransaction.objects.filter(organization=ctx.org).count()
    switch(ctx, CreditMode.SHARED)
    assert balances(ctx) == (10_000, 0, 0)
    sweep = LedgerTransaction.objects.get(organization=ctx.org, kind=TransactionKind.SWEEP)
    assert LedgerTransaction.objects.filter(organization=ctx.org).count() == transactions + 1
    assert sweep.amount == 5_000
    assert sorted((e.from_account.workspace.name, e.to_account.workspace, e.amount) for e in sweep.entries.all()) == [
        ("A", ctx.primary, 2_000),
        ("B", ctx.primary, 3_000),
    ]
    event = AuditEvent.objects.filter(organization=ctx.org, action="credits.mode_switched").latest("created_at")
    assert (event.before, event.after) == (
        {"credit_mode": "budget"},
        {"credit_mode": "shared", "swept_to_primary": 5_000},
    )
    # shared → budget moves nothing: every other workspace starts at zero.
    switch(ctx, CreditMode.BUDGET)
    assert balances(ctx) == (10_000, 0, 0)
    assert LedgerTransaction.objects.filter(organization=ctx.org).count() == transactions + 1
    assert reconcile() == []


def test_switch_to_the_current_mode_is_a_no_op_and_unknown_modes_are_refused():
    ctx = budget_ctx(grant=1_000, to_a=400)
    before = ledger_state(ctx.org)
    switches = AuditEvent.objects.filter(organization=ctx.org, action="credits.mode_switched")
    assert switches.count() == 1
    switch(ctx, CreditMode.BUDGET)
    with pytest.raises(ValidationError):
        switch(ctx, "per-user")
    assert ledger_state(ctx.org) == before
    assert switches.count() == 1
    # A sweep of nothing writes no transaction.
    credits_transfer(organization=ctx.org, source=ctx.a, target=ctx.primary, amount=400, actor=ctx.owner)
    count = LedgerTransaction.objects.filter(organization=ctx.org).count()
    switch(ctx, CreditMode.SHARED)
    assert LedgerTransaction.objects.filter(organization=ctx.org).count() == count
    assert reconcile() == []


def test_transfers_only_in_budget_mode():
    ctx = make_ctx(grant=1_000)
    before = ledger_state(ctx.org)
    with pytest.raises(ModeMismatch) as refused:
        credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=100, actor=ctx.owner)
    assert refused.value.code == "wrong_credit_mode"
    with pytest.raises(ModeMismatch):
        billing_services.credits_transfer(
            organization=ctx.org, source=ctx.primary, target=ctx.a, amount=100, actor=ctx.owner
        )
    assert ledger_state(ctx.org) == before
    assert not AuditEvent.objects.filter(organization=ctx.org, action="credits.transferred").exists()
    assert reconcile() == []


def test_transfer_never_exceeds_the_source_balance():
    ctx = budget_ctx(grant=1_000, to_a=300)
    before = ledger_state(ctx.org)
    with pytest.raises(CreditLimitReached) as refused:
        credits_transfer(organization=ctx.org, source=ctx.a, target=ctx.b, amount=301, actor=ctx.owner)
    assert (refused.value.limit, refused.value.available, refused.value.resets_at) == ("workspace_balance", 300, None)
    with pytest.raises(CreditLimitReached):
        billing_services.credits_transfer(organization=ctx.org, source=ctx.b, target=ctx.a, amount=1, actor=ctx.owner)
    assert ledger_state(ctx.org) == before
    credits_transfer(organization=ctx.org, source=ctx.a, target=ctx.b, amount=300, actor=ctx.owner)
    assert balances(ctx) == (700, 0, 300)
    assert reconcile() == []


def test_transfer_needs_two_live_workspaces_of_the_organization():
    ctx = budget_ctx(grant=1_000, to_a=300, to_b=200)
    other = make_ctx()
    workspace_archive(workspace=ctx.b, actor=ctx.owner)
    ctx.b.refresh_from_db()
    assert balances(ctx) == (700, 300, 0)
    before = ledger_state(ctx.org)
    for source, target in [(ctx.a, ctx.a), (ctx.a, ctx.b), (ctx.b, ctx.a), (ctx.a, other.a), (other.a, ctx.a)]:
        with pytest.raises(LedgerError):
            credits_transfer(organization=ctx.org, source=source, target=target, amount=1, actor=ctx.owner)
    assert ledger_state(ctx.org) == before
    # Restored, it takes part again.
    workspace_restore(workspace=ctx.b, actor=ctx.owner)
    ctx.b.refresh_from_db()
    credits_transfer(organization=ctx.org, source=ctx.a, target=ctx.b, amount=100, actor=ctx.owner)
    assert balances(ctx) == (700, 200, 100)
    assert reconcile() == []


# --- archiving ---------------------------------------------------------------------------------------------------


def test_workspace_archive_returns_its_balance_to_the_primary_workspace():
    ctx = budget_ctx(grant=10_000, to_a=2_000, to_b=3_000)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=500)
    workspace_archive(workspace=ctx.a, actor=ctx.owner)
    assert balances(ctx) == (6_500, 0, 3_000)
    returned = LedgerTransaction.objects.get(organization=ctx.org, kind=TransactionKind.RETURN)
    assert returned.amount == 1_500
    event = AuditEvent.objects.get(organization=ctx.org, action="workspace.archived")
    assert event.after["credits_returned_to_primary"] == 1_500
    # Nothing to return: no transaction.
    credits_transfer(organization=ctx.org, source=ctx.b, target=ctx.primary, amount=3_000, actor=ctx.owner)
    assert workspace_credits_return(workspace=ctx.b, actor=ctx.owner) is None
    workspace_archive(workspace=ctx.b, actor=ctx.owner)
    assert LedgerTransaction.objects.filter(organization=ctx.org, kind=TransactionKind.RETURN).count() == 1
    assert balances(ctx) == (9_500, 0, 0)
    assert reconcile() == []


# --- monthly limits ----------------------------------------------------------------------------------------------


def test_workspace_limit_applies_in_shared_mode_only():
    ctx = make_ctx(grant=10_000)
    workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=500, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=200)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=1)
    assert (refused.value.limit, refused.value.available) == ("workspace_monthly_limit", 0)
    # Other workspaces are not limited by it.
    charge(organization=ctx.org, workspace=ctx.b, user=ctx.member, amount=1_000)
    assert counter(ctx.a) == 500
    switch(ctx, CreditMode.BUDGET)
    credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=2_000, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_500)
    assert bal(ctx.a) == 500
    # It does not bind in budget mode, but it still counts the month: back in shared mode it is spent.
    assert counter(ctx.a) == 2_000
    assert reconcile() == []
    switch(ctx, CreditMode.SHARED)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=1)
    assert (refused.value.limit, refused.value.available) == ("workspace_monthly_limit", 0)


@pytest.mark.parametrize("mode", [CreditMode.SHARED, CreditMode.BUDGET])
def test_member_limit_applies_in_both_modes(mode):
    ctx = make_ctx(grant=10_000)
    if mode == CreditMode.BUDGET:
        switch(ctx, CreditMode.BUDGET)
        credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=5_000, actor=ctx.owner)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=400, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=250)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=151)
    assert (refused.value.limit, refused.value.available) == ("member_monthly_limit", 150)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=150)
    # Only that member, only in that workspace.
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=1_000)
    if mode == CreditMode.SHARED:
        charge(organization=ctx.org, workspace=ctx.b, user=ctx.member, amount=1_000)
    assert counter(ctx.a, ctx.member) == 400
    assert counter(ctx.a, ctx.owner) == 0
    # Removing the limit unblocks; a limit of zero blocks everything.
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=None, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=10)
    workspace_limit_set(workspace=ctx.a, user=ctx.owner, monthly_limit=0, actor=ctx.owner)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=1)
    assert (refused.value.limit, refused.value.available) == ("member_monthly_limit", 0)
    assert reconcile() == []


def test_workspace_limit_is_named_before_the_member_limit_when_both_are_full():
    ctx = make_ctx(grant=10_000)
    workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=300, actor=ctx.owner)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=200, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=150)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=151)
    assert (refused.value.limit, refused.value.available) == ("workspace_monthly_limit", 150)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=150)
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=60)
    assert (refused.value.limit, refused.value.available) == ("workspace_monthly_limit", 0)
    assert (counter(ctx.a), counter(ctx.a, ctx.member)) == (300, 150)
    assert reconcile() == []


@pytest.mark.parametrize("who", ["workspace", "member"])
def test_a_hold_reserves_against_the_limit_and_giving_back_frees_it(who):
    ctx = make_ctx(grant=10_000)
    user = None if who == "workspace" else ctx.member
    limit_name = "workspace_monthly_limit" if who == "workspace" else "member_monthly_limit"
    workspace_limit_set(workspace=ctx.a, user=user, monthly_limit=500, actor=ctx.owner)
    first = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    assert (refused.value.limit, refused.value.available) == (limit_name, 100)
    with pytest.raises(CreditLimitReached):
        hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=101)
    hold_release(hold=first)
    assert counter(ctx.a, user) == 0
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    second = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300).hold
    assert counter(ctx.a, user) == 500
    hold_capture(hold=second, amount=100)  # 200 of the 300 held come back under the limit
    assert counter(ctx.a, user) == 300
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1)
    # A refund gives room back too.
    refund(
        original=LedgerTransaction.objects.filter(organization=ctx.org, kind=TransactionKind.CHARGE).first(),
        amount=200,
        actor=ctx.owner,
        reason="r",
    )
    assert counter(ctx.a, user) == 300
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    assert consumed(ctx.org) == 500
    assert reconcile() == []


def test_refund_of_a_charge_made_before_the_limit_frees_room_under_it():
    """The limit counted the whole month, the charge before it too: refunding it gives that room back."""
    ctx = make_ctx(grant=10_000)
    before_limit = txn(charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100))
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=100, actor=ctx.owner)
    assert counter(ctx.a, ctx.member) == 100
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1)
    refund(original=before_limit, amount=100, actor=ctx.owner, reason="r")
    assert counter(ctx.a, ctx.member) == 0
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
    assert counter(ctx.a, ctx.member) == 100
    assert reconcile() == []


def test_refund_of_a_budget_mode_charge_frees_room_under_the_workspace_limit():
    """A workspace limit counts in budget mode too (it binds in shared mode): refunding such a charge gives back."""
    ctx = budget_ctx(grant=10_000, to_a=1_000)
    workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=500, actor=ctx.owner)
    in_budget = txn(charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300))
    switch(ctx, CreditMode.SHARED)
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=201)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    refund(original=in_budget, amount=300, actor=ctx.owner, reason="r")
    assert counter(ctx.a) == 200
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300)
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1)
    assert reconcile() == []


def test_hold_released_after_a_mode_switch_gives_its_reservation_back():
    ctx = make_ctx(grant=10_000)
    workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=500, actor=ctx.owner)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold
    switch(ctx, CreditMode.BUDGET)
    hold_release(hold=hold)
    switch(ctx, CreditMode.SHARED)
    assert counter(ctx.a) == 0
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=500)
    assert reconcile() == []


def test_workspace_limit_set_validates():
    ctx = make_ctx()
    outsider = UserFactory()
    for bad in (-1, True):
        with pytest.raises(ValidationError):
            workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=bad, actor=ctx.owner)
    with pytest.raises(ValidationError):
        workspace_limit_set(workspace=ctx.a, user=outsider, monthly_limit=10, actor=ctx.owner)
    assert not WorkspaceLimit.objects.filter(workspace=ctx.a).exists()
    assert reconcile() == []


# --- the single-statement charge and the general path agree -----------------------------------------------------


def _scenario(ctx: SimpleNamespace) -> list:
    """Charges (with refusals, replays and a conflict) in both modes; returns what each step answered."""
    answers: list = []
    ids: dict[int, int] = {}

    def step(workspace, user, amount, key=None):
        try:
            result = charge(organization=ctx.org, workspace=workspace, user=user, amount=amount, idempotency_key=key)
        except CreditLimitReached as error:
            answers.append(("refused", error.limit, error.available, error.resets_at))
        except IdempotencyConflict:
            answers.append(("conflict",))
        else:
            position = ids.setdefault(result.transaction_id, len(ids))
            answers.append(("charged", position, result.available, result.replayed))

    credits_grant(organization=ctx.org, amount=1_000, actor=ctx.owner)
    step(ctx.a, ctx.member, 300)
    step(ctx.b, ctx.owner, 200)
    step(ctx.a, ctx.member, 600)  # pool has 500
    step(ctx.a, ctx.member, 500, key="k0")
    step(ctx.a, ctx.member, 1)
    credits_grant(organization=ctx.org, amount=1_000, actor=ctx.owner)
    switch(ctx, CreditMode.BUDGET)
    credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=400, actor=ctx.owner)
    step(ctx.a, ctx.member, 250)
    step(ctx.a, ctx.member, 200)  # A has 150
    step(ctx.b, ctx.member, 1)  # B has nothing
    step(ctx.primary, ctx.owner, 100)
    step(ctx.a, ctx.member, 50, key="k1")
    step(ctx.a, ctx.member, 50, key="k1")
    step(ctx.a, ctx.member, 60, key="k1")
    step(ctx.a, ctx.owner, 100)
    switch(ctx, CreditMode.SHARED)
    step(ctx.a, ctx.member, 450)
    step(ctx.a, ctx.member, 1_000)
    answers.append(balances(ctx))
    answers.append(consumed(ctx.org))
    labels = {ctx.primary.pk: "primary", ctx.a.pk: "A", ctx.b.pk: "B"}
    accounts = {
        pk: labels.get(workspace_id, kind)
        for pk, workspace_id, kind in Account.objects.filter(organization=ctx.org).values_list(
            "pk", "workspace_id", "kind"
        )
    }
    actors = {ctx.owner.pk: "owner", ctx.member.pk: "member", None: None}
    for row in LedgerTransaction.objects.filter(organization=ctx.org).order_by("pk"):
        entries = sorted((accounts[e.from_account_id], accounts[e.to_account_id], e.amount) for e in row.entries.all())
        answers.append(
            (
                row.kind,
                row.amount,
                labels.get(row.workspace_id),
                actors[row.actor_id],
                row.idempotency_key,
                row.period_start,
                row.memo if row.kind == TransactionKind.CHARGE else "",
                entries,
            )
        )
    return answers


@pytest.mark.parametrize("limit", ["member", "workspace_in_budget"])
def test_single_statement_and_general_path_agree(limit):
    fast = make_ctx()
    general = make_ctx()
    if limit == "member":
        # A member limit that is never reached: every charge of `member` in A, B takes the general path.
        for workspace in (general.a, general.b):
            workspace_limit_set(workspace=workspace, user=general.member, monthly_limit=10**9, actor=general.owner)
    else:
        # A workspace limit only applies in shared mode, but sends every charge of A down the general path.
        workspace_limit_set(workspace=general.a, user=None, monthly_limit=10**9, actor=general.owner)
    assert _scenario(fast) == _scenario(general)
    assert reconcile() == []
