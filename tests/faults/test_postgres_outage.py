"""PostgreSQL stopped (`pg_ctl stop -m immediate`) under gunicorn while charges and page views run: every request
during the outage gets a 503 with Retry-After (a page, or the API's JSON error with a code), never a 500 or a
traceback; after the restart every gunicorn worker recovers by itself, and clients that retry with their
Idempotency-Key are charged exactly once.

The cluster is a throwaway one (its own folder and port), loaded with a copy of the test database's schema."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection

from tests.factories import PASSWORD
from tests.faults.services import PG_BIN, ThrowawayPostgres, free_port, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db]
logger = logging.getLogger(__name__)

SETUP = """
import json, django
django.setup()
from tests.usage.conftest import make_metered_workspace
m = make_metered_workspace(credits=100_000)
print("SETUP " + json.dumps({"key": m.key, "member": m.member.email, "org": m.organization.slug,
                             "workspace": m.workspace.slug}))
"""


@pytest.fixture
def stack(django_db_blocker, tmp_path):
    """A throwaway cluster with the test database's schema and data, one metered workspace, and gunicorn (2 sync
    workers, persistent connections) serving the app from it."""
    cluster = ThrowawayPostgres()
    gunicorn = None
    try:
        cluster.init()
        source = connection.settings_dict
        dump = subprocess.run(  # noqa: S603
            [
                *(str(PG_BIN / "pg_dump"), "-h", source["HOST"] or "127.0.0.1", "-p", str(source["PORT"] or 5432)),
                *("-U", source["USER"] or "postgres", "--no-owner", source["NAME"]),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        subprocess.run(  # noqa: S603
            [str(PG_BIN / "psql"), "-q", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "qolaba"],
            input=dump.stdout,
            capture_output=True,
            check=True,
            timeout=120,
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "qolaba.settings.development",
            "DATABASE_URL": cluster.url,
            "DEBUG": "false",
            "CONN_MAX_AGE": "60",
            "ALLOWED_HOSTS": "127.0.0.1",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            env.pop(name, None)  # tasks in-process: this test is about the database
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-c", SETUP], env=env, cwd=django_settings.BASE_DIR, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        data = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("SETUP "))[6:])
        port = free_port()
        log = (tmp_path / "gunicorn.log").open("wb")
        gunicorn = subprocess.Popen(  # noqa: S603
            [
                *(str(Path(sys.executable).with_name("gunicorn")), "qolaba.wsgi", "--workers", "2"),
                *("--bind", f"127.0.0.1:{port}", "--timeout", "30", "--access-logfile", "-"),
            ],
            env=env,
            cwd=django_settings.BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(base + "/healthz", timeout=1).ok, 30, "gunicorn")
        data.update(base=base, cluster=cluster, log=tmp_path / "gunicorn.log")
        yield data
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=15)
        cluster.destroy()


def _charge(s: dict, key: str, units: int = 1) -> requests.Response:
    return requests.post(
        s["base"] + "/api/v1/charges",
        json={"member": s["member"], "tool": "chat", "model": "gpt-4o", "units": units},
        headers={"Authorization": f"Bearer {s['key']}", "Idempotency-Key": key},
        timeout=10,
    )


def _signed_in(s: dict) -> requests.Session:
    browser = requests.Session()
    browser.get(s["base"] + "/accounts/login/", timeout=10)
    response = browser.post(
        s["base"] + "/accounts/login/",
        data={"login": s["member"], "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": s["base"] + "/accounts/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:2000]
    return browser


class Clients:
    """Charge clients that send a stream of charges, each under its own Idempotency-Key, retrying every key on a
    503 or a dropped connection until it is answered, for a bounded time."""

    def __init__(self, s: dict, count: int = 2) -> None:
        self.s = s
        self.stop = threading.Event()
        self.answered: dict[str, int] = {}
        self.statuses: list[int] = []
        self.retries = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]

    def _run(self, n: int) -> None:
        sent = 0
        while not self.stop.is_set() and sent < 500:
            key = f"load-{n}-{sent}"
            sent += 1
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    response = _charge(self.s, key)
                except requests.ConnectionError:
                    status = 0
                else:
                    status = response.status_code
                with self.lock:
                    self.statuses.append(status)
                if status in (200, 201):
                    with self.lock:
                        self.answered[key] = response.json()["credits"]
                    break
                with self.lock:
                    self.retries += 1
                time.sleep(0.05)

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=90)


def _database_rows(s: dict, sql: str) -> list[tuple]:
    with psycopg.connect(s["cluster"].url.replace("postgres://", "postgresql://")) as db:
        return db.execute(sql).fetchall()


@pytest.mark.django_db
def test_a_database_outage_answers_503_with_retry_after_and_everything_recovers(stack, record_property):
    s = stack
    browser = _signed_in(s)
    page = f"{s['base']}/o/{s['org']}/w/{s['workspace']}/"
    assert browser.get(page, timeout=10).status_code == 200
    assert _charge(s, "before").status_code == 201
    assert requests.get(s["base"] + "/readyz", timeout=5).json()["status"] == "ready"

    with Clients(s) as clients:
        time.sleep(1.0)
        s["cluster"].stop("immediate")
        outage = []
        for _ in range(4):  # both gunicorn workers, each with its broken persistent connection
            outage.append(browser.get(page, timeout=10))
            outage.append(_charge(s, "during"))
        ready = requests.get(s["base"] + "/readyz", timeout=5)
        alive = requests.get(s["base"] + "/healthz", timeout=5)
        time.sleep(1.0)
        s["cluster"].start()
        time.sleep(1.5)

    for response in outage:
        assert response.status_code == 503, (response.request.url, response.status_code, response.text[:500])
        assert response.headers["Retry-After"] == str(django_settings.OUTAGE_RETRY_AFTER_SECONDS)
        assert "Traceback" not in response.text
    pages = [r for r in outage if "/api/" not in r.request.url]
    assert all("Qolaba is back in a moment" in r.text for r in pages)
    api = [r for r in outage if "/api/" in r.request.url]
    assert all(r.json()["error"]["code"] == "database_unavailable" for r in api)
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["database"]
    assert alive.status_code == 200

    # Recovery without restarting anything: every worker answers at once.
    for _ in range(4):
        assert browser.get(page, timeout=10).status_code == 200
    first = _charge(s, "during")  # the client retries the key refused with a 503
    assert first.status_code == 201
    replay = _charge(s, "during")
    assert replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert requests.get(s["base"] + "/readyz", timeout=5).status_code == 200

    # The load: every key answered once it could be, no status but 201/503/connection refused, and the ledger
    # holds exactly one charge per key.
    assert set(clients.statuses) <= {0, 201, 503}, sorted(set(clients.statuses))
    assert 503 in clients.statuses or 0 in clients.statuses
    charged = len(clients.answered) + 2  # the load, "before" and "during"
    answers = _database_rows(s, "SELECT count(*), count(DISTINCT key) FROM usage_idempotentrequest")
    assert answers == [(charged, charged)]
    charges = _database_rows(s, "SELECT count(*), sum(amount) FROM billing_ledgertransaction WHERE kind = 'charge'")
    events = _database_rows(s, "SELECT count(*), sum(credits) FROM usage_usageevent")
    assert charges == events
    assert charges[0][0] == charged
    log = s["log"].read_text(errors="replace")
    assert "Traceback" not in log
    figures = {
        "requests": len(clients.statuses),
        "answered": len(clients.answered),
        "retried": clients.retries,
        "answered_503": clients.statuses.count(503),
        "connection_refused": clients.statuses.count(0),
        "charged": charged,
    }
    record_property("figures", figures)  # in the JUnit report
    logger.info("database outage under load: %s", figures)
