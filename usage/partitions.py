"""The monthly partitions of the usage events (PostgreSQL): created ahead, and old ones dropped by retention.

`usage_usageevent` is partitioned by range on `created_at`, one partition per UTC month named
`usage_usageevent_pYYYY_MM`, plus a DEFAULT partition that takes any row no month partition covers, so an insert
never fails (migration `usage/0007`). A daily beat task (`usage.tasks.partitions_maintain_run`) and
`manage.py usage_partitions` call `partitions_maintain`:

1. `partitions_ensure`: this month and the next `USAGE_PARTITIONS_AHEAD_MONTHS` (3) exist; any month found in the
   DEFAULT partition (an event far in the past or future) gets its partition and its rows are moved there, so the
   DEFAULT partition stays empty. A month whose rows in DEFAULT include a held event waits (its capture may be
   running); the next run moves it. Each partition is created as a plain table and then attached
   (`ATTACH PARTITION` locks the parent only in SHARE UPDATE EXCLUSIVE mode, so charges keep going).
2. `partitions_retention_apply`: with `USAGE_RETENTION_MONTHS` set (None: keep forever), every month partition that
   ended before the first day of the month that many months before this one is dropped whole — unless it is still
   needed: an event in it is still held or not rolled up yet (the roll-up then keeps its totals for good), or a
   captured event in it belongs to a month of a workspace (of a live organization) with no closed statement. Such a
   partition is kept and reported until that changes; `force=True` drops it anyway. The dropped range is recorded in
   `UsageRollupState.events_from`, so a roll-up rebuild never erases the totals of months whose events are gone.

Everything runs with a short lock timeout: a run that would wait for a busy table fails and the next one retries.
SQLite (the demo) has a plain table: nothing to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.timezone import now

from orgs.models import Organization
from usage.models import Statement, UsageEvent, UsageRollupState, UsageStatus
from usage.rollup.sql import column, literal

logger = logging.getLogger(__name__)

PARENT = UsageEvent._meta.db_table
DEFAULT = f"{PARENT}_default"
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})_(\d{{2}})$")
LOCK_TIMEOUT = "5s"


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the UTC month holding `moment`."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def months_add(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month:%Y_%m}"


@dataclass(frozen=True)
class EventPartition:
    name: str
    start: datetime  # first instant of the UTC month
    end: datetime  # first instant of the next one


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime | None  # month partitions ending at or before it are due (None: retention is off)
    dropped: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # due but still needed: name -> why


@dataclass(frozen=True)
class PartitionsMaintained:
    created: list[str]
    retention: RetentionResult


def partitioned() -> bool:
    return connection.vendor == "postgresql"


def _rows(sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def _execute(sql: str, params: Sequence[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


def partitions_list() -> list[EventPartition]:
    """The month partitions of the usage events, oldest first (the DEFAULT partition is not listed)."""
    if not partitioned():
        return []
    names = _rows(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [PARENT],
    )
    found = []
    for (name,) in names:
        match = _NAME.match(str(name))
        if match:
            start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
            found.append(EventPartition(str(name), start, months_add(start, 1)))
    return sorted(found, key=lambda partition: partition.start)


def _lock_timeout() -> None:
    _execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def _partition_create(month: datetime, *, move_from_default: bool) -> None:
    """Create the month's partition as a plain table, move its rows out of DEFAULT if asked, then attach it."""
    name, end = partition_name(month), months_add(month, 1)
    created_at = column(UsageEvent, "created_at")
    _execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)")
    if move_from_default:
        _execute(
            f"""
            WITH moved AS (
                DELETE FROM {DEFAULT} WHERE {created_at} >= %s AND {created_at} < %s RETURNING *
            )
            INSERT INTO {name} SELECT * FROM moved
            """,  # noqa: S608 (names are the code's)
            [month, end],
        )
    _execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [month, end])


def partitions_ensure(*, at: datetime | None = None, ahead: int | None = None) -> list[str]:
    """Create this month's partition and the next `ahead` months' (default `USAGE_PARTITIONS_AHEAD_MONTHS`), and
    give every month found in the DEFAULT partition its own (moving its rows). Idempotent. Returns the names
    created."""
    if not partitioned():
        return []
    ahead = settings.USAGE_PARTITIONS_AHEAD_MONTHS if ahead is None else ahead
    current = month_start(at or now())
    created_at, status = column(UsageEvent, "created_at"), column(UsageEvent, "status")
    created = []
    with transaction.atomic():
        _lock_timeout()
        existing = {partition.start for partition in partitions_list()}
        wanted = {months_add(current, offset) for offset in range(ahead + 1)}
        in_default: dict[datetime, bool] = {}
        if any(wanted - existing) or _rows(f"SELECT 1 FROM {DEFAULT} LIMIT 1"):  # noqa: S608
            # ATTACH checks DEFAULT holds no row of the new range: lock it now, so that nothing lands there
            # between the move and the attach (and no held event in it is being captured meanwhile).
            _execute(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE")
            for month, held in _rows(
                f"""
                SELECT date_trunc('month', {created_at}, 'UTC'), bool_or({status} = {literal(UsageStatus.HELD)})
                FROM {DEFAULT} GROUP BY 1
                """  # noqa: S608
            ):
                assert isinstance(month, datetime)  # noqa: S101 (a timestamptz)
                in_default[month.astimezone(UTC)] = bool(held)
        for month in sorted((wanted | set(in_default)) - existing):
            if in_default.get(month):
                logger.info("Month %s has held events in the default partition; moving them next run", month)
                continue
            _partition_create(month, move_from_default=month in in_default)
            created.append(partition_name(month))
    return created


def _still_needed(partition: EventPartition, watermark: int) -> str | None:
    """Why the partition's events are still needed (None: they are not)."""
    e = {name: column(UsageEvent, name) for name in ("status", "changed_seq", "workspace", "created_at")}
    e["organization"] = column(UsageEvent, "organization")
    held, unrolled = _rows(
        f"""
        SELECT EXISTS (SELECT 1 FROM {partition.name} WHERE {e["status"]} = {literal(UsageStatus.HELD)}),
               EXISTS (SELECT 1 FROM {partition.name} WHERE {e["changed_seq"]} >= %s)
        """,  # noqa: S608
        [watermark],
    )[0]
    if held:
        return "a generation in it is still held"
    if unrolled:
        return "the roll-up has not taken in all of its events yet"
    org, statement = Organization._meta.db_table, Statement._meta.db_table
    o_zone, o_deleted = column(Organization, "timezone"), column(Organization, "deleted_at")
    s_workspace, s_period = column(Statement, "workspace"), column(Statement, "period_start")
    (open_months,) = _rows(
        f"""
        WITH months AS (
            SELECT DISTINCT e.{e["workspace"]} AS workspace_id,
                date_trunc('month', e.{e["created_at"]} AT TIME ZONE o.{o_zone})::date AS period_start
            FROM {partition.name} e
            JOIN {org} o ON o.id = e.{e["organization"]} AND o.{o_deleted} IS NULL
            WHERE e.{e["status"]} = {literal(UsageStatus.CAPTURED)}
        )
        SELECT COUNT(*) FROM months m
        WHERE NOT EXISTS (SELECT 1 FROM {statement} s
                          WHERE s.{s_workspace} = m.workspace_id AND s.{s_period} = m.period_start)
        """  # noqa: S608
    )[0]
    if open_months:
        return f"{open_months} workspace month(s) with usage in it have no closed statement"
    return None


def partitions_retention_apply(
    *, at: datetime | None = None, months: int | None = None, force: bool = False
) -> RetentionResult:
    """Drop the month partitions older than `months` full months before this one (default
    `USAGE_RETENTION_MONTHS`; None: keep everything), except those still needed (see the module), unless `force`."""
    months = settings.USAGE_RETENTION_MONTHS if months is None else months
    if months is None or not partitioned():
        return RetentionResult(cutoff=None)
    if months < 1:
        raise ValueError("USAGE_RETENTION_MONTHS must be at least 1 (this month and the one before are kept).")
    cutoff = months_add(month_start(at or now()), -months)
    result = RetentionResult(cutoff=cutoff)
    with transaction.atomic():
        _lock_timeout()
        state, _ = UsageRollupState.objects.select_for_update().get_or_create(pk=1)
        for partition in partitions_list():
            if partition.end > cutoff:
                break
            reason = None if force else _still_needed(partition, state.watermark)
            if reason is not None:
                result.kept[partition.name] = reason
                continue
            _execute(f"DROP TABLE {partition.name}")
            result.dropped.append(partition.name)
            if state.events_from is None or state.events_from < partition.end:
                state.events_from = partition.end
        if result.dropped:
            state.save(update_fields=["events_from"])
            logger.warning("Usage retention dropped %s (events before %s)", result.dropped, state.events_from)
    return result


def partitions_maintain(*, at: datetime | None = None, force: bool = False) -> PartitionsMaintained:
    """Create the partitions ahead (and empty the DEFAULT partition), then apply retention: the daily task."""
    created = partitions_ensure(at=at)
    return PartitionsMaintained(created=created, retention=partitions_retention_apply(at=at, force=force))
