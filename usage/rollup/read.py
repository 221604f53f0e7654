"""The live read of usage: totals exact to the last committed charge, from the roll-up plus the few newer events.

`usage_totals` is what the dashboards, columns, statements and the usage API read. In one query it takes the
roll-up rows of every (key, bucket) in which no event changed since the watermark, and computes from the raw events
every (key, bucket) in which one did (`changed_seq >= watermark`: new, captured, released or expired since the last
run) — the whole bucket from the raw events, so nothing is counted twice. The watermark is read first, in its own
query: a run that commits in between only makes it older than the roll-up, which sends a few more buckets to the
raw events and stays exact.

Times: `[start, end)` in UTC, on 15-minute boundaries. Grouped by any of workspace, user (member), tool and model
and, with `period`, by the 15-minute bucket or by the hour, day, ISO week (Monday) or month in a time zone (the
organization's unless `tz` says otherwise): 15-minute buckets fall entirely inside one local hour, day or month in
every zone in use, so those totals are exact. PostgreSQL folds buckets into periods in SQL
(`date_trunc(unit, bucket, zone)`); SQLite (the demo) gets 15-minute buckets and `periods_fold` folds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from django.db import connections, router

from orgs.models import Organization
from usage.models import UsageRollup, UsageRollupState
from usage.rollup.sql import (
    DAILY,
    EVENTS,
    KEY,
    MEASURES,
    ROLLUP,
    ZONE,
    Dialect,
    counted,
    daily_column,
    event_column,
    measures,
    rollup_column,
    zone_column,
)

Group = Literal["workspace", "user", "tool", "model"]
Period = Literal["15min", "hour", "day", "week", "month"]
GROUPS: tuple[Group, ...] = get_args(Group)
PERIODS: tuple[Period, ...] = get_args(Period)
BUCKET = timedelta(minutes=15)
_DIMENSIONS = KEY[1:]  # the key less the organization, which a read is always about


@dataclass(frozen=True)
class UsageTotal:
    """One row of totals. A dimension not grouped on is None, and so is period_start without a period."""

    period_start: datetime | None
    workspace_id: int | None
    user_id: int | None
    tool: str | None
    model: str | None
    generations: int  # captured generations
    units: int  # their units
    credits: int  # their credits
    held_generations: int  # generations still held
    held_credits: int  # credits still held


@dataclass(frozen=True)
class UsageTotals:
    rows: list[UsageTotal]
    watermark: int
    rolled_up_at: datetime | None  # wall-clock time of the last roll-up run; the totals are exact regardless


@dataclass(frozen=True)
class RollupState:
    watermark: int
    ran_at: datetime | None


def rollup_state(*, using: str | None = None) -> RollupState:
    """How far the roll-up is: its watermark and the wall-clock time of its last run (None: never ran), as the
    database `using` sees it (default: where the router sends reads)."""
    alias = using or router.db_for_read(UsageRollupState)
    row = UsageRollupState.objects.using(alias).filter(pk=1).values_list("watermark", "ran_at").first()
    return RollupState(*row) if row is not None else RollupState(0, None)


def _check_bound(name: str, value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    utc = value.astimezone(UTC)
    if utc.second or utc.microsecond or utc.minute % 15:
        raise ValueError(f"{name} must fall on a 15-minute boundary (UTC): {value.isoformat()}")


def period_start(bucket: datetime, period: Period, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the local period of `tz` that holds the 15-minute bucket starting at `bucket`."""
    if period == "15min":
        return bucket.astimezone(UTC)
    local = bucket.astimezone(tz)
    if period == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if period == "week":
        day -= timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _total(period: datetime | None, dimensions: dict[str, Any], sums: Sequence[Any]) -> UsageTotal:
    return UsageTotal(
        period,
        dimensions.get("workspace"),
        dimensions.get("user"),
        dimensions.get("tool"),
        dimensions.get("model"),
        *(int(value or 0) for value in sums),
    )


def _order(row: UsageTotal) -> tuple[Any, ...]:
    return (row.period_start, row.workspace_id, row.user_id, row.tool, row.model)


def periods_fold(rows: Iterable[UsageTotal], period: Period, tz: ZoneInfo) -> list[UsageTotal]:
    """Rows of 15-minute buckets summed into `period`s of time zone `tz` (the other dimensions kept)."""
    folded: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        assert row.period_start is not None  # noqa: S101 (rows of 15-minute buckets)
        key = (period_start(row.period_start, period, tz), row.workspace_id, row.user_id, row.tool, row.model)
        sums = folded.setdefault(key, [0] * len(MEASURES))
        for index, name in enumerate(MEASURES):
            sums[index] += getattr(row, name)
    totals = [UsageTotal(key[0], key[1], key[2], key[3], key[4], *sums) for key, sums in folded.items()]
    return sorted(totals, key=_order)


def _in(alias: str, column: str, name: str, values: Sequence[Any], params: dict[str, Any]) -> str:
    names = []
    for index, value in enumerate(values):
        params[f"{name}_{index}"] = value
        names.append(f"%({name}_{index})s")
    return f"{alias}.{column} IN ({', '.join(names)})"


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def usage_totals(
    *,
    organization: Organization,
    start: datetime,
    end: datetime,
    workspace_ids: Sequence[int] | None = None,
    user_ids: Sequence[int] | None = None,
    tools: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    group_by: Sequence[Group] = (),
    period: Period | None = None,
    tz: str | None = None,
    using: str | None = None,
) -> UsageTotals:
    """The organization's usage in `[start, end)`, filtered (None: no filter) and grouped; exact to the last
    committed charge. Rows are ordered by period, then by the dimensions; without `group_by` and `period` there is
    always exactly one row (zeros when nothing was used).

    `using` names the database alias to read (default: where the router sends reads, so `default` unless inside
    `qolaba.routers.reading_from_replica()`); the watermark and "as of" come from the same database, so a replica's
    lag shows in `rolled_up_at` and the totals stay exact to what that database has."""
    _check_bound("start", start)
    _check_bound("end", end)
    unknown = set(group_by) - set(GROUPS)
    if unknown or (period is not None and period not in PERIODS):
        raise ValueError(f"cannot group by {sorted(unknown) or period}")
    zone = ZoneInfo(tz or organization.timezone)
    alias = using or router.db_for_read(UsageRollup)
    connection = connections[alias]
    state = rollup_state(using=alias)
    filters: dict[str, Sequence[Any] | None] = {
        "workspace": workspace_ids,
        "user": user_ids,
        "tool": tools,
        "model": models,
    }
    grouped = [name for name in _DIMENSIONS if name in group_by]
    one_row = not grouped and period is None  # plain totals: one row, zeros included

    if any(values is not None and not values for values in filters.values()):
        rows = [_total(None, {}, [0] * len(MEASURES))] if one_row else []
        return UsageTotals(rows, state.watermark, state.ran_at)

    d = Dialect(connection.vendor)
    params: dict[str, Any] = {
        "organization": organization.pk,
        "watermark": state.watermark,
        "start": connection.ops.adapt_datetimefield_value(start),
        "end": connection.ops.adapt_datetimefield_value(end),
        "tz": zone.key,
    }

    def where(alias: str, column: Any, time: str, low: str = "start", high: str = "end") -> str:
        conditions = [
            f"{alias}.{column('organization')} = %(organization)s",
            f"{alias}.{time} >= %({low})s",
            f"{alias}.{time} < %({high})s",
        ]
        for name, values in filters.items():
            if values is not None:
                conditions.append(_in(alias, column(name), name, values, params))
        return " AND ".join(conditions)

    ev = {name: event_column(name) for name in (*KEY, "created_at", "changed_seq")}
    ro = {name: rollup_column(name) for name in (*KEY, "bucket_start", *MEASURES)}
    dims_e = [f"e.{ev[name]}" for name in _DIMENSIONS]
    dims_r = [f"r.{ro[name]}" for name in _DIMENSIONS]
    bucket = ro["bucket_start"]
    dirty_match_r = " AND ".join(
        [*(f"x.{ro[name]} = r.{ro[name]}" for name in _DIMENSIONS), f"x.{bucket} = r.{bucket}"]
    )
    dirty_match_e = " AND ".join(f"e.{ev[name]} = x.{ro[name]}" for name in _DIMENSIONS)

    if period is None:
        time_select = []
    elif period == "15min" or d.vendor != "postgresql":
        time_select = [f"c.{bucket}"]
    else:
        time_select = [f"date_trunc({_unit(period)}, c.{bucket}, %(tz)s)"]
    group_columns = [*time_select, *(f"c.{ro[name]}" for name in grouped)]
    sums = ", ".join(f"SUM(c.{ro[name]})" for name in MEASURES)
    group_clause = f"GROUP BY {', '.join(group_columns)} ORDER BY {', '.join(group_columns)}" if group_columns else ""
    if group_columns and d.vendor == "postgresql":
        # The day rows less the dirty buckets' 15-minute rows can sum to zero for a group that has no usage left in
        # the range (every event of it released since): such a group was never a row (a 15-minute row always has a
        # captured or held event), so it is not one now either.
        group_clause = group_clause.replace(
            " ORDER BY ",
            f" HAVING SUM(c.{ro['generations']}) <> 0 OR SUM(c.{ro['held_generations']}) <> 0 ORDER BY ",
        )

    # Whole local days inside the range are read from the daily level, the rest (and everything when the daily
    # level cannot serve) from the 15-minute level: [start, days_start) and [days_end, end).
    days = _whole_days(start, end, zone) if d.vendor == "postgresql" and period not in ("15min", "hour") else None
    days_start, days_end = days if days is not None else (start, start)
    params["days_start"] = connection.ops.adapt_datetimefield_value(days_start)
    params["days_end"] = connection.ops.adapt_datetimefield_value(days_end)
    rollup_cols = f"{', '.join(dims_r)}, r.{bucket}, {', '.join(f'r.{ro[name]}' for name in MEASURES)}"
    not_dirty = f"NOT EXISTS (SELECT 1 FROM dirty x WHERE {dirty_match_r})"  # noqa: S608 (the code's names)

    def fifteen(low: str, high: str, condition: str = "TRUE") -> str:
        """The rolled-up buckets in [low, high) in which no event changed since the watermark."""
        return f"""
            SELECT {rollup_cols} FROM {ROLLUP} r
            WHERE {where("r", rollup_column, bucket, low, high)} AND {not_dirty} AND {condition}
        """  # noqa: S608 (names and fragments are the code's; every value is a parameter)

    branches = [fifteen("start", "days_start"), fifteen("days_end", "end")]
    zoned = ""
    if days is not None:
        dc = {name: daily_column(name) for name in (*KEY, "day_start", *MEASURES)}
        params["days_zone"] = zone.key
        # The day rows serve only when cut in this zone (an organization's zone changed since: the next run cuts
        # them again; a read in another zone). A one-time condition: PostgreSQL runs one of the two branches.
        zoned = f""", zoned AS (
            SELECT EXISTS (
                SELECT 1 FROM {ZONE} z
                WHERE z.{zone_column("organization")} = %(organization)s
                    AND z.{zone_column("timezone")} = %(days_zone)s
            ) AS ok
        )"""  # noqa: S608 (names are the code's; every value is a parameter)
        # Summed to what the answer groups by before the union: the fold into periods (a time zone conversion per
        # row) then sees a few rows per day instead of every key's.
        days_keep = [f"dr.{dc[name]}" for name in grouped] + ([f"dr.{dc['day_start']}"] if period else [])
        days_rows = f"""
            SELECT {", ".join(f"dr.{dc[name]}" if name in grouped else "NULL" for name in _DIMENSIONS)},
                {f"dr.{dc['day_start']}" if period else "NULL::timestamptz"},
                {", ".join(f"SUM(dr.{dc[name]})::bigint" for name in MEASURES)}
            FROM {DAILY} dr
            WHERE {where("dr", daily_column, dc["day_start"], "days_start", "days_end")} AND (SELECT ok FROM zoned)
            {f"GROUP BY {', '.join(days_keep)}" if days_keep else ""}
        """  # noqa: S608 (names and fragments are the code's; every value is a parameter)
        # A day row holds its dirty buckets' 15-minute rows, which the events recount below: taken out again.
        days_dirty = f"""
            SELECT {", ".join(dims_r)}, r.{bucket}, {", ".join(f"-r.{ro[name]}" for name in MEASURES)}
            FROM dirty x
            JOIN {ROLLUP} r ON r.{ro["organization"]} = %(organization)s AND {dirty_match_r}
            WHERE x.{bucket} >= %(days_start)s AND x.{bucket} < %(days_end)s AND (SELECT ok FROM zoned)
        """  # noqa: S608 (names and fragments are the code's; every value is a parameter)
        branches += [fifteen("days_start", "days_end", "NOT (SELECT ok FROM zoned)"), days_rows, days_dirty]

    if d.vendor == "postgresql":
        # Each dirty bucket's events are fetched once per bucket by the (organization, time) index (LATERAL over the
        # few distinct buckets; `OFFSET 0` keeps the planner from flattening it, MATERIALIZED from joining the dirty
        # keys inside the loop), then matched to the dirty keys. Joined key by key instead, PostgreSQL sorted every
        # event of the organization to merge them (30 s at 10M events, EXPLAIN ANALYZE).
        recent = f""", recent AS MATERIALIZED (
            SELECT b.{bucket} AS bucket_of, e.*
            FROM (SELECT DISTINCT {bucket} FROM dirty) b
            CROSS JOIN LATERAL (
                SELECT * FROM {EVENTS} e
                WHERE e.{ev["organization"]} = %(organization)s AND e.{ev["created_at"]} >= b.{bucket}
                    AND e.{ev["created_at"]} < {d.bucket_end(f"b.{bucket}")} AND {counted("e")}
                OFFSET 0
            ) e
        )"""  # noqa: S608 (names and fragments are the code's; every value is a parameter)
        recount = f"""
            SELECT {", ".join(dims_e)}, e.bucket_of, {", ".join(measures("e"))}
            FROM recent e
            JOIN dirty x ON x.{bucket} = e.bucket_of AND {dirty_match_e}
            GROUP BY {", ".join(dims_e)}, e.bucket_of
        """  # noqa: S608 (names and fragments are the code's; every value is a parameter)
    else:
        recent = ""
        recount = f"""
            SELECT {", ".join(dims_e)}, x.{bucket}, {", ".join(measures("e"))}
            FROM dirty x
            JOIN {EVENTS} e ON e.{ev["organization"]} = %(organization)s AND {dirty_match_e}
                AND e.{ev["created_at"]} >= x.{bucket} AND e.{ev["created_at"]} < {d.bucket_end(f"x.{bucket}")}
            WHERE {counted("e")}
            GROUP BY {", ".join(dims_e)}, x.{bucket}
        """  # noqa: S608 (names and fragments are the code's; every value is a parameter)

    sql = f"""
        WITH dirty AS (
            SELECT DISTINCT {", ".join(f"{c} AS {ro[n]}" for c, n in zip(dims_e, _DIMENSIONS, strict=True))},
                {d.bucket(f"e.{ev['created_at']}")} AS {bucket}
            FROM {EVENTS} e
            WHERE e.{ev["changed_seq"]} >= %(watermark)s AND {where("e", event_column, ev["created_at"])}
        ){zoned}{recent}, c AS (
            {" UNION ALL ".join(branches)}
            UNION ALL
            {recount}
        )
        SELECT {", ".join([*group_columns, sums])}
        FROM c
        {group_clause}
    """  # noqa: S608 (names and fragments are the code's; every value is a parameter)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()

    rows = []
    for record in fetched:
        at = _as_utc(record[0]) if time_select else None
        values = record[len(time_select) : len(group_columns)]
        rows.append(_total(at, dict(zip(grouped, values, strict=True)), record[len(group_columns) :]))
    if period is not None and period != "15min" and d.vendor != "postgresql":
        rows = periods_fold(rows, period, zone)
    return UsageTotals(rows, state.watermark, state.ran_at)


def _whole_days(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The first and last local midnight of `zone` in `[start, end]` when at least one whole local day lies between
    them and the daily level can serve them: None otherwise.

    A day row sums the 15-minute buckets whose start falls on that local date (`date_trunc('day', …, zone)`), so
    the days between two midnights are exactly the buckets between them — unless a clock change moves the local
    date backwards across a midnight (a midnight that happens twice), where a date's buckets are not one stretch of
    time: such a range is read from the 15-minute level (Python's `fold=0` midnight and PostgreSQL's agree
    elsewhere, also for a midnight skipped by a clock change)."""
    first = start.astimezone(zone)
    day = first.date() if first.time() == datetime.min.time() else first.date() + timedelta(days=1)
    last = end.astimezone(zone).date()
    if day >= last:
        return None
    midnights = []
    current = day
    while current <= last:
        at = datetime(current.year, current.month, current.day, tzinfo=zone)
        if at.astimezone(UTC) != at.replace(fold=1).astimezone(UTC):
            return None  # an ambiguous midnight: the local date goes backwards around it
        midnights.append(at.astimezone(UTC))
        current += timedelta(days=1)
    days_start = midnights[0]
    days_end = midnights[-1] if midnights[-1] <= end else midnights[-2] if len(midnights) > 1 else days_start
    if days_end <= days_start or days_start < start:
        return None
    if any(m.minute % 15 or m.second for m in (days_start, days_end)):
        return None  # a zone whose offset is not a multiple of 15 minutes (historical times): no 15-minute cut
    return days_start, days_end


def _unit(period: Period) -> str:
    return {"hour": "'hour'", "day": "'day'", "week": "'week'", "month": "'month'"}[period]
