from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from usage.api.errors import error_response
from usage.api.parser import MAX_BODY_BYTES

_PLAIN_ERRORS = {404: ("not_found", "No such endpoint; see /api/v1/openapi.json."), 405: ("method_not_allowed", "")}


def api_guard(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """For the metering API: refuse bodies over 1 MiB before anything reads them, and answer in JSON the 404s and
    405s that Django's URL routing (not the API) produces."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return error_response(413, "payload_too_large", "The body is over 1 MiB.")
        response = get_response(request)
        plain = _PLAIN_ERRORS.get(response.status_code)
        if plain is not None and not response.get("Content-Type", "").startswith("application/json"):
            code, message = plain
            if response.status_code == 405:
                message = f"{request.method} is not allowed here; allowed: {response.get('Allow', '')}."
            json_response = error_response(response.status_code, code, message)
            if "Allow" in response:
                json_response["Allow"] = response["Allow"]
            return json_response
        return response

    return middleware
