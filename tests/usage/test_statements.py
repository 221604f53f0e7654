"""Client statements: lines = the raw usage events of the month (cut in the organization's time zone), balances =
the ledger's movements of the workspace account, closed once into an immutable, gaplessly numbered statement."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.db.models import Sum

from billing import ledger
from billing.models import Account, LedgerEntry
from billing.services import credit_mode_switch, credits_transfer
from orgs.models import AuditAction, AuditEvent, CreditMode
from qolaba.celery import app
from qolaba.lifecycle import workspace_archive
from tests.concurrency import run_together
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage.catalog import prices_ensure_defaults
from usage.models import (
    BalanceItem,
    ImmutableRowError,
    Price,
    Statement,
    StatementLine,
    UsageEvent,
    UsageStatus,
)
from usage.services import usage_charge, usage_hold_capture, usage_hold_place, usage_hold_release
from usage.statements import (
    StatementNotDue,
    amount_for,
    client_rate_set,
    month_bounds,
    statement_close,
    statement_compute,
    statement_figures,
    statements_close_due,
)
from usage.tasks import statements_close_due_run
from workspaces.models import WorkspaceRole

pytestmark = pytest.mark.django_db

AUGUST = date(2026, 8, 1)


def local(tz: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(tz))  # type: ignore[misc]


def make_world(timezone: str, *, budget: bool, at: datetime) -> SimpleNamespace:
    """An organization (in `timezone`) with a client workspace, another workspace and a member, made at `at`."""
    prices_ensure_defaults()
    with time_machine.travel(at, tick=False):
        owner = UserFactory()
        org = make_organization(owner=owner, timezone=timezone)
        primary = org.workspaces.get(is_primary=True)
        client = make_workspace(org, name="Client")
        other = make_workspace(org, name="Other")
        member = make_member(org, workspaces={client: WorkspaceRole.MEMBER, other: WorkspaceRole.MEMBER}).user
        ledger.credits_grant(organization=org, amount=100_000, actor=owner)
        if budget:
            org = credit_mode_switch(organization=org, mode=CreditMode.BUDGET, actor=owner)
            credits_transfer(organization=org, source=primary, target=client, amount=10_000, actor=owner)
            credits_transfer(organization=org, source=primary, target=other, amount=1_000, actor=owner)
    for workspace in (primary, client, other):
        workspace.organization = org
    return SimpleNamespace(org=org, owner=owner, member=member, primary=primary, client=client, other=other)


def price(tool: str, model: str) -> Price:
    return Price.objects.get(tool=tool, model=model)


def charge(world, at: datetime, model: str, units: int, *, tool: str = "chat", workspace=None) -> UsageEvent:
    with time_machine.travel(at, tick=False):
        return usage_charge(
            workspace=workspace or world.client,
            user=world.member,
            price=price(tool, model),
            units=units,
            idempotency_key=f"charge-{at.isoformat()}-{model}-{units}",
        ).event


def hold(world, at: datetime, tool: str, model: str, units: int) -> UsageEvent:
    with time_machine.travel(at, tick=False):
        return usage_hold_place(
            workspace=world.client,
            user=world.member,
            price=price(tool, model),
            units=units,
            ttl=timedelta(hours=2),
            idempotency_key=f"hold-{at.isoformat()}-{model}",
        ).event


def capture(world, event: UsageEvent, at: datetime, units: int) -> None:
    event.refresh_from_db()
    with time_machine.travel(at, tick=False):
        usage_hold_capture(event=event, workspace=world.client, units=units)


def release(event: UsageEvent, at: datetime) -> None:
    event.refresh_from_db()
    with time_machine.travel(at, tick=False):
        usage_hold_release(event=event)


def raw_lines(workspace, timezone: str, month: date) -> dict[tuple[str, str], tuple[int, int, int]]:
    """The month's usage straight from the events, cut by converting each event's time to the local calendar."""
    tz = ZoneInfo(timezone)
    lines: dict[tuple[str, str], tuple[int, int, int]] = {}
    for event in UsageEvent.objects.filter(workspace=workspace, status=UsageStatus.CAPTURED):
        day = event.created_at.astimezone(tz).date()
        if (day.year, day.month) == (month.year, month.month):
            generations, units, credits = lines.get((event.tool, event.model), (0, 0, 0))
            lines[event.tool, event.model] = (generations + 1, units + event.units, credits + event.credits)
    return lines


def statement_lines(figures) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {(line.tool, line.model): (line.generations, line.units, line.credits) for line in figures.lines}


def ledger_balance(account_id: int, before: datetime) -> int:
    """The account's balance at an instant, from every ledger entry before it (not the statement's method)."""
    entries = LedgerEntry.objects.filter(transaction__created_at__lt=before)
    into = entries.filter(to_account_id=account_id).aggregate(total=Sum("amount"))["total"] or 0
    out = entries.filter(from_account_id=account_id).aggregate(total=Sum("amount"))["total"] or 0
    return into - out


# --- money -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credits", "rate", "expected"),
    [
        (1, "5", "0.01"),  # 0.005: half-up, not to even
        (3, "5", "0.02"),  # 0.015
        (1, "4.9999", "0.00"),
        (2_000_000, "12.5", "25000.00"),
        (221, "12.345", "2.73"),  # 2.728245
        (9_223_372_036_854_775_807, "99999999.9999", "922337203684555243496314.52"),
    ],
)
def test_amounts_are_exact_decimals_rounded_half_up(credits, rate, expected):
    assert amount_for(credits, Decimal(rate)) == Decimal(expected)


# --- lines = raw events, months cut in the organization's time zone ------------------------------------------------


@pytest.mark.parametrize("timezone", ["Asia/Kolkata", "America/New_York"])
def test_lines_equal_the_raw_events_with_minutes_either_side_of_midnight(timezone):
    world = make_world(timezone, budget=False, at=local(timezone, 2026, 6, 10, 9))
    starts_at, ends_at = month_bounds(world.org, AUGUST)
    assert starts_at == local(timezone, 2026, 8, 1)
    assert ends_at == local(timezone, 2026, 9, 1)
    charge(world, starts_at - timedelta(minutes=3), "gpt-4o", 1)  # July, 3 minutes before midnight
    charge(world, starts_at - timedelta(microseconds=1), "gpt-4o", 7)  # July, the last instant
    charge(world, starts_at, "gpt-4o-mini", 2)  # August, the first instant
    charge(world, starts_at + timedelta(minutes=2), "gpt-4o", 3)
    charge(world, local(timezone, 2026, 8, 14, 13), "flux-pro", 2, tool="image")
    charge(world, local(timezone, 2026, 8, 14, 15), "flux-pro", 1, tool="image")
    charge(world, local(timezone, 2026, 8, 20, 11), "elevenlabs-v2", 4, tool="speech")
    charge(world, ends_at - timedelta(minutes=4), "claude-sonnet", 2)  # August, 4 minutes before midnight
    charge(world, ends_at + timedelta(minutes=1), "claude-sonnet", 5)  # September
    released = hold(world, local(timezone, 2026, 8, 21, 10), "video", "kling-1.6", 4)
    release(released, local(timezone, 2026, 8, 21, 10, 5))
    charge(world, local(timezone, 2026, 8, 9, 9), "gpt-4o", 9, workspace=world.other)  # another workspace

    figures = statement_compute(workspace=world.client, period_start=AUGUST)
    expected = raw_lines(world.client, timezone, AUGUST)
    assert statement_lines(figures) == expected
    assert expected == {
        ("chat", "gpt-4o"): (1, 3, 15),
        ("chat", "gpt-4o-mini"): (1, 2, 2),
        ("chat", "claude-sonnet"): (1, 2, 12),
        ("image", "flux-pro"): (2, 3, 36),
        ("speech", "elevenlabs-v2"): (1, 4, 32),
    }
    assert [line.tool for line in figures.lines] == ["chat", "chat", "chat", "image", "speech"]  # tool order
    assert figures.credits == 97
    assert figures.generations == 6
    assert figures.chatbot_credits == 29
    assert figures.image_speech_credits == 68
    assert figures.balance is None  # shared pool: no workspace balance
    assert {line.unit for line in figures.lines} == {"message", "image", "1k characters"}

    statement, created = statement_close(workspace=world.client, period_start=AUGUST, at=ends_at + timedelta(hours=1))
    assert created
    assert statement_lines(statement_figures(statement)) == expected
    assert (statement.credits, statement.generations) == (97, 6)
    assert statement.starts_at == starts_at
    assert statement.ends_at == ends_at


# --- budget mode: the balances reconcile with the ledger ------------------------------------------------------------


@pytest.fixture
def budget_month():
    """August 2026 in Kolkata (+05:30) of a budget-mode workspace: charges, holds captured (one across each month
    boundary) and released, a refund, credits transferred in and out."""
    tz = "Asia/Kolkata"
    world = make_world(tz, budget=True, at=local(tz, 2026, 7, 20, 10))
    t = SimpleNamespace(world=world, tz=tz)
    # July: a charge, and a hold placed 10 minutes before midnight, captured (2 of 4 seconds) after it.
    charge(world, local(tz, 2026, 7, 31, 23, 57), "gpt-4o", 1)  # 5
    july_hold = hold(world, local(tz, 2026, 7, 31, 23, 50), "video", "runway-gen3", 4)  # 100 held
    capture(world, july_hold, local(tz, 2026, 8, 1, 0, 10), 2)  # 50 spent in July, 50 back in August
    # August.
    charge(world, local(tz, 2026, 8, 1, 0, 2), "gpt-4o-mini", 3)  # 3
    charge(world, local(tz, 2026, 8, 5, 11), "flux-pro", 2, tool="image")  # 24
    refunded = charge(world, local(tz, 2026, 8, 10, 12), "claude-sonnet", 4)  # 24
    with time_machine.travel(local(tz, 2026, 8, 12, 9), tick=False):
        txn = ledger.refund(original=refunded.ledger_transaction, amount=6, actor=world.owner, reason="bad answer")
    assert txn.amount == 6
    kling = hold(world, local(tz, 2026, 8, 15, 14), "video", "kling-1.6", 5)  # 100 held
    capture(world, kling, local(tz, 2026, 8, 15, 14, 3), 3)  # 60
    suno = hold(world, local(tz, 2026, 8, 16, 16), "music", "suno-v4", 1)  # 30 held
    release(suno, local(tz, 2026, 8, 16, 16, 1))
    with time_machine.travel(local(tz, 2026, 8, 20, 10), tick=False):
        credits_transfer(
            organization=world.org, source=world.primary, target=world.client, amount=2_000, actor=world.owner
        )
    with time_machine.travel(local(tz, 2026, 8, 22, 10), tick=False):
        credits_transfer(organization=world.org, source=world.client, target=world.other, amount=500, actor=world.owner)
    t.late_hold = hold(world, local(tz, 2026, 8, 31, 23, 58), "video", "runway-gen3", 6)  # 150 held
    charge(world, local(tz, 2026, 8, 31, 23, 59), "gpt-4o", 2)  # 10
    charge(world, local(tz, 2026, 9, 1, 0, 1), "gpt-4o", 1)  # September
    t.account_id = Account.objects.get(workspace=world.client).pk
    return t


def test_a_budget_month_reconciles_with_the_ledger_and_the_raw_events(budget_month):
    t = budget_month
    world, tz = t.world, t.tz
    starts_at, ends_at = month_bounds(world.org, AUGUST)
    after_month = local(tz, 2026, 9, 1, 1)

    # The late hold is still running: the month cannot close (its credits are not known yet).
    with pytest.raises(StatementNotDue):
        statement_close(workspace=world.client, period_start=AUGUST, at=after_month)
    with pytest.raises(StatementNotDue):  # nor before its end (+ the delay for charges in flight)
        statement_close(workspace=world.client, period_start=AUGUST, at=ends_at + timedelta(minutes=5))
    capture(world, t.late_hold, local(tz, 2026, 9, 1, 0, 20), 4)  # 100 spent in August, 50 back in September

    statement, created = statement_close(workspace=world.client, period_start=AUGUST, at=after_month)
    assert created
    figures = statement_figures(statement)
    balance = figures.balance
    assert balance is not None

    # Lines = the raw events, and the spent credits = the lines' total.
    assert statement_lines(figures) == raw_lines(world.client, tz, AUGUST)
    assert figures.credits == 3 + 24 + 24 + 60 + 100 + 10 == 221
    assert -balance.item(BalanceItem.SPENT) == figures.credits
    # Opening and closing = the sum of the ledger entries before each instant.
    assert balance.opening == ledger_balance(t.account_id, starts_at) == 10_000 - 5 - 100
    assert balance.closing == ledger_balance(t.account_id, ends_at)
    # Every movement itemised: opening + items = closing, and nothing unexplained.
    assert dict(balance.items) == {
        BalanceItem.RECEIVED: 2_000,
        BalanceItem.SPENT: -221,
        BalanceItem.REFUNDED: 6,
        BalanceItem.RETURNED_FROM_HOLDS: 50,  # July's hold: 100 held, 50 captured, 50 back on 1 August
        BalanceItem.HELD_OVER: -50,  # the late hold: 150 held, 100 captured, 50 back on 1 September
        BalanceItem.TRANSFERRED_OUT: -500,
    }
    assert balance.reconciles
    assert balance.closing == 9_895 + 2_000 - 221 + 6 + 50 - 50 - 500 == 11_180
    # The ledger's movements of the account in the month add up to the same.
    month_entries = LedgerEntry.objects.filter(
        transaction__created_at__gte=starts_at, transaction__created_at__lt=ends_at
    )
    into = month_entries.filter(to_account_id=t.account_id).aggregate(total=Sum("amount"))["total"]
    out = month_entries.filter(from_account_id=t.account_id).aggregate(total=Sum("amount"))["total"]
    assert into - out == balance.closing - balance.opening
    # Stored as closed.
    assert statement.opening_balance == 9_895
    assert statement.closing_balance == 11_180
    assert statement.credit_mode == CreditMode.BUDGET
    assert AuditEvent.objects.filter(action=AuditAction.STATEMENT_CLOSED, target_id=str(statement.pk)).count() == 1


def test_a_closed_statement_does_not_change_with_prices_renames_or_late_events(budget_month):
    t = budget_month
    world, tz = t.world, t.tz
    capture(world, t.late_hold, local(tz, 2026, 9, 1, 0, 20), 4)
    client_rate_set(workspace=world.client, rate_per_1000=Decimal("12.345"), currency="eur", actor=world.owner)
    statement, _ = statement_close(workspace=world.client, period_start=AUGUST, at=local(tz, 2026, 9, 2))
    before = statement_figures(statement)
    assert before.rate_per_1000 == Decimal("12.345")
    assert before.currency == "EUR"
    # Each line rounded half-up to the cent (0.037035 -> 0.04, 1.2345 -> 1.23), the total is their sum.
    assert {line.model: line.amount for line in before.lines} == {
        "gpt-4o-mini": Decimal("0.04"),
        "gpt-4o": Decimal("0.12"),
        "claude-sonnet": Decimal("0.30"),
        "flux-pro": Decimal("0.30"),
        "kling-1.6": Decimal("0.74"),
        "runway-gen3": Decimal("1.23"),
    }
    assert before.amount == statement.amount == Decimal("2.73")

    Price.objects.filter(tool="chat", model="gpt-4o").update(credits_per_unit=500, unit="request")
    world.client.name = "Renamed client"
    world.client.save(update_fields=["name"])
    client_rate_set(workspace=world.client, rate_per_1000=Decimal("99"), currency="USD", actor=world.owner)
    UsageEvent.objects.create(  # an event that appears later with a time in August (backdated)
        organization=world.org,
        workspace=world.client,
        user=world.member,
        tool="chat",
        model="gpt-4o",
        units=1,
        credits=500,
        status=UsageStatus.CAPTURED,
        idempotency_key="late",
        ledger_transaction_id=1,
        created_at=local(tz, 2026, 8, 20, 12),
    )
    again, created = statement_close(workspace=world.client, period_start=AUGUST, at=local(tz, 2026, 9, 3))
    assert not created
    assert again.pk == statement.pk
    statement = Statement.objects.get(pk=statement.pk)
    after = statement_figures(statement)
    assert after == before
    assert after.workspace_name == "Client"
    assert {line.unit for line in after.lines if line.model == "gpt-4o"} == {"message"}
    # The live figures of the same month did move: it is the stored statement that is read.
    assert statement_compute(workspace=world.client, period_start=AUGUST).credits == before.credits + 500


def test_closed_statements_cannot_be_updated(budget_month):
    t = budget_month
    capture(t.world, t.late_hold, local(t.tz, 2026, 9, 1, 0, 20), 4)
    statement, _ = statement_close(workspace=t.world.client, period_start=AUGUST, at=local(t.tz, 2026, 9, 2))
    statement.credits = 1
    with pytest.raises(ImmutableRowError):
        statement.save()
    line = statement.lines.first()
    with pytest.raises(ImmutableRowError):
        line.save()
    with pytest.raises(IntegrityError), transaction.atomic():  # the database refuses too
        Statement.objects.filter(pk=statement.pk).update(credits=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        StatementLine.objects.filter(statement=statement).update(credits=1)
    assert Statement.objects.get(pk=statement.pk).credits == 221


# --- numbering, idempotency, the beat task ------------------------------------------------------------------------


def test_closing_is_idempotent_and_numbers_are_gapless_per_organization():
    tz = "America/New_York"
    world = make_world(tz, budget=False, at=local(tz, 2026, 7, 2, 9))
    charge(world, local(tz, 2026, 7, 15, 9), "gpt-4o", 1)
    after = local(tz, 2026, 9, 1, 1)
    first, created = statement_close(workspace=world.client, period_start=date(2026, 7, 1), at=after)
    assert created
    assert first.sequence == 1
    assert first.number == f"{world.org.slug.upper()}-2026-07-0001"
    same, created = statement_close(workspace=world.client, period_start=date(2026, 7, 1), at=after)
    assert not created
    assert same.pk == first.pk
    second, _ = statement_close(workspace=world.primary, period_start=date(2026, 7, 1), at=after)
    third, _ = statement_close(workspace=world.client, period_start=AUGUST, at=after)
    assert [second.sequence, third.sequence] == [2, 3]
    assert third.number.endswith("-2026-08-0003")
    other_org = make_world(tz, budget=False, at=local(tz, 2026, 7, 2, 9))
    own, _ = statement_close(workspace=other_org.client, period_start=AUGUST, at=after)
    assert own.sequence == 1  # numbering is per organization
    with pytest.raises(IntegrityError), transaction.atomic():  # the same month twice is impossible
        Statement.objects.create(
            organization=world.org,
            workspace=world.client,
            sequence=99,
            number="X-99",
            period_start=AUGUST,
            starts_at=first.starts_at,
            ends_at=first.ends_at,
            timezone=tz,
            organization_name="x",
            workspace_name="x",
            credit_mode=CreditMode.SHARED,
            generations=0,
            credits=0,
        )


def test_statements_close_due_runs_in_month_order_and_a_second_run_closes_nothing():
    tz = "America/New_York"
    world = make_world(tz, budget=False, at=local(tz, 2026, 6, 3, 9))
    charge(world, local(tz, 2026, 6, 30, 23, 59), "gpt-4o", 1)
    charge(world, local(tz, 2026, 7, 10, 9), "gpt-4o", 2, workspace=world.other)
    with time_machine.travel(local(tz, 2026, 7, 15, 9), tick=False):
        workspace_archive(workspace=world.other, actor=world.owner)

    with time_machine.travel(local(tz, 2026, 9, 1, 0, 5), tick=False):
        closed = statements_close_due_run.apply().get()  # June and July; August ended only 5 minutes ago
    rows = list(Statement.objects.filter(organization=world.org).order_by("sequence"))
    assert closed == len(rows) == 2 + 2 + 2  # Primary, Client: June, July; Other (archived in July): June, July
    assert [s.sequence for s in rows] == [1, 2, 3, 4, 5, 6]
    assert [(s.period_start.month, s.workspace_name) for s in rows] == [
        (6, world.primary.name),
        (7, world.primary.name),
        (6, "Client"),
        (7, "Client"),
        (6, "Other"),
        (7, "Other"),
    ]
    assert next(s for s in rows if s.workspace_name == "Other" and s.period_start.month == 7).credits == 10
    assert next(s for s in rows if s.workspace_name == "Client" and s.period_start.month == 6).credits == 5

    with time_machine.travel(local(tz, 2026, 9, 1, 1, 25), tick=False):
        assert statements_close_due() == 2  # August of Primary and Client; not of the archived workspace
        assert statements_close_due() == 0
    assert Statement.objects.filter(organization=world.org).count() == 8
    assert sorted(Statement.objects.values_list("sequence", flat=True)) == list(range(1, 9))
    assert AuditEvent.objects.filter(organization=world.org, action=AuditAction.STATEMENT_CLOSED).count() == 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_closing_creates_one_statement_and_gapless_numbers():
    tz = "Asia/Kolkata"
    world = make_world(tz, budget=True, at=local(tz, 2026, 7, 20, 10))
    charge(world, local(tz, 2026, 8, 3, 10), "gpt-4o", 2)
    extra = [make_workspace(world.org, name=f"Extra {i}") for i in range(3)]
    at = local(tz, 2026, 9, 2)

    def closer(workspace):
        def work(start):
            start()
            return statement_close(workspace=workspace, period_start=AUGUST, at=at)[1]

        return work

    created = run_together([closer(world.client), closer(world.client)])
    assert sorted(created) == [False, True]
    assert Statement.objects.filter(workspace=world.client).count() == 1

    created = run_together([closer(workspace) for workspace in [world.primary, world.other, *extra]])
    assert created == [True] * 5
    assert sorted(Statement.objects.filter(organization=world.org).values_list("sequence", flat=True)) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_beat_closes_statements_every_hour(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["close-statements"]
    assert entry["task"] == "usage.tasks.statements_close_due_run"
    assert entry["task"] in app.tasks


def test_a_switch_to_budgets_during_the_month_says_what_the_pool_paid():
    """Shared pool until 10 August, budgets after: the workspace balance only paid for the later usage, and the
    statement says how much the pool paid instead of hiding it."""
    tz = "Asia/Kolkata"
    world = make_world(tz, budget=False, at=local(tz, 2026, 7, 20, 10))
    charge(world, local(tz, 2026, 8, 3, 10), "gpt-4o", 2)  # 10, from the pool
    with time_machine.travel(local(tz, 2026, 8, 10, 10), tick=False):
        world.org = credit_mode_switch(organization=world.org, mode=CreditMode.BUDGET, actor=world.owner)
        credits_transfer(
            organization=world.org, source=world.primary, target=world.client, amount=300, actor=world.owner
        )
    world.client.organization = world.org
    charge(world, local(tz, 2026, 8, 12, 10), "flux-pro", 1, tool="image")  # 12, from the workspace's budget
    statement, _ = statement_close(workspace=world.client, period_start=AUGUST, at=local(tz, 2026, 9, 2))
    figures = statement_figures(statement)
    assert figures.credits == 22
    assert figures.balance is not None
    assert dict(figures.balance.items) == {BalanceItem.RECEIVED: 300, BalanceItem.SPENT: -12}
    assert figures.balance.reconciles
    assert (figures.balance.opening, figures.balance.closing) == (0, 288)
    assert figures.notes == [
        "10 credits of this month's usage were not paid from this workspace's balance but from the organization's "
        "shared pool (the credit mode changed during the month)."
    ]


def test_a_budget_workspace_deleted_during_the_month_gets_its_statement_with_the_credits_returned():
    tz = "America/New_York"
    world = make_world(tz, budget=True, at=local(tz, 2026, 7, 20, 10))
    charge(world, local(tz, 2026, 8, 3, 10), "gpt-4o", 2)  # 10
    with time_machine.travel(local(tz, 2026, 8, 10, 10), tick=False):
        workspace_archive(workspace=world.client, actor=world.owner)
    world.client.refresh_from_db()
    with time_machine.travel(local(tz, 2026, 10, 2), tick=False):
        statements_close_due()
    # July (created) and August (deleted): nothing after the month it was deleted in.
    periods = list(
        Statement.objects.filter(workspace=world.client).order_by("period_start").values_list("period_start", flat=True)
    )
    assert periods == [date(2026, 7, 1), AUGUST]
    figures = statement_figures(Statement.objects.get(workspace=world.client, period_start=AUGUST))
    assert figures.balance is not None
    assert dict(figures.balance.items) == {
        BalanceItem.RECEIVED: 0,
        BalanceItem.SPENT: -10,
        BalanceItem.RETURNED_OUT: -9_990,
    }
    assert (figures.balance.opening, figures.balance.closing) == (10_000, 0)
    primary = statement_figures(Statement.objects.get(workspace=world.primary, period_start=AUGUST))
    assert primary.balance is not None
    assert primary.balance.item(BalanceItem.RECEIVED) == 9_990
