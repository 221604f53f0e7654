"""Budget periods are calendar months in the organization's time zone (frozen clock, time-machine): monthly limits
block at the cap on the last day and reset exactly at the organization's local midnight of the 1st — once; the
refusal says when; spends, holds and refunds stay with the period they were made in."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing.ledger import (
    CreditLimitReached,
    charge,
    credits_grant,
    hold_capture,
    hold_place,
    hold_release,
    period_bounds,
    refund,
)
from billing.models import LedgerTransaction, SpendCounter
from billing.reconcile import reconcile
from billing.services import workspace_limit_set
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import WorkspaceRole

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def make_ctx(timezone: str, *, grant: int = 100_000) -> SimpleNamespace:
    owner = UserFactory()
    org = make_organization(owner=owner, timezone=timezone)
    a = make_workspace(org, name="A")
    member = make_member(org, workspaces={a: WorkspaceRole.MEMBER}).user
    credits_grant(organization=org, amount=grant, actor=owner)
    return SimpleNamespace(org=org, owner=owner, member=member, a=a)


def spent(ctx: SimpleNamespace, period_start: date, user=None) -> int | None:
    row = SpendCounter.objects.filter(workspace=ctx.a, user=user, period_start=period_start).first()
    return None if row is None else row.spent


def refused(ctx: SimpleNamespace, amount: int = 1) -> CreditLimitReached:
    with pytest.raises(CreditLimitReached) as refusal:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=amount)
    return refusal.value


# --- period_bounds -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "at", "first_day", "resets_at"),
    [
        ("UTC", datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), date(2026, 1, 1), datetime(2026, 2, 1, tzinfo=UTC)),
        ("UTC", datetime(2026, 2, 1, tzinfo=UTC), date(2026, 2, 1), datetime(2026, 3, 1, tzinfo=UTC)),
        # Tokyo is UTC+9: its February starts on January 31 at 15:00 UTC.
        (
            "Asia/Tokyo",
            datetime(2026, 1, 31, 14, 59, 59, tzinfo=UTC),
            date(2026, 1, 1),
            datetime(2026, 2, 1, tzinfo=TOKYO),
        ),
        ("Asia/Tokyo", datetime(2026, 1, 31, 15, 0, tzinfo=UTC), date(2026, 2, 1), datetime(2026, 3, 1, tzinfo=TOKYO)),
        ("Asia/Tokyo", datetime(2026, 12, 31, 15, 0, tzinfo=UTC), date(2027, 1, 1), datetime(2027, 2, 1, tzinfo=TOKYO)),
        # New York: EST (UTC-5) in winter, EDT (UTC-4) from March 8 to November 1, 2026.
        (
            "America/New_York",
            datetime(2026, 3, 1, 4, 59, 59, tzinfo=UTC),
            date(2026, 2, 1),
            datetime(2026, 3, 1, tzinfo=NEW_YORK),
        ),
        (
            "America/New_York",
            datetime(2026, 3, 1, 5, 0, tzinfo=UTC),
            date(2026, 3, 1),
            datetime(2026, 4, 1, tzinfo=NEW_YORK),
        ),
        (
            "America/New_York",
            datetime(2026, 4, 1, 3, 59, 59, tzinfo=UTC),
            date(2026, 3, 1),
            datetime(2026, 4, 1, tzinfo=NEW_YORK),
        ),
        (
            "America/New_York",
            datetime(2026, 4, 1, 4, 0, tzinfo=UTC),
            date(2026, 4, 1),
            datetime(2026, 5, 1, tzinfo=NEW_YORK),
        ),
        (
            "America/New_York",
            datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
            date(2026, 11, 1),
            datetime(2026, 12, 1, tzinfo=NEW_YORK),
        ),
        (
            "America/New_York",
            datetime(2027, 1, 1, 4, 59, 59, tzinfo=UTC),
            date(2026, 12, 1),
            datetime(2027, 1, 1, tzinfo=NEW_YORK),
        ),
    ],
)
def test_period_bounds_are_calendar_months_in_the_org_timezone(timezone, at, first_day, resets_at):
    org = make_organization(timezone=timezone)
    assert period_bounds(org, at) == (first_day, resets_at)
    local = resets_at.astimezone(ZoneInfo(timezone))
    assert (local.day, local.hour, local.minute, local.second) == (1, 0, 0, 0)
    assert reconcile() == []


def test_period_bounds_with_clocks_going_back_and_forth_and_several_timezones():
    """The bounds are cached per time zone: moving back in time or switching zone must not reuse a wrong month."""
    tokyo, new_york = make_organization(timezone="Asia/Tokyo"), make_organization(timezone="America/New_York")
    instant = datetime(2026, 1, 31, 16, 0, tzinfo=UTC)  # February in Tokyo, January in New York
    for _ in range(2):
        assert period_bounds(tokyo, instant)[0] == date(2026, 2, 1)
        assert period_bounds(new_york, instant)[0] == date(2026, 1, 1)
        assert period_bounds(tokyo, instant - timedelta(hours=2))[0] == date(2026, 1, 1)
        assert period_bounds(tokyo, instant + timedelta(days=40))[0] == date(2026, 3, 1)
        assert period_bounds(new_york, instant + timedelta(hours=13))[0] == date(2026, 2, 1)
    with time_machine.travel(instant, tick=False):
        assert period_bounds(tokyo) == (date(2026, 2, 1), datetime(2026, 3, 1, tzinfo=TOKYO))
        assert period_bounds(new_york) == (date(2026, 1, 1), datetime(2026, 2, 1, tzinfo=NEW_YORK))
    assert reconcile() == []


def test_spends_are_recorded_in_the_org_local_month():
    tokyo, new_york = make_ctx("Asia/Tokyo"), make_ctx("America/New_York")
    with time_machine.travel(datetime(2026, 1, 31, 16, 0, tzinfo=UTC), tick=False):
        # Single-statement path (no limits) and general path (a member limit) alike.
        fast = [charge(organization=c.org, workspace=c.a, user=c.member, amount=10) for c in (tokyo, new_york)]
        for c in (tokyo, new_york):
            workspace_limit_set(workspace=c.a, user=c.member, monthly_limit=1_000, actor=c.owner)
        general = [charge(organization=c.org, workspace=c.a, user=c.member, amount=10) for c in (tokyo, new_york)]
    for results in (fast, general):
        periods = [LedgerTransaction.objects.get(pk=r.transaction_id).period_start for r in results]
        assert periods == [date(2026, 2, 1), date(2026, 1, 1)]
    # The limit counts the whole month: the charge made before it was set too.
    assert spent(tokyo, date(2026, 2, 1), tokyo.member) == 20
    assert spent(new_york, date(2026, 1, 1), new_york.member) == 20
    assert reconcile() == []


# --- limits reset exactly at the organization's midnight ---------------------------------------------------------

BOUNDARIES = [
    # (time zone, the local midnight that starts the next month)
    pytest.param("Asia/Tokyo", datetime(2026, 2, 1, tzinfo=TOKYO), id="tokyo-jan-feb"),
    pytest.param("Asia/Tokyo", datetime(2027, 1, 1, tzinfo=TOKYO), id="tokyo-new-year"),
    pytest.param("America/New_York", datetime(2026, 4, 1, tzinfo=NEW_YORK), id="new-york-mar-apr-edt"),
    pytest.param("America/New_York", datetime(2026, 3, 1, tzinfo=NEW_YORK), id="new-york-feb-mar-est"),
    pytest.param("America/New_York", datetime(2026, 11, 1, tzinfo=NEW_YORK), id="new-york-oct-nov-dst-ends"),
]


@pytest.mark.parametrize("who", ["member", "workspace"])
@pytest.mark.parametrize(("timezone", "midnight"), BOUNDARIES)
def test_monthly_limit_resets_exactly_once_at_the_org_midnight(timezone, midnight, who):
    ctx = make_ctx(timezone)
    user = ctx.member if who == "member" else None
    name = "member_monthly_limit" if who == "member" else "workspace_monthly_limit"
    workspace_limit_set(workspace=ctx.a, user=user, monthly_limit=100, actor=ctx.owner)
    old_period = (midnight - timedelta(days=1)).date().replace(day=1)
    new_period = midnight.date()
    next_reset = (midnight + timedelta(days=32)).replace(day=1)

    with time_machine.travel(midnight - timedelta(hours=1), tick=False) as clock:
        # The last day of the month: the cap is reached, then every further charge is refused.
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=60)
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=40)
        error = refused(ctx)
        assert (error.limit, error.available, error.resets_at) == (name, 0, midnight)
        assert error.resets_at.astimezone(UTC) == midnight.astimezone(UTC)

        clock.move_to(midnight - timedelta(seconds=1))
        error = refused(ctx)
        assert (error.limit, error.available, error.resets_at) == (name, 0, midnight)

        clock.move_to(midnight)
        result = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
        assert LedgerTransaction.objects.get(pk=result.transaction_id).period_start == new_period
        error = refused(ctx)
        assert (error.limit, error.available, error.resets_at) == (name, 0, next_reset)

        # Reset once: later in the new month the new counter still holds.
        for later in (timedelta(seconds=1), timedelta(hours=1), timedelta(days=14)):
            clock.move_to(midnight + later)
            assert refused(ctx).resets_at == next_reset

    # The old period's counter is kept as it was, the new period has its own.
    assert spent(ctx, old_period, user) == 100
    assert spent(ctx, new_period, user) == 100
    assert SpendCounter.objects.filter(workspace=ctx.a).count() == 2
    assert reconcile() == []


@pytest.mark.parametrize(("timezone", "midnight"), BOUNDARIES[:1] + BOUNDARIES[2:3])
def test_room_left_before_midnight_does_not_carry_over(timezone, midnight):
    ctx = make_ctx(timezone)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=100, actor=ctx.owner)
    with time_machine.travel(midnight - timedelta(minutes=1), tick=False) as clock:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=30)
        clock.move_to(midnight + timedelta(minutes=1))
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
        error = refused(ctx)
        assert (error.available, error.resets_at) == (0, (midnight + timedelta(days=32)).replace(day=1))
    assert reconcile() == []


# --- holds and refunds belong to the period they were made in ----------------------------------------------------


@pytest.mark.parametrize("settle", ["release", "capture"])
def test_hold_across_midnight_gives_back_to_its_own_period(settle):
    ctx = make_ctx("Asia/Tokyo")
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=100, actor=ctx.owner)
    midnight = datetime(2026, 2, 1, tzinfo=TOKYO)
    with time_machine.travel(midnight - timedelta(minutes=30), tick=False) as clock:
        hold = hold_place(
            organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100, ttl=timedelta(hours=2)
        ).hold
        assert hold.period_start == date(2026, 1, 1)
        assert refused(ctx).resets_at == midnight
        clock.move_to(midnight + timedelta(minutes=30))
        # The new month starts empty although the hold is still pending.
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
        if settle == "release":
            hold_release(hold=hold)
        else:
            settled = hold_capture(hold=hold, amount=40)
            assert LedgerTransaction.objects.get(pk=settled.transaction_id).period_start == date(2026, 1, 1)
        # What came back went to January, not to February.
        assert spent(ctx, date(2026, 1, 1), ctx.member) == (0 if settle == "release" else 40)
        assert spent(ctx, date(2026, 2, 1), ctx.member) == 100
        assert refused(ctx).resets_at == datetime(2026, 3, 1, tzinfo=TOKYO)
    assert reconcile() == []


def test_refund_after_midnight_gives_back_to_the_period_of_the_charge():
    ctx = make_ctx("America/New_York")
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=100, actor=ctx.owner)
    midnight = datetime(2026, 4, 1, tzinfo=NEW_YORK)
    with time_machine.travel(midnight - timedelta(minutes=5), tick=False) as clock:
        march = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
        clock.move_to(midnight + timedelta(minutes=5))
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
        refund(original=LedgerTransaction.objects.get(pk=march.transaction_id), amount=100, actor=ctx.owner, reason="r")
        assert spent(ctx, date(2026, 3, 1), ctx.member) == 0
        assert spent(ctx, date(2026, 4, 1), ctx.member) == 100
        error = refused(ctx)
        assert (error.available, error.resets_at) == (0, datetime(2026, 5, 1, tzinfo=NEW_YORK))
    assert reconcile() == []
