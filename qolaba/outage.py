"""What a request gets while a backing service is unreachable: a 503 with `Retry-After` (a page, or under /api/ the
API's JSON error with a code), never a 500 with a traceback.

`OutageMiddleware` (outermost) answers the errors raised by views; `server_error` (the project's handler500)
answers those raised by middleware (the session saved after the view, ...) and falls back to the 500 page for
everything else. Neither touches the database. A database restart needs nothing more: with `CONN_HEALTH_CHECKS`
a kept connection is tested before a request reuses it, and Django closes a connection that failed at the end of
the request, so the first request after the restart opens a new one."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError)
BROKER_DOWN = (BrokerError, RedisConnectionError, RedisTimeoutError)


def outage_of(exception: BaseException | None) -> tuple[str, str] | None:
    """(code, message) if `exception` means a backing service is unreachable (or the database refused for a
    transient reason: a restart, a deadlock, a serialization failure), None otherwise."""
    if isinstance(exception, DATABASE_DOWN):
        return "database_unavailable", "The database is unavailable."
    if isinstance(exception, BROKER_DOWN):
        return "queue_unavailable", "The task queue (Redis) is unavailable."
    return None


def outage_response(request: HttpRequest, code: str, message: str) -> HttpResponse:
    retry_after = settings.OUTAGE_RETRY_AFTER_SECONDS
    if request.path.startswith("/api/"):
        body = {"error": {"code": code, "message": f"{message} Retry in {retry_after} seconds.", "retryable": True}}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json")
    else:
        page = loader.get_template("503.html").render({"message": message, "retry_after": retry_after})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        outage = outage_of(exception)
        if outage is None:
            return None
        logger.warning("%s %s answered 503: %s", request.method, request.path, exception)
        return outage_response(request, *outage)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a 503 for an outage met outside a view, the plain 500 page otherwise."""
    outage = outage_of(sys.exc_info()[1])
    if outage is not None:
        return outage_response(request, *outage)
    if request.path.startswith("/api/"):
        body = {"error": {"code": "server_error", "message": "Something went wrong on our side."}}
        return HttpResponseServerError(json.dumps(body), content_type="application/json")
    return HttpResponseServerError(loader.get_template("500.html").render())
