"""The roll-up's hand-written SQL, for PostgreSQL and for SQLite (the demo).

Table and column names come from the models' `_meta`, status values from `UsageStatus`; what differs between the
two databases is a few fragments (`Dialect`): the 15-minute bucket of a time, the end of a bucket, the safe upper
bound of a run and the temporary table's lifetime. `tests/usage/test_rollups.py` checks that every INSERT into the
roll-up writes each of its columns, and fails when `UsageEvent` gains a column the roll-up does not know about.
"""
# ruff: noqa: S608 — what is formatted into the SQL is the code's (the models' names, enum values); values are parameters

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import models

from orgs.models import Organization
from usage.models import UsageDailyRollup, UsageDailyZone, UsageEvent, UsageRollup, UsageStatus

KEY = ("organization", "workspace", "user", "tool", "model")
MEASURES = ("generations", "units", "credits", "held_generations", "held_credits")
# Released events cost nothing: they count nowhere. Only these two states are summed.
COUNTED = (UsageStatus.CAPTURED, UsageStatus.HELD)

EVENTS = UsageEvent._meta.db_table
ROLLUP = UsageRollup._meta.db_table
CHANGED = "usage_rollup_changed"  # the temporary table of one run: the (key, bucket)s to recompute


def column(model: type[models.Model], name: str) -> str:
    return next(field.column for field in model._meta.concrete_fields if field.name == name)


def literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# The usage event columns the roll-up reads, by field name.
EVENT_FIELDS_READ = (*KEY, "created_at", "status", "units", "credits", "created_seq", "changed_seq")
_E = {name: column(UsageEvent, name) for name in EVENT_FIELDS_READ}
_R = {name: column(UsageRollup, name) for name in (*KEY, "bucket_start", *MEASURES)}
ROLLUP_KEY_COLUMNS = [_R[name] for name in KEY]
ROLLUP_COLUMNS = [*ROLLUP_KEY_COLUMNS, _R["bucket_start"], *(_R[name] for name in MEASURES)]
EVENT_KEY_COLUMNS = [_E[name] for name in KEY]


def event_column(name: str) -> str:
    return _E[name]


def rollup_column(name: str) -> str:
    return _R[name]


def counted(alias: str) -> str:
    """`alias` (a usage event) is captured or held."""
    return f"{alias}.{_E['status']} IN ({', '.join(literal(status) for status in COUNTED)})"


def measures(alias: str) -> list[str]:
    """The aggregates of the usage events `alias`, in the order of MEASURES."""
    captured = f"{alias}.{_E['status']} = {literal(UsageStatus.CAPTURED)}"
    held = f"{alias}.{_E['status']} = {literal(UsageStatus.HELD)}"
    units, credits = f"{alias}.{_E['units']}", f"{alias}.{_E['credits']}"
    return [
        f"COUNT(*) FILTER (WHERE {captured})",
        f"COALESCE(SUM({units}) FILTER (WHERE {captured}), 0)",
        f"COALESCE(SUM({credits}) FILTER (WHERE {captured}), 0)",
        f"COUNT(*) FILTER (WHERE {held})",
        f"COALESCE(SUM({credits}) FILTER (WHERE {held}), 0)",
    ]


def same_key(left: str, right: str, *, left_columns: list[str], right_columns: list[str]) -> str:
    return " AND ".join(f"{left}.{a} = {right}.{b}" for a, b in zip(left_columns, right_columns, strict=True))


@dataclass(frozen=True)
class Dialect:
    vendor: str

    def bucket(self, expression: str) -> str:
        """The start of the 15-minute UTC bucket of the time `expression`, as the roll-up stores it."""
        if self.vendor == "postgresql":
            return f"date_bin('15 minutes', {expression}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
        # Django stores SQLite times as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC; a bucket as 'YYYY-MM-DD HH:MM:00'.
        return (
            f"(strftime('%%Y-%%m-%%d %%H:', {expression}) || "
            f"printf('%%02d:00', CAST(strftime('%%M', {expression}) AS INTEGER) / 15 * 15))"
        )

    def bucket_end(self, expression: str) -> str:
        if self.vendor == "postgresql":
            return f"({expression} + INTERVAL '15 minutes')"
        return f"datetime({expression}, '+15 minutes')"

    @property
    def bound(self) -> str:
        """The safe upper bound of a run: every transaction numbered below it has finished (committed or not).

        PostgreSQL: the xmin of a snapshot taken now — the oldest transaction still running; every id below it is
        finished, so its rows are final and visible to the statements that follow. SQLite: one writer at a time,
        so everything written so far."""
        if self.vendor == "postgresql":
            return "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        return f"SELECT COALESCE(MAX({_E['changed_seq']}), 0) + 1 FROM {EVENTS}"

    @property
    def changed_table(self) -> str:
        return f"pg_temp.{CHANGED}" if self.vendor == "postgresql" else f"temp.{CHANGED}"

    @property
    def create_temporary(self) -> str:
        if self.vendor == "postgresql":
            return f"CREATE TEMPORARY TABLE {CHANGED} ON COMMIT DROP AS"
        return f"CREATE TEMPORARY TABLE {CHANGED} AS"


@dataclass(frozen=True)
class RunStatements:
    """The statements of one roll-up run (`usage.rollup.run`), in the order they run."""

    bound: str
    changed_table: str
    changed_drop: str
    changed_create: str  # (prev, cur): the (key, bucket)s of rows rolled up before and changed since
    changed_delete: str  # their roll-up rows go...
    changed_insert: str  # (cur): ...and are computed again from every event of the bucket below the bound
    added_upsert: str  # (prev, cur): the rows new since the last run, added to their buckets (the others)
    scope_delete: str  # (organization or NULL, since or NULL): a rebuild's scope emptied...
    scope_insert: str  # (bound, organization or NULL, since or NULL): ...and summed again from the events


def _insert_rollup() -> str:
    return f"INSERT INTO {ROLLUP} ({', '.join(ROLLUP_COLUMNS)})"


@cache
def run_statements(vendor: str) -> RunStatements:
    d = Dialect(vendor)
    key_e = ", ".join(f"e.{c}" for c in EVENT_KEY_COLUMNS)
    bucket_e = d.bucket(f"e.{_E['created_at']}")
    created_seq, changed_seq = f"e.{_E['created_seq']}", f"e.{_E['changed_seq']}"
    changed_columns = [*ROLLUP_KEY_COLUMNS, _R["bucket_start"]]
    key_as_rollup = ", ".join(f"e.{e} AS {r}" for e, r in zip(EVENT_KEY_COLUMNS, ROLLUP_KEY_COLUMNS, strict=True))
    in_changed = same_key("c", "e", left_columns=ROLLUP_KEY_COLUMNS, right_columns=EVENT_KEY_COLUMNS)
    measures_e = ", ".join(measures("e"))
    add = ", ".join(f"{c} = {ROLLUP}.{c} + excluded.{c}" for c in (_R[m] for m in MEASURES))
    conflict = ", ".join([ROLLUP_KEY_COLUMNS[0], _R["bucket_start"], *ROLLUP_KEY_COLUMNS[1:]])
    in_scope = f"(%(organization)s IS NULL OR e.{_E['organization']} = %(organization)s)"
    return RunStatements(
        bound=d.bound,
        changed_table=d.changed_table,
        changed_drop=f"DROP TABLE IF EXISTS {d.changed_table}",
        changed_create=f"""
            {d.create_temporary}
            SELECT DISTINCT {key_as_rollup}, {bucket_e} AS {_R["bucket_start"]}
            FROM {EVENTS} e
            WHERE {changed_seq} >= %(prev)s AND {changed_seq} < %(cur)s AND {created_seq} < %(prev)s
                AND %(prev)s > 0  -- before the first run nothing was rolled up: no need to look
        """,
        changed_delete=f"""
            DELETE FROM {ROLLUP} WHERE EXISTS (
                SELECT 1 FROM {d.changed_table} c
                WHERE {" AND ".join(f"c.{col} = {ROLLUP}.{col}" for col in changed_columns)}
            )
        """,
        changed_insert=f"""
            {_insert_rollup()}
            SELECT {key_e}, c.{_R["bucket_start"]}, {measures_e}
            FROM {d.changed_table} c
            JOIN {EVENTS} e ON {in_changed}
                AND e.{_E["created_at"]} >= c.{_R["bucket_start"]}
                AND e.{_E["created_at"]} < {d.bucket_end(f"c.{_R['bucket_start']}")}
            WHERE {created_seq} < %(cur)s AND {counted("e")}
            GROUP BY {key_e}, c.{_R["bucket_start"]}
        """,
        added_upsert=f"""
            {_insert_rollup()}
            SELECT {key_e}, {bucket_e}, {measures_e}
            FROM {EVENTS} e
            WHERE {changed_seq} >= %(prev)s AND {created_seq} >= %(prev)s AND {created_seq} < %(cur)s
                AND {counted("e")}
                AND NOT EXISTS (
                    SELECT 1 FROM {d.changed_table} c
                    WHERE {in_changed} AND c.{_R["bucket_start"]} = {bucket_e}
                )
            GROUP BY {key_e}, {bucket_e}
            ON CONFLICT ({conflict}) DO UPDATE SET {add}
        """,
        scope_delete=f"""
            DELETE FROM {ROLLUP}
            WHERE (%(organization)s IS NULL OR {_R["organization"]} = %(organization)s)
                AND (%(since)s IS NULL OR {_R["bucket_start"]} >= %(since)s)
        """,
        scope_insert=f"""
            {_insert_rollup()}
            SELECT {key_e}, {bucket_e}, {measures_e}
            FROM {EVENTS} e
            WHERE {created_seq} < %(bound)s AND {counted("e")} AND {in_scope}
                AND (%(since)s IS NULL OR e.{_E["created_at"]} >= %(since)s)
            GROUP BY {key_e}, {bucket_e}
        """,
    )


# --- the daily level (PostgreSQL only) ---------------------------------------------------------------------------

DAILY = UsageDailyRollup._meta.db_table
ZONE = UsageDailyZone._meta.db_table
ORGANIZATIONS = Organization._meta.db_table
TOUCHED = "usage_rollup_delta"  # temporary: the changes this run made to 15-minute rows, as rows to add
REZONED = "usage_rollup_rezoned"  # temporary: the organizations whose days this run cuts again, whole
_D = {name: column(UsageDailyRollup, name) for name in (*KEY, "day_start", *MEASURES)}
DAILY_KEY_COLUMNS = [_D[name] for name in KEY]
DAILY_COLUMNS = [*DAILY_KEY_COLUMNS, _D["day_start"], *(_D[name] for name in MEASURES)]
_O = {"id": Organization._meta.pk.column, "timezone": column(Organization, "timezone")}
_Z = {"organization": column(UsageDailyZone, "organization"), "timezone": column(UsageDailyZone, "timezone")}


def daily_column(name: str) -> str:
    return _D[name]


def zone_column(name: str) -> str:
    return _Z[name]


@dataclass(frozen=True)
class DailyStatements:
    """The statements that keep `UsageDailyRollup` equal to the 15-minute level, in the same transaction as the
    run (`usage.rollup.run`). Every change the run makes to 15-minute rows is noted as a delta (the rows a
    recomputation deletes, negated, and the rows it inserts; the sums it adds for new events) and the deltas are
    added to the day rows of the organizations whose days are cut in their zone; an organization without days yet
    or whose zone changed gets all its days cut again from its 15-minute rows instead. So a day row is always the
    sum of its 15-minute rows: a rerun adds nothing, a killed run rolls back with the rest."""

    rezoned_table: str
    delta_drop: str
    delta_create: str
    changed_delete: str  # step 2's delete, its rows noted negated
    changed_insert: str  # (cur): step 2's insert, its rows noted
    days_added: str  # (prev, cur): step 3's new events summed per local day and added to the days
    rezoned_drop: str
    rezoned_create: str  # organizations without days yet, or whose zone changed since their days were cut
    days_delta: str  # the noted deltas added to the days of the other organizations...
    days_prune: str  # ...and the days left with no usage deleted (a day row exists only where 15-minute rows do)
    rezoned_delete: str  # the rezoned organizations' day rows go...
    rezoned_insert: str  # ...and are cut again from all their 15-minute rows in the organization's zone now
    rezoned_zone: str  # ...which is recorded
    zone_forget: str  # (organization or NULL): a rebuild's scope is cut again by the run that follows it


@cache
def daily_statements(vendor: str) -> DailyStatements | None:
    if vendor != "postgresql":
        return None  # SQLite (the demo, little data) reads the 15-minute level only
    d = Dialect(vendor)
    runs = run_statements(vendor)
    r_key = ", ".join(f"r.{c}" for c in ROLLUP_KEY_COLUMNS)
    e_key = ", ".join(f"e.{c}" for c in EVENT_KEY_COLUMNS)
    sums = ", ".join(f"SUM(r.{_R[m]})" for m in MEASURES)
    columns = ", ".join(ROLLUP_COLUMNS)
    negated = ", ".join([*ROLLUP_KEY_COLUMNS, _R["bucket_start"], *(f"-{_R[m]}" for m in MEASURES)])
    add = ", ".join(f"{c} = {DAILY}.{c} + excluded.{c}" for c in (_D[m] for m in MEASURES))
    conflict = ", ".join([DAILY_KEY_COLUMNS[0], _D["day_start"], *DAILY_KEY_COLUMNS[1:]])
    insert = f"INSERT INTO {DAILY} ({', '.join(DAILY_COLUMNS)})"
    org, bucket = _R["organization"], _R["bucket_start"]
    delta, rezoned = f"pg_temp.{TOUCHED}", f"pg_temp.{REZONED}"
    zone_org, zone_tz = _Z["organization"], _Z["timezone"]
    local_day = f"date_trunc('day', r.{bucket}, z.timezone)"
    # Organizations whose days are cut in their zone (the others are cut again whole by the rezoning).
    zoned = (
        f"JOIN {ZONE} z ON z.{zone_org} = {{alias}}.{{column}}"
        f" AND {{alias}}.{{column}} NOT IN (SELECT organization FROM {rezoned})"
    )
    bucket_e = d.bucket(f"e.{_E['created_at']}")
    created_seq, changed_seq = f"e.{_E['created_seq']}", f"e.{_E['changed_seq']}"
    in_changed = same_key("c", "e", left_columns=ROLLUP_KEY_COLUMNS, right_columns=EVENT_KEY_COLUMNS)
    return DailyStatements(
        rezoned_table=rezoned,
        delta_drop=f"DROP TABLE IF EXISTS {delta}",
        delta_create=f"CREATE TEMPORARY TABLE {TOUCHED} ON COMMIT DROP AS SELECT {columns} FROM {ROLLUP} LIMIT 0",
        changed_delete=f"""
            WITH gone AS ({runs.changed_delete} RETURNING {columns})
            INSERT INTO {delta} ({columns}) SELECT {negated} FROM gone
        """,
        changed_insert=f"""
            WITH made AS ({runs.changed_insert} RETURNING {columns})
            INSERT INTO {delta} ({columns}) SELECT {columns} FROM made
        """,
        # The same events and sums as step 3 (`added_upsert`), by local day instead of bucket.
        days_added=f"""
            {insert}
            SELECT {e_key}, date_trunc('day', {bucket_e}, z.{zone_tz}), {", ".join(measures("e"))}
            FROM {EVENTS} e {zoned.format(alias="e", column=_E["organization"])}
            WHERE {changed_seq} >= %(prev)s AND {created_seq} >= %(prev)s AND {created_seq} < %(cur)s
                AND {counted("e")}
                AND NOT EXISTS (
                    SELECT 1 FROM {d.changed_table} c
                    WHERE {in_changed} AND c.{_R["bucket_start"]} = {bucket_e}
                )
            GROUP BY {e_key}, date_trunc('day', {bucket_e}, z.{zone_tz})
            ON CONFLICT ({conflict}) DO UPDATE SET {add}
        """,
        rezoned_drop=f"DROP TABLE IF EXISTS {rezoned}",
        rezoned_create=f"""
            CREATE TEMPORARY TABLE {REZONED} ON COMMIT DROP AS
            SELECT o.{_O["id"]} AS organization, o.{_O["timezone"]} AS timezone
            FROM {ORGANIZATIONS} o LEFT JOIN {ZONE} z ON z.{zone_org} = o.{_O["id"]}
            WHERE z.{zone_tz} IS DISTINCT FROM o.{_O["timezone"]}
        """,
        days_delta=f"""
            {insert}
            SELECT {r_key}, date_trunc('day', r.{bucket}, z.{zone_tz}), {sums}
            FROM {delta} r {zoned.format(alias="r", column=org)}
            GROUP BY {r_key}, date_trunc('day', r.{bucket}, z.{zone_tz})
            ON CONFLICT ({conflict}) DO UPDATE SET {add}
        """,
        days_prune=f"""
            DELETE FROM {DAILY} dr USING (
                SELECT DISTINCT r.{org} AS organization, date_trunc('day', r.{bucket}, z.{zone_tz}) AS day
                FROM {delta} r JOIN {ZONE} z ON z.{zone_org} = r.{org}
            ) x
            WHERE dr.{_D["organization"]} = x.organization AND dr.{_D["day_start"]} = x.day
                AND dr.{_D["generations"]} = 0 AND dr.{_D["held_generations"]} = 0
        """,
        rezoned_delete=f"DELETE FROM {DAILY} WHERE {_D['organization']} IN (SELECT organization FROM {rezoned})",
        rezoned_insert=f"""
            {insert}
            SELECT {r_key}, {local_day}, {sums}
            FROM {ROLLUP} r JOIN {rezoned} z ON z.organization = r.{org}
            GROUP BY {r_key}, {local_day}
        """,
        rezoned_zone=f"""
            INSERT INTO {ZONE} ({zone_org}, {zone_tz}) SELECT organization, timezone FROM {rezoned}
            ON CONFLICT ({zone_org}) DO UPDATE SET {zone_tz} = excluded.{zone_tz}
        """,
        zone_forget=f"DELETE FROM {ZONE} WHERE %(organization)s IS NULL OR {zone_org} = %(organization)s",
    )
