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
from tests.test_celery_worker import (  # noqa: F401 - fixtures used below
    RESULT_TIMEOUT,
    celery_worker_process,
    worker_start,
)
from usage.models import UsageRollupState
from usage.rollup.run import _LOCK_SPACE
from usage.rollup.sql import (
    EVENT_KEY_COLUMNS,
    EVENTS,
    ROLLUP,
    ROLLUP_COLUMNS,
    Dialect,
    counted,
    measures,
    run_statements,
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
    with connection.cursor() as cursor:
        generate(cursor, 1, EVENTS_COUNT, days=7, start="2026-03-01 00:00:00+00")
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
        # A run after it (beat's next one) finds nothing to do and changes nothing.
        again = rollup_update_run.delay().get(timeout=RESULT_TIMEOUT)
        assert again["ran"] is True
        assert again["added"] == 0
        assert again["recomputed"] == 0
        assert _rollup_mismatches() == 0
        AsyncResult(first.id).forget()
    finally:
        restarted.stop()
