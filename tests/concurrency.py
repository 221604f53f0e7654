"""Running test workers concurrently on real PostgreSQL (tests marked `django_db(transaction=True)`, so every
worker sees committed data): one thread and so one database connection per worker, released together by a
barrier, joined with a timeout so that a hung worker (a deadlock) fails the test instead of hanging it."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from django.db import connection, connections, transaction

JOIN_TIMEOUT = 60.0


def run_together(workers: list[Callable[[Callable[[], None]], Any]], *, timeout: float = JOIN_TIMEOUT) -> list[Any]:
    """Run each worker in its own thread (its own database connection). A worker loads what it needs, calls
    `start()` (the barrier), then races. Returns their results; fails on any exception or on a hung worker."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[str] = []

    def run(index: int, worker: Callable[[Callable[[], None]], Any]) -> None:
        try:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                # A lock wait that long means a deadlock the server did not see: fail instead of hanging.
                cursor.execute("SET lock_timeout = '20s'")
            results[index] = worker(lambda: barrier.wait(timeout=30))
        except BaseException:  # reported to the main thread
            errors.append(f"worker {index}:\n{traceback.format_exc()}")
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, w), daemon=True) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"workers still running after {timeout}s (deadlock?): {hung}"
    assert not errors, "\n".join(errors)
    return results


def _lock_waiting(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def race_against(holder: Callable[[], Any], racer: Callable[[], Any]) -> tuple[Any, list[Any]]:
    """Run `holder` in a transaction left open; once it ran, start `racer`; commit `holder` only once `racer` waits
    on a lock (or finished). Returns what `holder` returned and what `racer` returned or raised."""
    held, waiting = threading.Event(), threading.Event()
    racer_pid: list[int] = []
    held_result: list[Any] = []
    outcome: list[Any] = []

    def hold_open(start):
        start()
        with transaction.atomic():
            held_result.append(holder())
            held.set()
            assert waiting.wait(timeout=20)

    def race(start):
        start()
        assert held.wait(timeout=20)
        racer_pid.append(connection.connection.info.backend_pid)
        try:
            outcome.append(racer())
        except Exception as error:  # what the racer was answered is the point of the test
            outcome.append(error)

    def watch(start):
        start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if racer_pid and (_lock_waiting(racer_pid[0]) or outcome):
                break
            time.sleep(0.01)
        waiting.set()

    run_together([hold_open, race, watch])
    return held_result[0], outcome
