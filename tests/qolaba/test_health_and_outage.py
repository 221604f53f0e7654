"""/healthz and /readyz, and the 503 a request gets while the database or the broker is unreachable (the real outages
are in tests/faults)."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client
from django.urls import clear_url_caches

from qolaba import health
from tests.faults.services import free_port

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.1.2.3")  # a load balancer's address: no host check
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_readyz_checks_the_database_the_migrations_and_redis(client):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "redis": "ok"}}


def test_readyz_names_redis_when_it_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"] == "redis: ConnectionError"
    assert body["checks"]["database"] == "ok"


def test_readyz_names_unapplied_migrations(client, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(health.MigrationExecutor, "migration_plan", lambda self, targets: [("outbox", "9999_new")])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["migrations"]
    assert response.json()["checks"]["migrations"] == "migrations: 1 not applied"


@pytest.fixture
def outage_client(settings):
    settings.ROOT_URLCONF = "tests.qolaba.outage_urls"
    clear_url_caches()
    yield Client(raise_request_exception=False)
    clear_url_caches()


@pytest.mark.parametrize("code", ["database_unavailable", "queue_unavailable"])
def test_an_outage_met_by_a_view_is_a_503_with_retry_after(outage_client, code, settings):
    response = outage_client.get("/boom/", HTTP_X_RAISE=code)
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    assert "Qolaba is back in a moment" in response.content.decode()
    api = outage_client.get("/api/boom/", HTTP_X_RAISE=code)
    assert api.status_code == 503
    assert api.json()["error"]["code"] == code
    assert api["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)


def test_an_outage_met_by_a_middleware_after_the_view_is_a_503_too(outage_client, monkeypatch, settings):
    """The session is saved by its middleware after the view: the project's handler500 answers that one."""

    def lost(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(SessionStore, "save", lost)
    response = outage_client.get("/remember/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    assert "Traceback" not in response.content.decode()


def test_any_other_error_is_still_the_plain_500(outage_client):
    assert outage_client.get("/boom/", HTTP_X_RAISE="bug").status_code == 500
    api = outage_client.get("/api/boom/", HTTP_X_RAISE="bug")
    assert (api.status_code, api.json()["error"]["code"]) == (500, "server_error")
