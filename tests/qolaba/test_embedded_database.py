"""The embedded SQLite database of the demo (`./scripts/dev.sh`): the Studio runs long jobs in threads beside the
requests, so two connections writing at once must wait for each other instead of failing with "database is
locked" (a job left running forever: seen when a video's progress and an image's capture met)."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

SCRIPT = r"""
import threading, time, django
django.setup()
from django.db import connection, transaction

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE counter (n integer)")
    cursor.execute("INSERT INTO counter VALUES (0)")
    mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
errors = []

def bump():
    try:
        for _ in range(5):
            with transaction.atomic():  # read, then write: the upgrade that failed under DEFERRED transactions
                with connection.cursor() as cursor:
                    n = cursor.execute("SELECT n FROM counter").fetchone()[0]
                    time.sleep(0.02)
                    cursor.execute("UPDATE counter SET n = %s", [n + 1])
    except Exception as error:
        errors.append(repr(error))
    finally:
        connection.close()

threads = [threading.Thread(target=bump) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
with connection.cursor() as cursor:
    print(mode, cursor.execute("SELECT n FROM counter").fetchone()[0], errors)
"""


def test_two_threads_writing_the_demo_database_wait_for_each_other(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "qolaba.settings.development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", SCRIPT], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # WAL (pages read while a job writes), every increment kept (20 = 4 threads x 5), no "database is locked".
    assert done.stdout.strip() == "wal 20 []"
