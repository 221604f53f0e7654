"""Health endpoints for load balancers and orchestrators, answered before any other middleware (no host check, no
HTTPS redirect, no session, no login):

- `/healthz`: the process answers (liveness). Touches nothing.
- `/readyz`: the database answers, every migration is applied and Redis (the Celery broker) answers (readiness).
  200 with each check, or 503 naming what failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse

# Once every migration is applied it stays so for this process's code: checked until it first passes.
_migrations_applied = False


def _json(status: int, body: dict[str, object]) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _check_database() -> str | None:
    global _migrations_applied
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not _migrations_applied:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if plan:
                return f"migrations: {len(plan)} not applied"
            _migrations_applied = True
    except DatabaseError as error:
        return f"database: {type(error).__name__}"
    return None


def _check_redis() -> str | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None  # no broker to reach: tasks run in-process (the demo)
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"redis: {type(error).__name__}"
    finally:
        client.close()
    return None


def readiness() -> HttpResponse:
    problems = {"database": _check_database(), "redis": _check_redis()}
    if problems["database"] and problems["database"].startswith("migrations"):
        problems["migrations"], problems["database"] = problems["database"], None
    failed = sorted(name for name, problem in problems.items() if problem)
    checks = {name: problems.get(name) or "ok" for name in ("database", "migrations", "redis")}
    if problems["database"]:
        checks["migrations"] = "not checked"
    if failed:
        return _json(503, {"status": "unavailable", "failed": failed, "checks": checks})
    return _json(200, {"status": "ready", "checks": checks})


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return _json(200, {"status": "ok"})
        if request.path == "/readyz":
            return readiness()
        return self.get_response(request)
