"""The usage roll-up (`usage.rollup`) on real PostgreSQL: the live read equals the raw events for every bucket,
grouping, filter and time zone, whatever the roll-up has seen; the roll-up itself equals the raw events once it has
caught up, counts every event exactly once (rows committed while a run is open, rows committed out of order), is
unchanged by a second run, by a run killed midway and by a rebuild.

The expected figures are computed here in Python from the raw events (their own times, not the roll-up's buckets),
cut into local hours, days, weeks and months with zoneinfo.

Every test commits (`transaction=True`): a run rolls up only what finished transactions wrote, and inside a test's
own transaction every event carries that still-running transaction's number, above any run's bound. The bound is
the oldest transaction still running on the whole PostgreSQL server (other databases' sessions included), so a
test that needs the roll-up to have caught up runs it until it has (`rollup_caught_up`).
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Max
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orgs.models import Organization
from tests.concurrency import run_together
from tests.factories import make_organization
from tests.usage.conftest import make_metered_workspace
from usage.models import (
    Price,
    UsageDailyRollup,
    UsageDailyZone,
    UsageEvent,
    UsageRollup,
    UsageRollupState,
    UsageStatus,
)
from usage.rollup import GROUPS, periods_fold, rollup_rebuild, rollup_state, rollup_update, usage_totals
from usage.rollup import run as run_module
from usage.rollup.sql import EVENT_FIELDS_READ, ROLLUP, daily_statements, run_statements
from usage.services import usage_charge, usage_hold_capture, usage_hold_place
from usage.tasks import rollup_update_run

pytestmark = pytest.mark.django_db(transaction=True)

WORKSPACES = (101, 102, 103)
USERS = (201, 202)
TOOLS = ("chat", "image", "video")
MODELS = ("m1", "m2")
ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu")
# The events fall over four days around a month's end, where days and months cut differently in each zone: at 00:00
# UTC, 18:30 UTC (+05:30) and 18:15 UTC (+05:45).
BASE = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=4)
CUTS = [
    datetime(2026, 3, day, hour, minute, tzinfo=UTC)
    for day in range(29, 32)
    for hour, minute in ((0, 0), (18, 15), (18, 30))
] + [datetime(2026, 4, 1, 0, 0, tzinfo=UTC), datetime(2026, 4, 1, 18, 15, tzinfo=UTC)]
RANGE = (datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC))
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
MEASURES = ("generations", "units", "credits", "held_generations", "held_credits")


# --- the expected figures, from the raw events --------------------------------------------------------------------


def raw_events(organization_id: int | None = None) -> list[dict[str, Any]]:
    rows = (
        UsageEvent.objects.all()
        if organization_id is None
        else UsageEvent.objects.filter(organization_id=organization_id)
    )
    return list(rows.values("organization_id", "workspace_id", "user_id", "tool", "model", "units", "credits",
                            "status", "created_at"))  # fmt: skip


def local_period_start(at: datetime, period: str, zone: ZoneInfo) -> datetime:
    """The start (UTC) of the local `period` of `zone` that holds the moment `at`."""
    if period == "15min":
        return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
    local = at.astimezone(zone)
    if period == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        day = local.date()
        if period == "week":
            day -= timedelta(days=day.weekday())
        if period == "month":
            day = day.replace(day=1)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return start.astimezone(UTC)


def expected(
    events: list[dict[str, Any]],
    *,
    start: datetime,
    end: datetime,
    group_by: tuple[str, ...] = (),
    period: str | None = None,
    tz: str = "UTC",
    **filters: list[Any] | None,
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    zone = ZoneInfo(tz)
    sums: dict[tuple[Any, ...], list[int]] = {}
    if not group_by and period is None:
        sums[(None, None, None, None, None)] = [0] * 5
    for event in events:
        if not start <= event["created_at"] < end or event["status"] == UsageStatus.RELEASED:
            continue
        if any(values is not None and event[field] not in values for field, values in _filter_fields(filters)):
            continue
        key = (
            local_period_start(event["created_at"], period, zone) if period else None,
            *(event[f"{name}_id" if name in ("workspace", "user") else name] if name in group_by else None
              for name in GROUPS),
        )  # fmt: skip
        row = sums.setdefault(key, [0] * 5)
        if event["status"] == UsageStatus.CAPTURED:
            row[0] += 1
            row[1] += event["units"]
            row[2] += event["credits"]
        else:
            row[3] += 1
            row[4] += event["credits"]
    return {key: tuple(row) for key, row in sums.items()}


def _filter_fields(filters: dict[str, Any]) -> list[tuple[str, Any]]:
    names = {"workspace_ids": "workspace_id", "user_ids": "user_id", "tools": "tool", "models": "model"}
    return [(names[name], values) for name, values in filters.items()]


def as_dict(rows) -> dict[tuple[Any, ...], tuple[int, ...]]:
    result = {}
    for row in rows:
        key = (row.period_start, row.workspace_id, row.user_id, row.tool, row.model)
        assert key not in result, f"two rows for {key}"
        result[key] = tuple(getattr(row, name) for name in MEASURES)
    return result


def read(organization, **query) -> dict[tuple[Any, ...], tuple[int, ...]]:
    start, end = query.pop("start", RANGE[0]), query.pop("end", RANGE[1])
    return as_dict(usage_totals(organization=organization, start=start, end=end, **query).rows)


def assert_live_read_exact(organization) -> None:
    """The live read equals the raw events: every bucket of every key, every grouping, local hours, days, weeks and
    months in three time zones, filters, a narrower range, and the 15-minute buckets folded in Python."""
    events = raw_events(organization.pk)
    start, end = RANGE

    def check(*, start: datetime = start, end: datetime = end, **query):
        assert read(organization, start=start, end=end, **query) == expected(events, start=start, end=end, **query)

    check(group_by=tuple(GROUPS), period="15min")  # every bucket of every key
    for size in range(len(GROUPS) + 1):
        for group_by in combinations(GROUPS, size):
            check(group_by=group_by)
    for tz in ZONES:
        for period in ("hour", "day", "week", "month"):
            check(group_by=("tool",), period=period, tz=tz)
        check(group_by=("workspace", "user"), period="day", tz=tz, workspace_ids=[101, 103], tools=["chat", "video"])
    check(group_by=("model",), user_ids=[202], models=["m2"], period="day", tz="Asia/Kathmandu")
    check(start=datetime(2026, 3, 30, 18, 15, tzinfo=UTC), end=datetime(2026, 3, 31, 18, 30, tzinfo=UTC))
    check(workspace_ids=[])  # an empty filter matches nothing: one row of zeros
    # The fold SQLite uses, from the finest rows.
    finest = usage_totals(organization=organization, start=start, end=end, group_by=GROUPS, period="15min").rows
    for tz in ZONES:
        folded = as_dict(periods_fold(finest, "day", ZoneInfo(tz)))
        assert folded == expected(events, start=start, end=end, group_by=tuple(GROUPS), period="day", tz=tz)


def rollup_table() -> dict[tuple[Any, ...], tuple[int, ...]]:
    return {
        (row["organization_id"], row["workspace_id"], row["user_id"], row["tool"], row["model"], row["bucket_start"]): (
            tuple(row[name] for name in MEASURES)
        )
        for row in UsageRollup.objects.values()
    }


def expected_table() -> dict[tuple[Any, ...], tuple[int, ...]]:
    table = {}
    for organization_id in {event["organization_id"] for event in raw_events()}:
        finest = expected(raw_events(organization_id), start=EVER[0], end=EVER[1], group_by=tuple(GROUPS),
                          period="15min")  # fmt: skip
        table |= {(organization_id, *key[1:], key[0]): sums for key, sums in finest.items()}
    return table


def bound_past_every_event(timeout: float = 60.0) -> None:
    """Wait until a run's bound is past every event's last change (see the module's docstring)."""
    newest = UsageEvent.objects.aggregate(newest=Max("changed_seq"))["newest"] or 0
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(run_statements(connection.vendor).bound)
            (bound,) = cursor.fetchone()
        if bound > newest:
            return
        assert time.monotonic() < deadline, "the roll-up's bound did not pass the events (a long transaction?)"
        time.sleep(0.05)


def rollup_caught_up():
    """A run whose watermark is past every event's last change."""
    bound_past_every_event()
    return rollup_update()


def daily_table() -> dict[tuple[Any, ...], tuple[int, ...]]:
    return {
        (row["organization_id"], row["workspace_id"], row["user_id"], row["tool"], row["model"], row["day_start"]): (
            tuple(row[name] for name in MEASURES)
        )
        for row in UsageDailyRollup.objects.values()
    }


def expected_daily_table() -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The 15-minute rows summed per local day of the zone each organization's days are recorded in, which is the
    organization's zone once a run has seen it."""
    zones = dict(UsageDailyZone.objects.values_list("organization_id", "timezone"))
    table: dict[tuple[Any, ...], list[int]] = {}
    for key, sums in rollup_table().items():
        day = local_period_start(key[-1], "day", ZoneInfo(zones[key[0]]))
        row = table.setdefault((*key[:-1], day), [0] * len(MEASURES))
        for index, value in enumerate(sums):
            row[index] += value
    return {key: tuple(row) for key, row in table.items()}


def assert_table_exact() -> None:
    rollup_caught_up()
    assert rollup_table() == expected_table()
    zones = dict(UsageDailyZone.objects.values_list("organization_id", "timezone"))
    assert zones == dict(Organization.objects.values_list("pk", "timezone"))
    assert daily_table() == expected_daily_table()


# --- writing events as the services do, fast -----------------------------------------------------------------------

_keys = iter(range(10**9))


@dataclass(frozen=True)
class Planned:
    organization: int  # index into the test's organizations
    workspace: int
    user: int
    tool: str
    model: str
    at: datetime
    units: int
    price: int
    held: bool


def insert(organization_ids: list[int], planned: list[Planned]) -> list[UsageEvent]:
    """Usage events as the metering services write them (a charge is captured, a hold is held), in one
    transaction. Their organization, workspace and member are plain ids: the table has no foreign keys."""
    return UsageEvent.objects.bulk_create(
        UsageEvent(
            organization_id=organization_ids[p.organization],
            workspace_id=p.workspace,
            user_id=p.user,
            tool=p.tool,
            model=p.model,
            units=p.units,
            credits=p.units * p.price,
            status=UsageStatus.HELD if p.held else UsageStatus.CAPTURED,
            idempotency_key=f"k{next(_keys)}",
            ledger_transaction_id=1,
            created_at=p.at,
        )
        for p in planned
    )


def settle(event_id: int, *, capture_units: int | None) -> None:
    """Capture (`capture_units` of the held ones, at the held price) or release a held event, as the services do."""
    event = UsageEvent.objects.get(pk=event_id)
    assert event.status == UsageStatus.HELD
    if capture_units is None:
        UsageEvent.objects.filter(pk=event_id).update(status=UsageStatus.RELEASED, credits=0)
    else:
        units = min(max(capture_units, 1), event.units)
        credits = event.credits // event.units * units
        UsageEvent.objects.filter(pk=event_id).update(status=UsageStatus.CAPTURED, units=units, credits=credits)


def forget_usage() -> None:
    UsageEvent.objects.all().delete()
    UsageRollup.objects.all().delete()
    UsageDailyRollup.objects.all().delete()  # the two levels go together, as only the roll-up writes them
    UsageDailyZone.objects.all().delete()
    UsageRollupState.objects.all().delete()


# --- property: the live read and the roll-up equal the raw events --------------------------------------------------

near_a_cut = st.builds(
    lambda cut, minutes, micros: cut + timedelta(minutes=minutes, microseconds=micros),
    st.sampled_from(CUTS),
    st.integers(-20, 20),
    st.sampled_from([0, 1, 59_999_999]),
)
anywhere = st.builds(
    lambda minutes, micros: BASE + timedelta(minutes=minutes, microseconds=micros),
    st.integers(0, int(SPAN.total_seconds() // 60)),
    st.integers(0, 59_999_999),
)
planned_event = st.one_of(
    st.builds(
        Planned,
        organization=st.integers(0, 1),
        workspace=st.sampled_from(WORKSPACES),
        user=st.sampled_from(USERS),
        tool=st.sampled_from(TOOLS),
        model=st.sampled_from(MODELS),
        at=st.one_of(near_a_cut, anywhere),
        units=st.integers(1, 5),
        price=st.integers(0, 7),
        held=st.booleans(),
    ),
    # One busy key in two buckets: new events land where earlier ones are being captured or released.
    st.builds(
        Planned,
        organization=st.just(0),
        workspace=st.just(WORKSPACES[0]),
        user=st.just(USERS[0]),
        tool=st.just("video"),
        model=st.just(MODELS[0]),
        at=st.sampled_from([CUTS[4] - timedelta(seconds=1), CUTS[4], CUTS[4] + timedelta(minutes=14)]),
        units=st.integers(1, 5),
        price=st.integers(1, 7),
        held=st.booleans(),
    ),
)
# Settle the n-th event still held: capture some of its units (a late capture, for fewer credits; None: release it,
# as a release or the expiry sweeper does).
settlement = st.tuples(st.integers(0, 50), st.one_of(st.none(), st.integers(1, 5)))
# A round: holds settled, new events committed, then (or not) a roll-up run.
round_of_usage = st.tuples(st.lists(settlement, max_size=4), st.lists(planned_event, max_size=12), st.booleans())

HOT = Planned(0, WORKSPACES[0], USERS[0], "video", MODELS[0], CUTS[4], 3, 5, held=True)


def test_the_live_read_and_the_rollup_equal_the_raw_events():
    organizations = [
        make_organization(name="Kolkata", timezone="Asia/Kolkata"),
        make_organization(name="Kathmandu", timezone="Asia/Kathmandu"),
    ]
    organization_ids = [organization.pk for organization in organizations]

    @hypothesis_settings(
        max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(rounds=st.lists(round_of_usage, min_size=1, max_size=5))
    # A bucket rolled up, then in one run both changed (its hold captured) and given a new event.
    @example(rounds=[([], [HOT], True), ([(0, 1)], [replace(HOT, held=False, units=1)], True)])
    def scenario(rounds):
        forget_usage()
        for settlements, planned, run in rounds:
            held = list(UsageEvent.objects.filter(status=UsageStatus.HELD).order_by("pk").values_list("pk", flat=True))
            for n, units in settlements:
                if held:
                    settle(held.pop(n % len(held)), capture_units=units)
            insert(organization_ids, planned)
            if run:
                rollup_update()
                for organization in organizations:
                    assert_live_read_exact(organization)
        for organization in organizations:
            assert_live_read_exact(organization)
        assert_table_exact()

    scenario()


# --- runs, reruns, rebuilds ------------------------------------------------------------------------------------------


def some_usage(organization_ids: list[int]) -> list[UsageEvent]:
    planned = [
        Planned(n % len(organization_ids), WORKSPACES[n % 3], USERS[n % 2], TOOLS[n % 3], MODELS[n % 2],
                BASE + timedelta(minutes=37 * n), 1 + n % 4, 3, held=n % 5 == 0)
        for n in range(60)
    ]  # fmt: skip
    return insert(organization_ids, planned)


def test_the_live_read_is_exact_before_any_rollup_and_after_a_late_capture():
    metered = make_metered_workspace(credits=10_000)
    image = Price.objects.filter(tool="image").first()
    video = Price.objects.filter(tool="video").first()
    usage_charge(workspace=metered.workspace, user=metered.member, price=image, units=2, idempotency_key="c1")
    hold = usage_hold_place(
        workspace=metered.workspace, user=metered.member, price=video, units=4, ttl=timedelta(minutes=10),
        idempotency_key="h1",
    ).event  # fmt: skip
    now = datetime.now(UTC)
    window = {"start": now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1),
              "end": now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)}  # fmt: skip

    def exact():
        events = raw_events(metered.organization.pk)
        got = read(metered.organization, group_by=("tool",), **window)
        assert got == expected(events, group_by=("tool",), **window)
        return got

    assert rollup_state().ran_at is None
    before = exact()  # no roll-up yet: everything from the raw events
    assert before[(None, None, None, "video", None)] == (0, 0, 0, 1, 4 * video.credits_per_unit)

    rollup_caught_up()
    assert UsageRollup.objects.filter(organization=metered.organization).count() == 2
    usage_hold_capture(event=hold, workspace=metered.workspace, units=1)  # captured late, for less
    after = exact()  # the roll-up still holds the hold: its bucket comes from the raw events
    assert after[(None, None, None, "video", None)] == (1, 1, video.credits_per_unit, 0, 0)
    assert UsageRollup.objects.get(organization=metered.organization, tool="video").held_generations == 1

    rollup_update()
    assert exact() == after
    assert_table_exact()


def test_a_second_run_changes_nothing():
    organizations = [make_organization(), make_organization()]
    events = some_usage([organization.pk for organization in organizations])
    rollup_caught_up()
    settle(next(e.pk for e in events if e.status == UsageStatus.HELD), capture_units=2)
    bound_past_every_event()
    first = rollup_update()
    assert first.recomputed == 1
    before = list(UsageRollup.objects.order_by("pk").values())
    second = rollup_update()
    assert (second.recomputed, second.added) == (0, 0)
    assert list(UsageRollup.objects.order_by("pk").values()) == before
    assert_table_exact()


def test_rebuilding_one_organization_or_all_gives_what_the_runs_gave():
    organizations = [make_organization(), make_organization()]
    events = some_usage([organization.pk for organization in organizations])
    held = [event.pk for event in events if event.status == UsageStatus.HELD]
    rollup_caught_up()
    settle(held[0], capture_units=1)
    settle(held[1], capture_units=None)
    rollup_caught_up()
    incremental = rollup_table()
    assert incremental == expected_table()

    out = io.StringIO()
    call_command("usage_rollup", "--rebuild", "--org", organizations[0].slug, stdout=out)
    assert f"organization {organizations[0].slug}" in out.getvalue()
    assert rollup_table() == incremental
    call_command("usage_rollup", "--rebuild", stdout=io.StringIO())
    assert rollup_table() == incremental

    # A rebuild also repairs what the runs do not follow: an event moved to another bucket.
    moved = UsageEvent.objects.filter(organization=organizations[1], status=UsageStatus.CAPTURED).first()
    UsageEvent.objects.filter(pk=moved.pk).update(created_at=moved.created_at + timedelta(hours=5))
    rollup_rebuild(organization=organizations[1])
    assert_table_exact()


def test_the_command_runs_once_and_refuses_org_without_rebuild():
    some_usage([make_organization().pk])
    out = io.StringIO()
    call_command("usage_rollup", stdout=out)
    assert "Usage roll-up up to date" in out.getvalue()
    with pytest.raises(CommandError, match="--org goes with --rebuild"):
        call_command("usage_rollup", "--org", "x")
    with pytest.raises(CommandError, match="No organization"):
        call_command("usage_rollup", "--rebuild", "--org", "no-such-org")


def test_a_run_killed_midway_leaves_nothing_and_the_next_run_does_its_work(monkeypatch):
    organization = make_organization()
    events = some_usage([organization.pk])
    rollup_caught_up()
    settle(next(e.pk for e in events if e.status == UsageStatus.HELD), capture_units=3)
    some_usage([organization.pk])
    bound_past_every_event()  # so that the run has work to do
    state_before, table_before = rollup_state(), rollup_table()

    daily_before = daily_table()
    assert daily_before  # the first run cut days
    daily = daily_statements(connection.vendor)
    # The run's last write: the days (PostgreSQL), or the 15-minute upsert (SQLite, no daily level).
    last = daily.days_prune if daily is not None else run_statements(connection.vendor).added_upsert
    original = run_module._execute

    def dies_after_the_last_write(sql, params=None):
        result = original(sql, params)
        if sql == last:
            raise SystemExit("worker killed")  # what a SIGKILL leaves: a transaction that never commits
        return result

    monkeypatch.setattr(run_module, "_execute", dies_after_the_last_write)
    with pytest.raises(SystemExit):
        rollup_update()
    assert rollup_state() == state_before
    assert rollup_table() == table_before
    assert daily_table() == daily_before
    monkeypatch.undo()
    assert_table_exact()


def test_the_task_runs_the_rollup_and_beat_runs_it_every_30_seconds():
    some_usage([make_organization().pk])
    bound_past_every_event()
    result = rollup_update_run.delay().get()
    assert result["ran"] is True
    assert result["added"] > 0
    entry = settings.CELERY_BEAT_SCHEDULE["usage-rollup"]
    assert entry["task"] == "usage.tasks.rollup_update_run"
    assert entry["schedule"] <= 30


def test_only_one_run_at_a_time():
    some_usage([make_organization().pk])
    holding, done = threading.Event(), threading.Event()

    def holder(start):
        start()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [run_module._LOCK_SPACE])
            holding.set()
            assert done.wait(20)

    def runner(start):
        start()
        assert holding.wait(20)
        try:
            return rollup_update()
        finally:
            done.set()

    _, skipped = run_together([holder, runner])
    assert skipped.ran is False
    assert UsageRollup.objects.count() == 0
    assert rollup_update().ran is True


# --- concurrency: events committed while a run is open, and out of order ------------------------------------------


def test_events_committed_while_a_run_is_open_are_counted_exactly_once(monkeypatch):
    """A run takes its bound; then, while its transaction is open, another connection inserts events (one of them in a
    bucket the run is recomputing) and captures a hold the roll-up holds, and commits. The run sees those rows but
    must leave them to the next run: counted once."""
    organization = make_organization()
    ids = [organization.pk]
    at = BASE + timedelta(hours=2)
    early = insert(ids, [Planned(0, 101, 201, "video", "m1", at, 3, 5, held=True),
                         Planned(0, 102, 202, "image", "m2", at, 2, 5, held=True),
                         Planned(0, 101, 201, "chat", "m1", at, 1, 5, held=False)])  # fmt: skip
    rollup_caught_up()
    settle(early[0].pk, capture_units=2)  # changed since: the run will recompute its bucket
    bound_past_every_event()

    statements = run_statements(connection.vendor)
    original = run_module._execute
    bound_taken, committed = threading.Event(), threading.Event()

    def pausing(sql, params=None):
        if sql == statements.changed_create and not bound_taken.is_set():
            bound_taken.set()
            assert committed.wait(20)
        return original(sql, params)

    monkeypatch.setattr(run_module, "_execute", pausing)

    def roller(start):
        start()
        return rollup_update()

    def writer(start):
        start()
        assert bound_taken.wait(20)
        with transaction.atomic():
            insert(ids, [Planned(0, 101, 201, "video", "m1", at + timedelta(minutes=1), 4, 5, held=False),
                         Planned(0, 103, 201, "music", "m1", at + timedelta(days=1), 1, 9, held=False)])  # fmt: skip
            settle(early[1].pk, capture_units=1)
        committed.set()

    run, _ = run_together([roller, writer])
    monkeypatch.undo()
    assert run.ran
    assert run.recomputed == 1
    assert_live_read_exact(organization)
    assert_table_exact()
    video = UsageRollup.objects.get(organization=organization, tool="video")
    assert (video.generations, video.units, video.credits) == (2, 2 + 4, 10 + 20)


def test_a_transaction_that_commits_after_a_run_with_a_lower_number_is_counted_once():
    """A transaction inserts an event and stays open; a later one inserts and commits; a run goes by; then the first
    commits. A watermark of "the highest number seen" would skip the first event for ever."""
    organization = make_organization()
    ids = [organization.pk]
    inserted, ran, committed = threading.Event(), threading.Event(), threading.Event()

    def late(start):
        start()
        with transaction.atomic():
            insert(ids, [Planned(0, 101, 201, "chat", "m1", BASE, 1, 7, held=False)])
            inserted.set()
            assert ran.wait(20)
        committed.set()

    def early(start):
        start()
        assert inserted.wait(20)
        insert(ids, [Planned(0, 102, 202, "image", "m2", BASE, 2, 3, held=False)])  # committed, numbered higher
        run = rollup_update()
        assert_live_read_exact(organization)  # the committed event, not the uncommitted one
        ran.set()
        assert committed.wait(20)
        return run

    _, first = run_together([late, early])
    late_event = UsageEvent.objects.get(tool="chat")
    assert first.watermark <= late_event.created_seq  # the run's bound stayed below the open transaction
    assert_live_read_exact(organization)
    assert_table_exact()
    assert UsageRollup.objects.filter(organization=organization).count() == 2


# --- the change tracking and the SQL ----------------------------------------------------------------------------------


def test_every_update_numbers_the_event_with_the_updating_transaction():
    (event,) = insert([make_organization().pk], [Planned(0, 101, 201, "video", "m1", BASE, 2, 3, held=True)])
    event.refresh_from_db()
    assert event.created_seq == event.changed_seq > 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            (updating,) = cursor.fetchone()
        event.status = UsageStatus.CAPTURED
        event.created_seq = 1  # an ORM save() writes every field back; the database keeps its own numbers
        event.changed_seq = 1
        event.save()
    changed = UsageEvent.objects.get(pk=event.pk)
    assert changed.created_seq == UsageEvent.objects.get(pk=event.pk).created_seq > 1  # kept, not what was written
    assert changed.changed_seq == updating > changed.created_seq


# The usage event columns the roll-up does not read, and why. A new column fails here until it is added to what the
# roll-up sums (usage.rollup.sql) or to this list.
NOT_ROLLED_UP = {
    "id",
    "idempotency_key",  # identifies a request, not usage
    "ledger_transaction_id",  # the ledger's side of the same charge
    "hold_id",  # the hold's state is the event's status
    "history_draft",  # content, not usage
    "settled_at",  # usage counts when the generation was made (created_at)
}


def test_the_rollup_knows_every_column_of_the_usage_events():
    read_columns = {UsageEvent._meta.get_field(name).column for name in EVENT_FIELDS_READ}
    every_column = {field.column for field in UsageEvent._meta.concrete_fields}
    assert read_columns | NOT_ROLLED_UP == every_column, sorted(every_column - read_columns - NOT_ROLLED_UP)
    assert not read_columns & NOT_ROLLED_UP


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_every_insert_into_the_rollup_writes_each_of_its_columns(vendor):
    statements = run_statements(vendor)
    columns = {field.column for field in UsageRollup._meta.concrete_fields} - {"id"}
    inserts = [statements.changed_insert, statements.added_upsert, statements.scope_insert]
    for sql in inserts:
        head = sql.split(f"INSERT INTO {ROLLUP} (", 1)[1].split(")", 1)[0]
        named = [name.strip() for name in head.split(",")]
        assert sorted(named) == sorted(columns)
        assert len(named) == len(set(named))


def test_reads_are_on_15_minute_boundaries():
    organization = make_organization()
    with pytest.raises(ValueError, match="15-minute boundary"):
        usage_totals(organization=organization, start=BASE + timedelta(minutes=5), end=BASE + timedelta(hours=1))
    with pytest.raises(ValueError, match="aware"):
        usage_totals(organization=organization, start=BASE.replace(tzinfo=None), end=BASE + timedelta(hours=1))
    with pytest.raises(ValueError, match="cannot group"):
        usage_totals(organization=organization, start=BASE, end=BASE, group_by=("colour",))
