"""The metering API (`/api/v1/`) the AI tool services call: prices, charges and holds, by workspace API key.

Views are thin: authenticate the key (one selector), validate the body (pydantic schemas, which are also the
OpenAPI document), then call a usage service inside `idempotent_answer`. Every refusal is a JSON error
`{"error": {"code", "message", ...}}` with the status the contract gives; nothing answers 500.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.timezone import now
from ninja import Field, Header, NinjaAPI, Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import ConfigDict, Strict

from billing import ledger
from billing.ledger import HOLD_TTL_MAX
from orgs.models import User
from usage.fastpath import charge_fast
from usage.models import MAX_UNITS, Price
from usage.refusals import MeteringError
from usage.selectors import held_event_find, hold_is_expired, price_find
from usage.services import (
    Answer,
    HistoryContent,
    idempotent_answer,
    request_hash,
    usage_charge,
    usage_hold_capture,
    usage_hold_place,
    usage_hold_release,
)
from workspaces.models import ApiKey, Workspace
from workspaces.selectors import api_key_find, workspace_spender
from workspaces.services import HISTORY_OUTPUT_MAX, HISTORY_PROMPT_MAX, api_key_mark_used, api_key_parse

MAX_BODY_BYTES = 1024 * 1024
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
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


# --- schemas (the OpenAPI document is generated from these) --------------------------------------------------

StrictInt = Annotated[int, Strict()]


class Strict_(Schema):
    model_config = ConfigDict(extra="forbid")


class OrganizationOut(Schema):
    slug: str
    name: str


class WorkspaceOut(Schema):
    id: int
    name: str
    organization: OrganizationOut
    credit_mode: Literal["shared", "budget"]
    available_credits: int


class PriceOut(Schema):
    tool: str
    model: str
    unit: str
    credits_per_unit: int


class PricesOut(Schema):
    prices: list[PriceOut]


class HistoryIn(Strict_):
    prompt: str = Field("", max_length=HISTORY_PROMPT_MAX)
    output_text: str = Field("", max_length=HISTORY_OUTPUT_MAX)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def content(self) -> HistoryContent:
        return HistoryContent(prompt=self.prompt, output_text=self.output_text, metadata=self.metadata)


class ChargeIn(Strict_):
    member: str = Field(..., min_length=3, max_length=254, description="Email of the member who ran it.")
    tool: str = Field(..., min_length=1, max_length=50)
    model: str = Field(..., min_length=1, max_length=100)
    units: StrictInt = Field(..., ge=1, le=MAX_UNITS)
    history: HistoryIn | None = None


class HoldIn(ChargeIn):
    ttl_seconds: StrictInt = Field(
        900, ge=1, le=int(HOLD_TTL_MAX.total_seconds()), description="Released automatically after this."
    )


class CaptureIn(Strict_):
    units: StrictInt | None = Field(None, ge=1, le=MAX_UNITS, description="At most the held units; default all.")
    history: HistoryIn | None = None


class ChargeOut(Schema):
    id: int
    credits: int
    available_credits: int
    status: Literal["captured"]


class HoldOut(Schema):
    id: int
    credits: int
    expires_at: str
    status: Literal["held"]


class ReleaseOut(Schema):
    id: int
    status: Literal["released"]


class ErrorDetail(Schema):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


# --- plumbing ------------------------------------------------------------------------------------------------


@dataclass
class PresentedKey:
    """A well-formed key from the Authorization header; whether it is live is checked where it is used (in the
    charge's one statement, or by `_workspace`)."""

    prefix: str
    secret_hash: str
    api_key: ApiKey | None = None


class WellFormedWorkspaceKey(HttpBearer):
    """For the hot charge endpoint: only the key's form is checked here; the one-statement charge checks that it is
    live (and the general path answers 401 when it is not)."""

    def authenticate(self, request: HttpRequest, token: str) -> PresentedKey | None:
        parsed = api_key_parse(token.strip())
        return PresentedKey(*parsed) if parsed is not None else None


class WorkspaceKey(WellFormedWorkspaceKey):
    """A live workspace key (checked in the database before the body is even read)."""

    def authenticate(self, request: HttpRequest, token: str) -> PresentedKey | None:
        presented = super().authenticate(request, token)
        if presented is None:
            return None
        try:
            _workspace_of(presented)
        except AuthenticationError:
            return None
        return presented


WellFormedWorkspaceKey.__name__ = "WorkspaceKey"  # the same security scheme in the OpenAPI document


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _nul_at(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in parsed JSON (PostgreSQL text cannot store one), or None."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return here
        found = _nul_at(item, here)
        if found is not None:
            return found
    return None


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        try:
            data = json.loads(request.body, parse_constant=_not_json, parse_float=_finite)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "invalid_request", "The body is not valid JSON.", fields={}) from None
        where = _nul_at(data)
        if where is not None:
            raise ApiError(400, "invalid_request", "Text may not contain NUL characters.", fields={where: "NUL"})
        return data


api = NinjaAPI(
    title="Qolaba metering API",
    version="1",
    description="For the AI tool services: prices, and credits charged or held for each generation.",
    urls_namespace="api",
    auth=WorkspaceKey(),
    parser=JsonParser(),
    docs_url="/docs",
)
router = Router()


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "payload", "header", "path")]
    return ".".join(parts) or "body"


def _bad_request(request: HttpRequest, code: str, message: str, **extra: Any) -> HttpResponse:
    """A 400, unless the request's key turns out not to be live: then the 401 every endpoint gives a dead key.
    (The charge endpoint checks only the key's form before it reads the body; the others check it is live.)"""
    presented = getattr(request, "auth", None)
    if isinstance(presented, PresentedKey):
        try:
            _workspace_of(presented)
        except AuthenticationError as error:
            return _unauthenticated(request, error)
    return error_response(400, code, message, **extra)


@api.exception_handler(ValidationError)
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


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, error: ApiError) -> HttpResponse:
    if error.status == 400:
        return _bad_request(request, error.code, error.message, **error.extra)
    return error_response(error.status, error.code, error.message, **error.extra)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return error_response(401, "invalid_api_key", "Send a live workspace API key as 'Authorization: Bearer <key>'.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    if error.status_code == 400:
        return _bad_request(request, "invalid_request", str(error), fields={})
    return error_response(error.status_code, "http_error", str(error))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return error_response(404, "not_found", "Not found.")


@api.exception_handler(MeteringError)
def _metering_error(request: HttpRequest, error: MeteringError) -> HttpResponse:
    status = {"unknown_price": 400, "not_found": 404, "idempotency_conflict": 409, "invalid_request": 400}
    extra = {"fields": {"units": error.message}} if error.code == "invalid_request" else {}
    return error_response(status.get(error.code, 400), error.code, error.message, **extra)


@api.exception_handler(ledger.CreditLimitReached)
def _no_credits(request: HttpRequest, error: ledger.CreditLimitReached) -> HttpResponse:
    return error_response(
        402,
        "insufficient_credits",
        error.message,
        limit=error.limit,
        available=error.available,
        resets_at=error.resets_at.isoformat() if error.resets_at else None,
    )


@api.exception_handler(ledger.HoldNotPending)
def _hold_not_pending(request: HttpRequest, error: ledger.HoldNotPending) -> HttpResponse:
    return error_response(409, "hold_not_pending", error.message)


@api.exception_handler(ledger.LedgerError)
def _ledger_error(request: HttpRequest, error: ledger.LedgerError) -> HttpResponse:
    return error_response(400, "invalid_request", error.message, fields={})


def _answer(answer: Answer) -> HttpResponse:
    response = HttpResponse(json.dumps(answer.body), status=answer.status_code, content_type=JSON)
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _workspace(request: HttpRequest) -> Workspace:
    """The workspace of the request's key, once the key is known to be live (else 401)."""
    return _workspace_of(request.auth)  # type: ignore[attr-defined]


def _workspace_of(presented: PresentedKey) -> Workspace:
    if presented.api_key is None:
        api_key = api_key_find(prefix=presented.prefix, secret_hash=presented.secret_hash)
        if api_key is None:
            raise AuthenticationError
        api_key_mark_used(api_key_id=api_key.pk, last_used_at=api_key.last_used_at)
        presented.api_key = api_key
    return presented.api_key.workspace


def _spender(workspace: Workspace, email: str) -> User:
    user = workspace_spender(workspace=workspace, email=email)
    if user is None:
        raise ApiError(
            403,
            "member_not_allowed",
            f"{email} is not a member of this workspace who may use its tools (viewers cannot).",
        )
    return user


ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 402, 403, 404, 409, 413), ErrorOut)
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN, max_length=255)]


# --- endpoints -----------------------------------------------------------------------------------------------


class HealthOut(Schema):
    status: Literal["ok"]


@router.get("/health", auth=None, response={200: HealthOut}, summary="Liveness (no key needed)")
def health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/workspace", response={200: WorkspaceOut, 401: ErrorOut}, summary="The key's workspace")
def workspace_detail(request: HttpRequest) -> dict[str, Any]:
    workspace = _workspace(request)
    organization = workspace.organization
    return {
        "id": workspace.pk,
        "name": workspace.name,
        "organization": {"slug": organization.slug, "name": organization.name},
        "credit_mode": organization.credit_mode,
        "available_credits": ledger.available_credits(workspace, organization),
    }


@router.get("/prices", response={200: PricesOut, 401: ErrorOut}, summary="The price list")
def price_list(request: HttpRequest) -> dict[str, Any]:
    prices = Price.objects.active().values("tool", "model", "unit", "credits_per_unit")
    return {"prices": list(prices)}


@router.post(
    "/charges",
    auth=WellFormedWorkspaceKey(),
    response={201: ChargeOut, **ERRORS},
    summary="Charge a finished generation",
)
def charge_create(request: HttpRequest, payload: ChargeIn, idempotency_key: IdempotencyKey) -> HttpResponse:
    presented: PresentedKey = request.auth  # type: ignore[attr-defined]
    email = payload.member.strip().lower()
    fingerprint = request_hash("charge", payload.model_dump() | {"member": email})
    history = payload.history.content() if payload.history else HistoryContent()
    fast = charge_fast(
        prefix=presented.prefix,
        secret_hash=presented.secret_hash,
        email=email,
        tool=payload.tool,
        model=payload.model,
        units=payload.units,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        prompt=history.prompt,
        output_text=history.output_text,
        metadata=history.metadata,
        created=now(),
    )
    if fast is not None:
        api_key_mark_used(api_key_id=fast.key_id, last_used_at=fast.key_last_used_at)
        return _answer(Answer(201, fast.body()))
    return _charge_create_general(request, payload, idempotency_key, fingerprint)


def _charge_create_general(
    request: HttpRequest, payload: ChargeIn, idempotency_key: str, fingerprint: str
) -> HttpResponse:
    """Every case the one-statement charge leaves: refusals, replays, monthly limits, a short stripe, SQLite."""
    workspace = _workspace(request)

    def produce() -> tuple[int, dict[str, Any]]:
        # Checked only for a new request: a replay answers what was done, even if the member left since.
        user = _spender(workspace, payload.member)
        price = price_find(tool=payload.tool, model=payload.model)
        metered = usage_charge(
            workspace=workspace,
            user=user,
            price=price,
            units=payload.units,
            idempotency_key=idempotency_key,
            history=payload.history.content() if payload.history else None,
        )
        body = {
            "id": metered.event.pk,
            "credits": metered.event.credits,
            "available_credits": metered.available,
            "status": "captured",
        }
        return 201, body

    return _answer(
        idempotent_answer(workspace=workspace, key=idempotency_key, request_hash=fingerprint, produce=produce)
    )


@router.post("/holds", response={201: HoldOut, **ERRORS}, summary="Hold the price of a long generation")
def hold_create(request: HttpRequest, payload: HoldIn, idempotency_key: IdempotencyKey) -> HttpResponse:
    workspace = _workspace(request)
    fingerprint = request_hash("hold", payload.model_dump() | {"member": payload.member.strip().lower()})

    def produce() -> tuple[int, dict[str, Any]]:
        # Checked only for a new request: a replay answers what was done, even if the member left since.
        user = _spender(workspace, payload.member)
        price = price_find(tool=payload.tool, model=payload.model)
        metered = usage_hold_place(
            workspace=workspace,
            user=user,
            price=price,
            units=payload.units,
            ttl=timedelta(seconds=payload.ttl_seconds),
            idempotency_key=idempotency_key,
            history=payload.history.content() if payload.history else None,
        )
        assert metered.event.hold is not None  # noqa: S101
        body = {
            "id": metered.event.pk,
            "credits": metered.event.credits,
            "expires_at": metered.event.hold.expires_at.isoformat(),
            "status": "held",
        }
        return 201, body

    return _answer(
        idempotent_answer(workspace=workspace, key=idempotency_key, request_hash=fingerprint, produce=produce)
    )


@router.post("/holds/{hold_id}/capture", response={200: ChargeOut, **ERRORS}, summary="Capture a hold")
def hold_capture(
    request: HttpRequest, hold_id: int, payload: CaptureIn, idempotency_key: IdempotencyKey
) -> HttpResponse:
    workspace = _workspace(request)
    event = held_event_find(workspace=workspace, event_id=hold_id)
    fingerprint = request_hash("capture", payload.model_dump() | {"hold": hold_id})
    if hold_is_expired(event):
        usage_hold_release(event=event)  # what the sweeper would do within a minute, done now
        raise ledger.HoldNotPending("This hold expired; its credits were released.")

    def produce() -> tuple[int, dict[str, Any]]:
        metered = usage_hold_capture(
            event=event,
            workspace=workspace,
            units=payload.units,
            history=payload.history.content() if payload.history else None,
        )
        body = {
            "id": metered.event.pk,
            "credits": metered.event.credits,
            "available_credits": metered.available,
            "status": "captured",
        }
        return 200, body

    return _answer(
        idempotent_answer(workspace=workspace, key=idempotency_key, request_hash=fingerprint, produce=produce)
    )


@router.post(
    "/holds/{hold_id}/release",
    response={200: ReleaseOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut},
    summary="Release a hold",
)
def hold_release(request: HttpRequest, hold_id: int) -> dict[str, Any]:
    workspace = _workspace(request)
    event = usage_hold_release(event=held_event_find(workspace=workspace, event_id=hold_id))
    return {"id": event.pk, "status": "released"}


api.add_router("", router)


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other address under /api/v1/: a JSON 404, like every answer of the API."""
    return error_response(404, "not_found", "No such endpoint; see /api/v1/openapi.json.")
