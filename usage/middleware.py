from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from qolaba.keys import key_secret_hash
from qolaba.ratelimit import Rate, Verdict, rate_hit, rate_parse
from usage.api.errors import error_response
from usage.api.parser import MAX_BODY_BYTES

_PLAIN_ERRORS = {404: ("not_found", "No such endpoint; see /api/v1/openapi.json."), 405: ("method_not_allowed", "")}


def api_guard(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """For the metering API: refuse bodies over 1 MiB before anything reads them, count each key's requests against
    API_RATE_LIMIT (429 past it), and answer in JSON the 404s and 405s that Django's URL routing (not the API)
    produces."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return error_response(413, "payload_too_large", "The body is over 1 MiB.")
        verdict = _key_rate_hit(request)
        if verdict is not None and not verdict.allowed:
            refused = error_response(
                429,
                "rate_limited",
                f"This key sent more than {verdict.limit} requests in a window of {_api_rate().seconds} s "  # type: ignore[union-attr]
                f"(API_RATE_LIMIT); retry after {verdict.retry_after} s.",
                retry_after=verdict.retry_after,
            )
            refused["Retry-After"] = str(verdict.retry_after)
            return _with_rate_headers(refused, verdict)
        response = get_response(request)
        if verdict is not None:
            _with_rate_headers(response, verdict)
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


@lru_cache(maxsize=8)
def _parsed(text: str) -> Rate | None:
    return rate_parse(text)


def _api_rate() -> Rate | None:
    return _parsed(settings.API_RATE_LIMIT)


def _key_rate_hit(request: HttpRequest) -> Verdict | None:
    """Counts the request against its key's limit. The bucket is the SHA-256 of the whole key as sent, so only the
    key's holder spends its allowance (a guessed prefix with a wrong secret counts in a bucket of its own), and no
    database lookup is needed first. Requests without a key (health, the OpenAPI document) are not counted."""
    rate = _api_rate()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if rate is None or header[:7].lower() != "bearer ":
        return None
    token = header[7:].strip()
    if not token:
        return None
    return rate_hit(scope="api-key", key=key_secret_hash(token)[:40], rate=rate)


def _with_rate_headers(response: HttpResponse, verdict: Verdict) -> HttpResponse:
    response["RateLimit-Limit"] = str(verdict.limit)
    response["RateLimit-Remaining"] = str(verdict.remaining)
    response["RateLimit-Reset"] = str(verdict.retry_after)
    return response
