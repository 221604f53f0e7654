"""A real Celery worker killed with SIGKILL in the middle of a roll-up run, then started again, leaves exact totals.

The roll-up task is `acks_late` with `reject_on_worker_lost` (the project's Celery settings): the message of a run
whose worker died was never acknowledged, so the broker hands it out again (after the visibility timeout, here
2 s). The killed run's transaction never committed, so nothing of it remains; the redelivered run (or, if the dead
run's database session still held the lock at that moment, the next scheduled one) does the whole work once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from celery.result import AsyncResult
from django.db import connection

from bench.rollup import generate
from tests.factories import make_organization
from tests.test_celery_worker import (  # noqa: F401 - fixtures used below
    RESULT_TIMEOUT,
    celery_worker_process,
    worker_start,
)
from usage.models import UsageDailyRollup, UsageRollupState
from usage.rollup.run import _LOCK_SPACE
from usage.rollup.sql import (
    DAILY,
    DAILY_COLUMNS,
    EVENT_KEY_COLUMNS,
    EVENTS,
    ROLLUP,
    ROLLUP_COLUMNS,
    ROLLUP_KEY_COLUMNS,
    ZONE,
    Dialect,
    counted,
    measures,
    run_statements,
    zone_column,
)
from usage.tasks import rollup_update_run

pytestmark = pytest.mark.worker

EVENTS_COUNT = 300_000  # enough for a run of a few seconds, so the kill lands inside it


@pytest.fixture
def worker_extra_env() -> dict[str, str]:
    return {"CELERY_VISIBILITY_TIMEOUT": "2"}


def _rollup_lock_holders() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = 0"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [_LOCK_SPACE],
        )
        return int(cursor.fetchone()[0])


def _wait(condition, timeout: float, what: str, log) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s:\n{log()[-4000:]}")
        time.sleep(0.02)


def _rollup_mismatches() -> int:
    """(key, bucket) rows where the roll-up differs from the events summed directly (both ways)."""
    key = ", ".join(f"e.{column}" for column in EVENT_KEY_COLUMNS)
    bucket = Dialect("postgresql").bucket("e.created_at")
    columns = ", ".join(ROLLUP_COLUMNS)
    expected = f"""SELECT {key}, {bucket}, {", ".join(measures("e"))} FROM {EVENTS} e WHERE {counted("e")}
        GROUP BY {key}, {bucket}"""  # noqa: S608 (the code's own names)
    actual = f"SELECT {columns} FROM {ROLLUP}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (({expected}) EXCEPT ({actual})) a")  # noqa: S608
        missing = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM (({actual}) EXCEPT ({expected})) b")  # noqa: S608
        extra = cursor.fetchone()[0]
    return int(missing) + int(extra)


def _daily_mismatches() -> int:
    """Day rows that differ from the 15-minute rows summed per local day of their organization's zone (both ways),
    and organizations with 15-minute rows but no days cut in their zone."""
    key = ", ".join(f"r.{column}" for column in ROLLUP_KEY_COLUMNS)
    day = f"date_trunc('day', r.bucket_start, z.{zone_column('timezone')})"
    sums = ", ".join(f"SUM(r.{column})" for column in ROLLUP_COLUMNS[len(ROLLUP_KEY_COLUMNS) + 1 :])
    expected = f"""SELECT {key}, {day}, {sums} FROM {ROLLUP} r
        JOIN {ZONE} z ON z.{zone_column("organization")} = r.organization_id GROUP BY {key}, {day}"""  # noqa: S608
    actual = f"SELECT {', '.join(DAILY_COLUMNS)} FROM {DAILY}"  # noqa: S608
    unzoned = f"""SELECT COUNT(DISTINCT r.organization_id) FROM {ROLLUP} r
        JOIN orgs_organization o ON o.id = r.organization_id
        LEFT JOIN {ZONE} z ON z.{zone_column("organization")} = o.id
        WHERE z.{zone_column("timezone")} IS DISTINCT FROM o.timezone"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (({expected}) EXCEPT ({actual})) a")  # noqa: S608
        missing = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM (({actual}) EXCEPT ({expected})) b")  # noqa: S608
        extra = cursor.fetchone()[0]
        cursor.execute(unzoned)
        stale = cursor.fetchone()[0]
    return int(missing) + int(extra) + int(stale)


def _events_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {EVENTS}")  # noqa: S608
        return int(cursor.fetchone()[0])


def _bound_passed_the_events() -> bool:
    """A run's bound is the oldest transaction still running on the whole server (other test runs included)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(changed_seq) FROM {EVENTS}")  # noqa: S608
        newest = cursor.fetchone()[0]
        cursor.execute(run_statements("postgresql").bound)
        return int(cursor.fetchone()[0]) > newest


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_rollup_leaves_exact_totals_after_redelivery(celery_worker_process, tmp_path):  # noqa: F811
    worker = celery_worker_process
    # Real organizations in zones whose days start at 00:00, 18:30 and 18:15 UTC, so the run cuts their days too.
    zones = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Europe/Berlin"]
    organizations = [make_organization(name=f"Rolled {n}", timezone=zone).pk for n, zone in enumerate(zones)]
    with connection.cursor() as cursor:
        generate(cursor, 1, EVENTS_COUNT, days=7, start="2026-03-01 00:00:00+00", organizations=organizations)
    assert _events_count() == EVENTS_COUNT
    _wait(_bound_passed_the_events, 120, "Every transaction older than the events ending", worker.log)

    first = rollup_update_run.delay()
    _wait(lambda: _rollup_lock_holders() == 1, 60, "The worker taking the roll-up lock", worker.log)
    time.sleep(0.3)  # well inside the run: its statements are running
    assert UsageRollupState.objects.filter(pk=1, watermark__gt=0).count() == 0, "the run must not have committed"
    os.killpg(worker.process.pid, signal.SIGKILL)  # the worker and its pool child, as a lost machine would
    worker.process.wait(timeout=10)
    assert f"rollup_update_run[{first.id}] succeeded" not in worker.log()

    # The dead run's database session ends when its current statement does: its transaction rolls back.
    _wait(lambda: _rollup_lock_holders() == 0, 120, "The killed run's transaction ending", worker.log)
    assert UsageRollupState.objects.filter(pk=1, watermark__gt=0).count() == 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {ROLLUP}")  # noqa: S608
        assert cursor.fetchone()[0] == 0, "nothing of the killed run may remain"
        cursor.execute(f"SELECT COUNT(*) FROM {DAILY}")  # noqa: S608
        assert cursor.fetchone()[0] == 0, "nothing of the killed run may remain"

    restarted = worker_start(
        queue=worker.queue,
        log_path=tmp_path / "worker-2.log",
        mail_dir=worker.mail_dir,
        extra_env={"CELERY_VISIBILITY_TIMEOUT": "2"},
    )
    try:
        restarted.wait_ready()
        # The unacknowledged message comes back to the new worker: same task id.
        redelivered = AsyncResult(first.id).get(timeout=RESULT_TIMEOUT + 30)
        assert redelivered["ran"] is True, restarted.log()[-4000:]
        assert redelivered["added"] > 0
        state = UsageRollupState.objects.get(pk=1)
        assert state.watermark == redelivered["watermark"]

        assert _rollup_mismatches() == 0
        assert _daily_mismatches() == 0
        assert UsageDailyRollup.objects.filter(organization_id__in=organizations).count() > 0
        # A run after it (beat's next one) finds nothing to do and changes nothing.
        again = rollup_update_run.delay().get(timeout=RESULT_TIMEOUT)
        assert again["ran"] is True
        assert again["added"] == 0
        assert again["recomputed"] == 0
        assert _rollup_mismatches() == 0
        assert _daily_mismatches() == 0
        AsyncResult(first.id).forget()
    finally:
        restarted.stop()
