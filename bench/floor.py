"""A reference endpoint for `api_charges.py`, served only by the benchmark's own gunicorn: the cheapest durable
write a request can make here (parse a JSON body, insert one row, commit), through the same middleware and the same
prepared-statement path as the charge. It shows what any endpoint that writes to PostgreSQL can reach against the
health baseline on this machine; the charge is measured against both.

`bench.floor_settings` is the production settings with this module as the URL conf: the app's own URLs first, so
the measured endpoints resolve exactly as in production, then this one."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from qolaba.db import Statement, execute_prepared
from qolaba.urls import urlpatterns as app_urlpatterns

PATH = "/bench/durable-write"
TABLE_SQL = "CREATE TABLE IF NOT EXISTS bench_durable_write (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
_INSERT = Statement("INSERT INTO bench_durable_write (payload) VALUES (%(payload)s::jsonb) RETURNING id")


@csrf_exempt  # a machine-to-machine endpoint, like the metering API
@require_POST
def durable_write(request: HttpRequest) -> HttpResponse:
    try:
        payload = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": {"code": "invalid_request", "message": "Not JSON."}}, status=400)
    row = execute_prepared(_INSERT, {"payload": json.dumps(payload)})
    assert row is not None  # noqa: S101
    return JsonResponse({"id": row[0], "credits": 0}, status=201)


urlpatterns = [*app_urlpatterns, path(PATH.lstrip("/"), durable_write)]
