"""Usage events partitioned by month (`usage/0007`, `usage.partitions`) on real PostgreSQL: the table is partitioned
with its indexes, constraints and trigger; rows land in their month; the DEFAULT partition takes the rest and the
daily task moves it out; the task is idempotent and creates ahead; retention drops only old months nothing needs.

The metering paths (fast and general) and the roll-up run their own tests against this partitioned table
(tests/usage/test_fastpath.py, test_api.py, test_services.py, test_rollups.py).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.factories import UserFactory, make_organization
from tests.usage.test_rollups import rollup_caught_up
from usage.models import Statement, UsageEvent, UsageRollupState, UsageStatus
from usage.partitions import (
    DEFAULT,
    PARENT,
    month_start,
    months_add,
    partition_name,
    partitions_ensure,
    partitions_list,
    partitions_retention_apply,
)
from usage.rollup import rollup_rebuild, usage_totals
from usage.tasks import partitions_maintain_run


def at(year: int, month: int, day: int = 1, *rest: int) -> datetime:
    return datetime(year, month, day, *rest, tzinfo=UTC)


def event(when: datetime, *, held: bool = False, organization_id: int = 1, workspace_id: int = 1, user_id: int = 1):
    return UsageEvent.objects.create(
        organization_id=organization_id,
        workspace_id=workspace_id,
        user_id=user_id,
        tool="chat",
        model="m",
        units=1,
        credits=7,
        status=UsageStatus.HELD if held else UsageStatus.CAPTURED,
        idempotency_key=f"k-{when.isoformat()}",
        ledger_transaction_id=1,
        created_at=when,
    )


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {PARENT} WHERE id = %s", [event_id])  # noqa: S608
        return cursor.fetchone()[0]


def scalar(sql: str, params: list[object] | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def names() -> set[str]:
    return {partition.name for partition in partitions_list()}


@pytest.mark.django_db
def test_the_table_is_partitioned_by_month_and_keeps_its_indexes_constraints_and_trigger():
    assert connection.vendor == "postgresql"
    assert scalar("SELECT pg_get_partkeydef(%s::regclass)", [PARENT]) == "RANGE (created_at)"
    assert scalar("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = %s::regclass", [PARENT]) == "r"
    # Unique constraints of a partitioned table include the partition key; ids come from the one identity sequence.
    primary = scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [PARENT]
    )
    assert primary == "PRIMARY KEY (id, created_at)"
    assert scalar("SELECT pg_get_serial_sequence(%s, 'id')", [PARENT]) == f"public.{PARENT}_id_seq"
    default_bound = scalar("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", [DEFAULT])
    assert default_bound == "DEFAULT"
    assert scalar("SELECT COUNT(*) FROM pg_inherits WHERE inhparent = %s::regclass", [PARENT]) == len(names()) + 1
    assert len(names()) >= 1 + settings.USAGE_PARTITIONS_AHEAD_MONTHS  # this month and the ones ahead

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [PARENT])
        indexes = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'", [PARENT])
        checks = {row[0] for row in cursor.fetchall()}
        # The changed_seq trigger of usage/0005 is on the parent and cloned onto every partition.
        cursor.execute(
            "SELECT COUNT(*) FROM pg_trigger t JOIN pg_inherits i ON i.inhrelid = t.tgrelid "
            "WHERE i.inhparent = %s::regclass AND t.tgname = 'usage_event_changed_seq'",
            [PARENT],
        )
        (cloned,) = cursor.fetchone()
    assert {index.name for index in UsageEvent._meta.indexes} <= indexes
    assert {constraint.name for constraint in UsageEvent._meta.constraints} <= checks
    assert scalar("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [PARENT]) == 1
    assert cloned == len(names()) + 1


@pytest.mark.django_db
def test_inserts_land_in_their_month_and_far_ones_in_default_until_the_task_gives_them_a_partition():
    created = partitions_ensure(at=at(2025, 1, 10), ahead=2)
    assert created == [partition_name(at(2025, month)) for month in (1, 2, 3)]
    last_microsecond = event(at(2025, 1, 31, 23, 59, 59, 999_999))
    first_instant = event(at(2025, 2, 1))
    middle = event(at(2025, 3, 15, 12))
    far_past = event(at(1990, 6, 1), held=False)
    far_future = event(at(2199, 12, 31, 23))
    assert partition_of(last_microsecond.pk) == f"{PARENT}_p2025_01"
    assert partition_of(first_instant.pk) == f"{PARENT}_p2025_02"
    assert partition_of(middle.pk) == f"{PARENT}_p2025_03"
    assert partition_of(far_past.pk) == partition_of(far_future.pk) == DEFAULT
    before = list(UsageEvent.objects.order_by("pk").values())

    assert partitions_ensure(at=at(2025, 1, 10), ahead=2) == [f"{PARENT}_p1990_06", f"{PARENT}_p2199_12"]
    assert partition_of(far_past.pk) == f"{PARENT}_p1990_06"
    assert partition_of(far_future.pk) == f"{PARENT}_p2199_12"
    assert scalar(f"SELECT COUNT(*) FROM {DEFAULT}") == 0  # noqa: S608
    assert list(UsageEvent.objects.order_by("pk").values()) == before  # moved as they were, seq columns included
    assert partitions_ensure(at=at(2025, 1, 10), ahead=2) == []  # idempotent

    # The ORM keeps working on moved rows (an UPDATE finds them by id, the trigger runs on the new partition).
    UsageEvent.objects.filter(pk=far_past.pk).update(credits=8)
    assert UsageEvent.objects.get(pk=far_past.pk).credits == 8


@pytest.mark.django_db
def test_the_task_creates_months_ahead_once():
    start = at(2031, 11, 20)
    created = partitions_ensure(at=start, ahead=3)
    assert created == [partition_name(months_add(at(2031, 11), offset)) for offset in range(4)]
    assert partitions_ensure(at=start, ahead=3) == []
    partition = next(p for p in partitions_list() if p.name == f"{PARENT}_p2032_02")
    assert (partition.start, partition.end) == (at(2032, 2), at(2032, 3))
    bound = scalar("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", [partition.name])
    assert bound == "FOR VALUES FROM ('2032-02-01 00:00:00+00') TO ('2032-03-01 00:00:00+00')"


@pytest.mark.django_db
def test_a_held_event_in_default_waits_until_it_is_settled():
    held = event(at(1991, 1, 5), held=True)
    assert partitions_ensure(at=at(2025, 1, 10), ahead=0) == [partition_name(at(2025, 1))]
    assert partition_of(held.pk) == DEFAULT
    UsageEvent.objects.filter(pk=held.pk).update(status=UsageStatus.CAPTURED)
    assert partitions_ensure(at=at(2025, 1, 10), ahead=0) == [f"{PARENT}_p1991_01"]
    assert partition_of(held.pk) == f"{PARENT}_p1991_01"


@pytest.mark.django_db
def test_the_beat_task_and_the_command():
    assert settings.CELERY_BEAT_SCHEDULE["usage-partitions"]["task"] == "usage.tasks.partitions_maintain_run"
    result = partitions_maintain_run()
    assert result == {"created": [], "dropped": [], "kept": {}}  # this month and the ones ahead exist already
    out = io.StringIO()
    call_command("usage_partitions", stdout=out)
    text = out.getvalue()
    assert "Created: none." in text
    assert "Retention: off" in text
    assert f"{partition_name(month_start(datetime.now(UTC)))}:" in text


def _statement(organization, workspace, month: date) -> None:
    Statement.objects.create(
        organization=organization,
        workspace=workspace,
        sequence=Statement.objects.filter(organization=organization).count() + 1,
        number=f"{organization.slug}-{month:%Y-%m}",
        period_start=month,
        starts_at=at(month.year, month.month),
        ends_at=months_add(at(month.year, month.month), 1),
        timezone=organization.timezone,
        organization_name=organization.name,
        workspace_name=workspace.name,
        credit_mode=organization.credit_mode,
        generations=1,
        credits=7,
    )


@pytest.mark.django_db(transaction=True)
def test_retention_drops_only_old_months_that_nothing_needs_and_the_rollup_keeps_their_totals():
    owner = UserFactory()
    organization = make_organization(owner=owner, timezone="UTC")
    workspace = organization.workspaces.get(is_primary=True)
    ids = {"organization_id": organization.pk, "workspace_id": workspace.pk, "user_id": owner.pk}
    partitions_ensure(at=at(2024, 1, 1), ahead=4)
    event(at(2024, 1, 10), **ids)  # closed statement: dropped
    event(at(2024, 2, 10), **ids)  # no statement for the month: kept
    event(at(2024, 3, 10), held=True, **ids)  # still held: kept
    event(at(2024, 4, 10), **ids)  # closed statement: dropped
    event(at(2024, 5, 10), **ids)  # within retention
    for month in (1, 3, 4, 5):
        _statement(organization, workspace, date(2024, month, 1))
    today = at(2024, 7, 15)
    partitions_ensure(at=today, ahead=0)
    months = {f"{PARENT}_p2024_0{month}" for month in range(1, 6)}
    assert months <= names()

    off = partitions_retention_apply(at=today, months=None)
    assert off.cutoff is None
    assert not off.dropped

    not_rolled_up = partitions_retention_apply(at=today, months=2)
    assert not not_rolled_up.dropped
    assert "not taken in" in not_rolled_up.kept[f"{PARENT}_p2024_01"]

    rollup_caught_up()
    january = usage_totals(organization=organization, start=at(2024, 1), end=at(2024, 2)).rows[0].credits
    assert january == 7
    applied = partitions_retention_apply(at=today, months=2)
    assert applied.cutoff == at(2024, 5)
    assert {f"{PARENT}_p2024_01", f"{PARENT}_p2024_04"} <= set(applied.dropped)
    assert "no closed statement" in applied.kept[f"{PARENT}_p2024_02"]
    assert "still held" in applied.kept[f"{PARENT}_p2024_03"]
    assert f"{PARENT}_p2024_05" in names()  # within retention
    assert not {f"{PARENT}_p2024_01", f"{PARENT}_p2024_04"} & names()
    assert UsageEvent.objects.filter(organization=organization).count() == 3
    assert UsageRollupState.objects.get().events_from == at(2024, 5)

    # The roll-up is the record of the dropped months: the live read still shows them, and a rebuild keeps them.
    def credits(start: datetime, end: datetime) -> int:
        return usage_totals(organization=organization, start=start, end=end).rows[0].credits

    assert credits(at(2024, 1), at(2024, 2)) == 7
    assert credits(at(2024, 1), at(2024, 7)) == 7 * 4  # January, February, April, May (March is held)
    rollup_rebuild()
    assert credits(at(2024, 1), at(2024, 7)) == 7 * 4

    forced = partitions_retention_apply(at=today, months=2, force=True)
    assert {f"{PARENT}_p2024_02", f"{PARENT}_p2024_03"} <= set(forced.dropped)
    assert not forced.kept
    assert UsageEvent.objects.filter(organization=organization).count() == 1
