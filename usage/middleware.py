from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from usage.api import MAX_BODY_BYTES, error_response


def payload_limit(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: refuse metering requests whose body is over 1 MiB before anything reads it."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > MAX_BODY_BYTES:
                return error_response(413, "payload_too_large", "The body is over 1 MiB.")
        response: HttpResponse = get_response(request)
        return response

    return middleware
