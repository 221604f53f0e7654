"""The metering API's refusals: every one is a JSON error `{"error": {"code", "message", ...}}` with the status
the contract gives (`error_response`), from `ApiError` or from the exceptions the services, the ledger and
django-ninja raise (`EXCEPTION_HANDLERS`); a 400 to a key that is not live is the 401 every endpoint gives it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from billing import ledger
from qolaba.outage import BROKER_DOWN, DATABASE_DOWN, outage_of, outage_response
from usage.api.authentication import AdminKeyRequired, PresentedKey, workspace_of
from usage.refusals import MeteringError

JSON = "application/json"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    response = HttpResponse(
        json.dumps({"error": {"code": code, "message": message, **extra}}), status=status, content_type=JSON
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="qolaba"'
    return response


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other address under /api/v1/: a JSON 404, like every answer of the API."""
    return error_response(404, "not_found", "No such endpoint; see /api/v1/openapi.json.")


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "payload", "header", "path")]
    return ".".join(parts) or "body"


def _bad_request(request: HttpRequest, code: str, message: str, **extra: Any) -> HttpResponse:
    """A 400, unless the request's key turns out not to be live: then the 401 every endpoint gives a dead key.
    (The charge endpoint checks only the key's form before it reads the body; the others check it is live.)"""
    presented = getattr(request, "auth", None)
    if isinstance(presented, PresentedKey):
        try:
            workspace_of(presented)
        except AuthenticationError as error:
            return _unauthenticated(request, error)
    return error_response(400, code, message, **extra)


def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    fields: dict[str, str] = {}
    for problem in error.errors:
        location = tuple(problem.get("loc", ()))
        if location[:1] == ("header",):
            if problem.get("type") == "missing":
                return _bad_request(
                    request,
                    "missing_idempotency_key",
                    "Send an Idempotency-Key header (1-255 visible ASCII characters).",
                )
            fields["Idempotency-Key"] = "1-255 visible ASCII characters."
            continue
        fields.setdefault(_field_path(location), str(problem.get("msg", "Invalid value.")))
    return _bad_request(request, "invalid_request", "The request is not valid: see fields.", fields=fields)


def _api_error(request: HttpRequest, error: ApiError) -> HttpResponse:
    if error.status == 400:
        return _bad_request(request, error.code, error.message, **error.extra)
    return error_response(error.status, error.code, error.message, **error.extra)


def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return error_response(401, "invalid_api_key", "Send a live workspace API key as 'Authorization: Bearer <key>'.")


def _admin_key_required(request: HttpRequest, error: AdminKeyRequired) -> HttpResponse:
    return error_response(
        401,
        "invalid_api_key",
        "Send a live organization admin key as 'Authorization: Bearer <key>' (a workspace key cannot read the "
        "organization's usage).",
    )


def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    if error.status_code == 400:
        return _bad_request(request, "invalid_request", str(error), fields={})
    return error_response(error.status_code, "http_error", str(error))


def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return error_response(404, "not_found", "Not found.")


def _metering_error(request: HttpRequest, error: MeteringError) -> HttpResponse:
    status = {"unknown_price": 400, "not_found": 404, "idempotency_conflict": 409, "invalid_request": 400}
    extra = {"fields": {"units": error.message}} if error.code == "invalid_request" else {}
    return error_response(status.get(error.code, 400), error.code, error.message, **extra)


def _no_credits(request: HttpRequest, error: ledger.CreditLimitReached) -> HttpResponse:
    return error_response(
        402,
        "insufficient_credits",
        error.message,
        limit=error.limit,
        available=error.available,
        resets_at=error.resets_at.isoformat() if error.resets_at else None,
    )


def _hold_not_pending(request: HttpRequest, error: ledger.HoldNotPending) -> HttpResponse:
    return error_response(409, "hold_not_pending", error.message)


def _ledger_error(request: HttpRequest, error: ledger.LedgerError) -> HttpResponse:
    return error_response(400, "invalid_request", error.message, fields={})


# django-ninja picks the handler of the exception's nearest class (CreditLimitReached before LedgerError).
def _outage(request: HttpRequest, error: Exception) -> HttpResponse:
    """The database or the broker unreachable: 503 with Retry-After (also when DEBUG would show a traceback)."""
    outage = outage_of(error)
    assert outage is not None  # noqa: S101 - registered only for the outage exceptions
    return outage_response(request, *outage)


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[HttpRequest, Any], HttpResponse]] = {
    **dict.fromkeys((*DATABASE_DOWN, *BROKER_DOWN), _outage),
    ValidationError: _invalid,
    ApiError: _api_error,
    AuthenticationError: _unauthenticated,
    AdminKeyRequired: _admin_key_required,
    HttpError: _http_error,
    Http404: _not_found,
    MeteringError: _metering_error,
    ledger.CreditLimitReached: _no_credits,
    ledger.HoldNotPending: _hold_not_pending,
    ledger.LedgerError: _ledger_error,
}
