"""Metering reads: prices, a workspace's holds, the answer stored under an Idempotency-Key, and the names usage
reports label their rows with."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.timezone import now

from orgs.models import User
from usage.models import IdempotentRequest, Price, UsageEvent, UsageStatus
from usage.refusals import HoldNotFound, UnknownPrice
from workspaces.models import Workspace


def price_list() -> QuerySet[Price]:
    """The prices in force, as the AI tools show them before a generation runs."""
    return Price.objects.active().order_by("tool", "credits_per_unit", "model")


def price_find(*, tool: str, model: str) -> Price:
    price = Price.objects.active().filter(tool=tool, model=model).first()
    if price is None:
        raise UnknownPrice(f"There is no price for model {model!r} of tool {tool!r}; GET /api/v1/prices lists them.")
    return price


def held_event_find(*, workspace: Workspace, event_id: int) -> UsageEvent:
    """The hold `event_id` of this workspace; any other id (another workspace's, a plain charge) is not found."""
    event = (
        UsageEvent.objects.filter(pk=event_id, workspace=workspace, hold__isnull=False).select_related("hold").first()
        if 0 < event_id < 2**63
        else None
    )
    if event is None:
        raise HoldNotFound("No hold with this id in this workspace.")
    return event


def hold_is_expired(event: UsageEvent) -> bool:
    """A hold still pending after its expiry (the sweeper releases it within a minute)."""
    return event.status == UsageStatus.HELD and event.hold is not None and event.hold.expires_at <= now()


def idempotent_request_find(*, workspace: Workspace, key: str) -> IdempotentRequest | None:
    """The answer stored under this workspace's Idempotency-Key, or None."""
    return IdempotentRequest.objects.filter(workspace=workspace, key=key).first()


def member_emails(*, user_ids: list[int]) -> dict[int, str]:
    """The email of each member a usage row names, by user id, in one query (removed members included)."""
    return dict(User.objects.filter(pk__in=user_ids).values_list("pk", "email"))


def workspace_names(*, organization_id: int, workspace_ids: list[int]) -> dict[int, str]:
    """The name of each workspace of the organization a usage row names, by id, in one query (archived included)."""
    rows = Workspace.objects.filter(organization_id=organization_id, pk__in=workspace_ids).values_list("pk", "name")
    return dict(rows)
