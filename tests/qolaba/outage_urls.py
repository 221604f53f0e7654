"""URLs of tests/qolaba/test_health_and_outage.py: views that fail as a lost database or broker makes them fail."""

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path
from kombu.exceptions import OperationalError as BrokerError

handler500 = "qolaba.outage.server_error"

ERRORS = {
    "database_unavailable": OperationalError("server closed the connection unexpectedly"),
    "queue_unavailable": BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    "bug": ZeroDivisionError("a bug"),
}


def boom(request: HttpRequest) -> HttpResponse:
    raise ERRORS[request.headers["X-Raise"]]


def remember(request: HttpRequest) -> HttpResponse:
    request.session["seen"] = True  # saved by SessionMiddleware after this view returns
    return HttpResponse("ok")


urlpatterns = [path("boom/", boom), path("api/boom/", boom), path("remember/", remember)]
