"""The metering API's endpoints: health, the key's workspace, prices, charges and holds (capture, release), and the
usage reports (a workspace's, by its key; an organization's, by an admin key: the one endpoint such a key opens).

A write answers through `idempotent_answer` (stored under its Idempotency-Key, replayed on a retry); a charge is
first tried as one statement (`usage.fastpath`), and the general path here answers everything it leaves."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.timezone import now
from ninja import Router

from billing import ledger
from orgs.models import User
from usage.answers import ChargeOut
from usage.api.authentication import (
    AdminKeyAuth,
    PresentedKey,
    WellFormedWorkspaceKey,
    request_organization,
    request_workspace,
)
from usage.api.errors import JSON, ApiError
from usage.api.reports import ORGANIZATION_GROUPS, WORKSPACE_GROUPS, api_usage_query_parse, usage_report
from usage.api.schemas import (
    ERRORS,
    CaptureIn,
    ChargeIn,
    ErrorOut,
    HealthOut,
    HoldIn,
    HoldOut,
    IdempotencyKey,
    OrganizationUsageOut,
    PricesOut,
    ReleaseOut,
    UsageOut,
    WorkspaceOut,
    usage_parameters,
)
from usage.fastpath import charge_fast
from usage.models import Price, UsageStatus
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
from workspaces.models import Workspace
from workspaces.selectors import workspace_spender
from workspaces.services import api_key_mark_used

router = Router()


def _answer(answer: Answer) -> HttpResponse:
    response = HttpResponse(json.dumps(answer.body), status=answer.status_code, content_type=JSON)
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _spender(workspace: Workspace, email: str) -> User:
    user = workspace_spender(workspace=workspace, email=email)
    if user is None:
        raise ApiError(
            403,
            "member_not_allowed",
            f"{email} is not a member of this workspace who may use its tools (viewers cannot).",
        )
    return user


@router.get("/health", auth=None, response={200: HealthOut}, summary="Liveness (no key needed)")
def health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/workspace", response={200: WorkspaceOut, 401: ErrorOut}, summary="The key's workspace")
def workspace_detail(request: HttpRequest) -> dict[str, Any]:
    workspace = request_workspace(request)
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
        return _answer(
            Answer(201, ChargeOut.body(event_id=fast.event_id, credits=fast.credits, available=fast.available))
        )
    return _charge_create_general(request, payload, idempotency_key, fingerprint)


def _charge_create_general(
    request: HttpRequest, payload: ChargeIn, idempotency_key: str, fingerprint: str
) -> HttpResponse:
    """Every case the one-statement charge leaves: refusals, replays, monthly limits, a short stripe, SQLite."""
    workspace = request_workspace(request)

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
            fingerprint=fingerprint,
        )
        return 201, ChargeOut.body(
            event_id=metered.event.pk, credits=metered.event.credits, available=metered.available
        )

    return _answer(
        idempotent_answer(workspace=workspace, key=idempotency_key, request_hash=fingerprint, produce=produce)
    )


@router.post("/holds", response={201: HoldOut, **ERRORS}, summary="Hold the price of a long generation")
def hold_create(request: HttpRequest, payload: HoldIn, idempotency_key: IdempotencyKey) -> HttpResponse:
    workspace = request_workspace(request)
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
        held = HoldOut(
            id=metered.event.pk,
            credits=metered.event.credits,
            expires_at=metered.event.hold.expires_at.isoformat(),
            status=UsageStatus.HELD,
        )
        return 201, held.model_dump(mode="json")

    return _answer(
        idempotent_answer(workspace=workspace, key=idempotency_key, request_hash=fingerprint, produce=produce)
    )


@router.post("/holds/{hold_id}/capture", response={200: ChargeOut, **ERRORS}, summary="Capture a hold")
def hold_capture(
    request: HttpRequest, hold_id: int, payload: CaptureIn, idempotency_key: IdempotencyKey
) -> HttpResponse:
    workspace = request_workspace(request)
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
        return 200, ChargeOut.body(
            event_id=metered.event.pk, credits=metered.event.credits, available=metered.available
        )

    return _answer(
        idempotent_answer(workspace=workspace, key=idempotency_key, request_hash=fingerprint, produce=produce)
    )


@router.post(
    "/holds/{hold_id}/release",
    response={200: ReleaseOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut},
    summary="Release a hold",
)
def hold_release(request: HttpRequest, hold_id: int) -> dict[str, Any]:
    workspace = request_workspace(request)
    event = usage_hold_release(event=held_event_find(workspace=workspace, event_id=hold_id))
    return {"id": event.pk, "status": "released"}


def _json(body: dict[str, Any]) -> HttpResponse:
    return HttpResponse(json.dumps(body), content_type=JSON)


@router.get(
    "/usage",
    response={200: UsageOut, 400: ErrorOut, 401: ErrorOut},
    summary="The workspace's usage over a range of days",
    openapi_extra=usage_parameters(WORKSPACE_GROUPS),
)
def usage_read(request: HttpRequest) -> HttpResponse:
    workspace = request_workspace(request)
    query = api_usage_query_parse(request.GET, groups=WORKSPACE_GROUPS)
    report = usage_report(organization=workspace.organization, query=query, workspace_ids=[workspace.pk])
    return _json({"workspace": workspace.pk, **report})


@router.get(
    "/organization/usage",
    auth=AdminKeyAuth(),
    response={200: OrganizationUsageOut, 400: ErrorOut, 401: ErrorOut},
    summary="The organization's usage over a range of days (organization admin key)",
    openapi_extra=usage_parameters(ORGANIZATION_GROUPS),
)
def organization_usage_read(request: HttpRequest) -> HttpResponse:
    organization = request_organization(request)
    query = api_usage_query_parse(request.GET, groups=ORGANIZATION_GROUPS)
    return _json({"organization": organization.slug, **usage_report(organization=organization, query=query)})
