"""The roll-up's writes: the incremental run (`rollup_update`, every 30 s by beat) and the rebuild from the events.

A run, in one database transaction (READ COMMITTED, Django's default: each statement sees what was committed
before it started):

1. take the roll-up lock; `prev` = the stored watermark; `cur` = the safe upper bound (`Dialect.bound`): every
   transaction numbered below it has finished, so every row it wrote is final and visible from here on;
2. the (key, bucket)s with a row rolled up before and changed since (`created_seq < prev <= changed_seq < cur`: a
   hold captured, released or expired) are put in a temporary table; their roll-up rows are deleted and computed
   again from every event of the bucket with `created_seq < cur` (so a row newer than `cur` is never counted now
   *and* by the next run);
3. the rows new since the last run (`prev <= created_seq < cur`) of every other (key, bucket) are summed and added
   to their buckets (an upsert);
4. `cur` becomes the watermark;
5. (PostgreSQL) the daily level (`UsageDailyRollup`) follows: what steps 2-3 changed in 15-minute rows (the
   rows deleted, negated; the rows inserted; the sums added) is added to the local days of organizations whose days
   are cut in their zone, and an organization without days yet or whose time zone changed since its days were cut
   (`UsageDailyZone`) gets all its days cut again from its 15-minute rows. So in every committed state a day row is
   the sum of its 15-minute rows, which is what the live read relies on.

So each event is added exactly once, by the run whose range holds its `created_seq`, and any later change of it
puts its bucket through step 2 in the run whose range holds its `changed_seq`. A row can be seen in a newer state
than `cur` (committed by a transaction numbered `cur` or more while the run reads): its bucket is computed again by
the next run, which finds its `changed_seq` in its range. Rows committed out of order are safe: a transaction
still running when a run takes its bound holds the bound below its own number (`pg_snapshot_xmin`), so its rows
fall in a later run's range however late it commits. A rerun finds nothing new and changes nothing; a run killed
midway rolls back entirely (the watermark with it), and the next one does the same work again.

On PostgreSQL one run at a time: `pg_try_advisory_xact_lock` — a run that finds another one running returns at
once (the running one, or the next one 30 s later, covers everything it would have), so a slow run never queues
workers behind it. A rebuild waits for the lock (`pg_advisory_xact_lock`): it must not be skipped. SQLite (the
demo) has one writer at a time anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils.timezone import now

from orgs.models import Organization
from usage.models import UsageRollupState
from usage.rollup.sql import DailyStatements, RunStatements, daily_statements, run_statements

_LOCK_SPACE = 0x51C1  # advisory-lock namespace of the roll-up (billing's account debit lock is 0x51C0)


@dataclass(frozen=True)
class RollupRun:
    ran: bool  # False: another run held the lock, and this one did nothing
    previous: int  # the watermark it started from
    watermark: int  # the watermark it left
    recomputed: int  # (key, bucket)s computed again because events in them changed
    added: int  # roll-up rows inserted or added to by new events


def _execute(sql: str, params: dict[str, Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})  # always with parameters: the SQL's literal % are written %%
        return cursor.rowcount


def _scalar(sql: str, params: dict[str, Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        row = cursor.fetchone()
    return row[0] if row else None


def _lock(*, wait: bool) -> bool:
    if connection.vendor != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = _scalar(f"SELECT {function}(%(space)s, 0)", {"space": _LOCK_SPACE})
    return wait or bool(got)


def _state() -> UsageRollupState:
    # Read after the lock, so in a snapshot that sees the previous run's commit.
    state, _ = UsageRollupState.objects.get_or_create(pk=1)
    return state


def _days(daily: DailyStatements) -> None:
    """Step 5, after the 15-minute rows' changes were noted (`_advance`): the deltas go into the day rows; the
    organizations without days yet or whose zone changed get all their days cut again."""
    _execute(daily.days_delta)
    _execute(daily.days_prune)
    if _scalar(f"SELECT EXISTS (SELECT 1 FROM {daily.rezoned_table})"):  # noqa: S608 (the code's name)
        _execute(daily.rezoned_delete)
        _execute(daily.rezoned_insert)
        _execute(daily.rezoned_zone)


def _advance(state: UsageRollupState, statements: RunStatements) -> RollupRun:
    """Steps 1 (the bound) to 5 of the module's docstring, from `state`'s watermark."""
    previous, at = state.watermark, now()
    daily = daily_statements(connection.vendor)
    # Before any write of this transaction (which would give it a number of its own).
    current = max(int(_scalar(statements.bound)), previous)
    recomputed = added = 0
    if daily is not None:
        _execute(daily.delta_drop)
        _execute(daily.delta_create)
        _execute(daily.rezoned_drop)
        _execute(daily.rezoned_create)
    if current > previous:
        bounds = {"prev": previous, "cur": current}
        _execute(statements.changed_drop)
        _execute(statements.changed_create, bounds)
        recomputed = int(_scalar(f"SELECT COUNT(*) FROM {statements.changed_table}"))  # noqa: S608 (the code's name)
        if recomputed:
            _execute(daily.changed_delete if daily is not None else statements.changed_delete)
            _execute(daily.changed_insert if daily is not None else statements.changed_insert, bounds)
        added = _execute(statements.added_upsert, bounds)
        if daily is not None:
            _execute(daily.days_added, bounds)
        _execute(statements.changed_drop)  # SQLite keeps temporary tables past the transaction
    if daily is not None:
        _days(daily)
    state.watermark, state.ran_at = current, at
    state.save(update_fields=["watermark", "ran_at"])
    return RollupRun(ran=True, previous=previous, watermark=current, recomputed=recomputed, added=added)


def rollup_update() -> RollupRun:
    """Bring the roll-up up to date with the usage events (the beat task). Safe to run again at any time."""
    statements = run_statements(connection.vendor)
    with transaction.atomic():
        if not _lock(wait=False):
            watermark = UsageRollupState.objects.filter(pk=1).values_list("watermark", flat=True).first() or 0
            return RollupRun(ran=False, previous=watermark, watermark=watermark, recomputed=0, added=0)
        return _advance(_state(), statements)


def rollup_rebuild(*, organization: Organization | None = None) -> RollupRun:
    """Compute the roll-up again from the usage events: all of it, or one organization's; then bring it up to date.

    The scope is summed from the events below the stored watermark (what the roll-up holds), so the run that follows
    in the same transaction adds the newer ones exactly as an incremental run would: the result is the same. For
    after something changed events in a way the runs do not follow (a changed `created_at`, a deleted row). Buckets
    before `UsageRollupState.events_from` (months whose events retention dropped) are left as they are."""
    statements = run_statements(connection.vendor)
    with transaction.atomic():
        _lock(wait=True)
        state = _state()
        # Months of events dropped by retention (usage.partitions) are kept as they are: the roll-up is their record.
        since = state.events_from
        scope = {
            "organization": organization.pk if organization is not None else None,
            "bound": state.watermark,
            "since": connection.ops.adapt_datetimefield_value(since) if since is not None else None,
        }
        _execute(statements.scope_delete, scope)
        _execute(statements.scope_insert, scope)
        daily = daily_statements(connection.vendor)
        if daily is not None:  # the scope's days are cut again from its new 15-minute rows by the run below
            _execute(daily.zone_forget, {"organization": scope["organization"]})
        return _advance(state, statements)
