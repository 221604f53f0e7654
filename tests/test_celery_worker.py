"""A real Celery worker (prefork, Redis broker) runs the task that organization_create enqueues through the outbox.

Everything else in the suite runs tasks eagerly; this test proves the production path end to end: the outbox's
after-commit relay publishes to Redis, a separate worker process picks the message up, reads the organization
from the same PostgreSQL test database and sends the welcome email (to files, so the test can read them).
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
import uuid
from email.message import Message
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from celery.result import EagerResult
from celery.signals import after_task_publish
from django.conf import settings as django_settings
from django.db import connection
from kombu import pools as kombu_pools

from orgs.tasks import organization_welcome_email_send
from qolaba.celery import app as celery_app
from qolaba.lifecycle import organization_create
from tests.factories import UserFactory

pytestmark = pytest.mark.worker

# A Redis database of its own (the cache uses 13), so the broker keys never mix with anything else.
BROKER_URL = os.environ.get("TEST_WORKER_BROKER_URL", "redis://127.0.0.1:6379/14")
READY_TIMEOUT = 20
RESULT_TIMEOUT = 30
TASK_NAME = organization_welcome_email_send.name


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgres://{credentials}@{host}:{port}/{quote(db['NAME'], safe='')}"


def _reset_connections(app) -> None:
    """Drop what the app cached from its previous configuration: broker pool, routing (queues) and backend."""
    # The app's broker pool is kombu's global pool for that broker: closing it alone would leave a closed pool in
    # kombu's registry, and the next publish on the same broker (eager tasks serialise through a producer too)
    # would fail with "Acquire on closed pool". Reset kombu's registry with it.
    kombu_pools.reset()
    app._pool = None
    app.__dict__.pop("amqp", None)  # cached_property: queues, router and producer pool follow the new conf
    app.__dict__.pop("control", None)
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


class Worker:
    def __init__(self, process: subprocess.Popen, log_path: Path, queue: str, mail_dir: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.queue = queue
        self.mail_dir = mail_dir

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"The Celery worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if " ready." in self.log():
                return
            time.sleep(0.1)
        pytest.fail(f"The Celery worker was not ready within {timeout} s:\n{self.log()[-4000:]}")

    def wait_for_log(self, text: str, timeout: float = 5) -> bool:
        """The pool child stores the result before the main process logs "succeeded": the log may lag a little."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            # The worker leads its own process group (start_new_session): stop it and its pool child together.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def worker_start(*, queue: str, log_path: Path, mail_dir: Path, extra_env: dict[str, str] | None = None) -> Worker:
    """A prefork worker with one child on `queue`, in a process group of its own, against this test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "qolaba.settings.development",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_RESULT_BACKEND": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    env.pop("REDIS_URL", None)  # local-memory cache in the worker: it needs nothing from Redis but the broker
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "qolaba",
        "worker",
        "--pool=prefork",
        "-c",
        "1",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(  # noqa: S603 (fixed command line)
            command,
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(process, log_path, queue, mail_dir)


@pytest.fixture
def worker_extra_env() -> dict[str, str]:
    """Environment the worker gets on top of the fixture's; a test module overrides this fixture to change it."""
    return {}


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path, worker_extra_env):
    """A real worker on a queue of its own, against this test database; the test process publishes to it.

    Depends on `transactional_db` so that the worker is stopped before the database is flushed.
    """
    queue = f"test-worker-{uuid.uuid4().hex[:12]}"
    mail_dir = tmp_path / "emails"
    mail_dir.mkdir()
    worker = worker_start(queue=queue, log_path=tmp_path / "worker.log", mail_dir=mail_dir, extra_env=worker_extra_env)

    # The test process: not eager, same broker, same queue. What to restore is read before anything changes (the
    # Celery app's configuration may still be lazily bound to Django's settings).
    overrides = {
        "task_always_eager": False,
        "broker_url": BROKER_URL,
        "result_backend": BROKER_URL,
        "task_default_queue": queue,
    }
    previous = {key: celery_app.conf[key] for key in overrides}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = BROKER_URL
    settings.CELERY_RESULT_BACKEND = BROKER_URL
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    celery_app.conf.update(overrides)
    _reset_connections(celery_app)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
        celery_app.conf.update(previous)
        _reset_connections(celery_app)
        client = redis.Redis.from_url(BROKER_URL)
        try:  # the queue name is unique to this run: whatever mentions it is ours
            stale = list(client.scan_iter(match=f"*{queue}*"))
            if stale:
                client.delete(*stale)
        finally:
            client.close()


def _published_task_ids():
    """Record the ids of welcome-email tasks published while the context is open."""
    ids: list[str] = []

    def receiver(sender=None, headers=None, **kwargs):
        if sender == TASK_NAME and headers:
            ids.append(headers["id"])

    after_task_publish.connect(receiver, weak=False)
    return ids, lambda: after_task_publish.disconnect(receiver)


def _read_emails(mail_dir: Path) -> list[Message]:
    messages = []
    for path in sorted(mail_dir.iterdir()):
        # The file backend writes each message followed by a line of 79 dashes.
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk))
    return messages


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


@pytest.mark.django_db(transaction=True)
def test_organization_welcome_email_is_sent_by_a_real_worker(celery_worker_process):
    worker = celery_worker_process
    owner = UserFactory(email="owner.worker@example.com", name="Grace Hopper")
    name = f"Worker Test {uuid.uuid4().hex[:6]} Ltd"

    published, stop_recording = _published_task_ids()
    try:
        started = time.monotonic()
        # organization_create is atomic and this test is transactional: it commits, so on_commit fires for real.
        organization = organization_create(name=name, owner=owner)
        assert len(published) == 1, "organization_create should enqueue exactly one welcome email on commit"
        relayed_id = published[0]  # published without a result (the outbox needs none): followed in the log
        direct_result = organization_welcome_email_send.delay(organization.pk)
        assert not isinstance(direct_result, EagerResult), "the test process must publish, not run the task"
    finally:
        stop_recording()

    assert direct_result.get(timeout=RESULT_TIMEOUT) == 1, worker.log()[-4000:]
    for task_id in (relayed_id, direct_result.id):
        assert worker.wait_for_log(f"Task {TASK_NAME}[{task_id}] succeeded", timeout=RESULT_TIMEOUT), worker.log()[
            -4000:
        ]
    elapsed = time.monotonic() - started

    messages = _read_emails(worker.mail_dir)
    assert len(messages) == 2
    for message in messages:
        assert message["To"] == owner.email
        assert message["Subject"] == f"[Qolaba] {name} is ready"
        body = _body(message)
        assert name in body
        assert "Grace Hopper" in body
        assert f"/o/{organization.slug}/" in body
    assert elapsed < RESULT_TIMEOUT
    direct_result.forget()
