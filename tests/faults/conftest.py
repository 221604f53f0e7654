"""Fixtures of the fault tests: a throwaway Redis that the Celery app of this test process publishes to, and a
real Celery worker consuming from it against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from qolaba.celery import app as celery_app
from qolaba.outbox import services as outbox_services
from qolaba.ratelimit import counters as rate_counters
from tests.faults.services import ThrowawayRedis
from tests.test_celery_worker import Worker, _database_url, _reset_connections


@pytest.fixture
def broker(transactional_db, settings, tmp_path):
    """A throwaway Redis as every Redis of this process: the broker (tasks are published, not run in-process), and
    any cache configured on Redis (none is: a test that stops this Redis would catch one that came back)."""
    server = ThrowawayRedis(tmp_path)
    server.start()
    queue = f"faults-{uuid.uuid4().hex[:12]}"
    overrides = {
        "task_always_eager": False,
        "broker_url": server.url,
        "result_backend": server.url,
        "task_default_queue": queue,
    }
    previous = {key: celery_app.conf[key] for key in overrides}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = server.url
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.REDIS_URL = server.url
    settings.RATE_LIMIT_REDIS_URL = server.url  # the API's rate limit counters: on this Redis too
    rate_counters.reset()
    settings.CACHES = {
        alias: {**conf, "LOCATION": server.url} if "redis" in conf["BACKEND"].lower() else conf
        for alias, conf in settings.CACHES.items()
    }
    celery_app.conf.update(overrides)
    _reset_connections(celery_app)
    server.queue = queue  # type: ignore[attr-defined]
    outbox_services._after_commit_paused_until = 0.0  # an earlier test's outage does not pause this one's relays
    try:
        yield server
    finally:
        celery_app.conf.update(previous)
        _reset_connections(celery_app)
        server.stop()
        rate_counters.reset()


def start_worker(
    server: ThrowawayRedis,
    tmp_path: Path,
    *,
    extra_env: dict[str, str] | None = None,
    concurrency: int = 1,
    name: str = "worker",
) -> Worker:
    """A real prefork worker on the throwaway broker and the test database, writing emails to files."""
    mail_dir = tmp_path / "emails"
    mail_dir.mkdir(exist_ok=True)
    log_path = tmp_path / f"{name}.log"
    queue = server.queue  # type: ignore[attr-defined]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "qolaba.settings.development",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": server.url,
        "CELERY_RESULT_BACKEND": server.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("REDIS_URL", None)
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "qolaba", "worker", "--pool=prefork", "-c", str(concurrency), "-Q", queue, "-n", f"{name}-{queue}@%h"),
        *("--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 (fixed command line)
            command,
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, log_path, queue, mail_dir)
    worker.wait_ready()
    return worker


@pytest.fixture
def worker_on(tmp_path):
    """Start a worker on a broker when the test is ready for it; stopped before the database is flushed."""
    started: list[Worker] = []

    def start(server: ThrowawayRedis, **options: Any) -> Worker:
        worker = start_worker(server, tmp_path, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
