"""Reads of the orgs app: the profile menu's organizations, the audit log, invitations by token, admin keys."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from orgs.models import AdminKey, AuditEvent, Invitation, Membership, MembershipStatus, Organization


def memberships_for_menu(*, user: Any) -> QuerySet[Membership]:
    """The user's live organizations with their role, for the profile menu and the organization list."""
    return (
        Membership.objects.filter(
            user=user,
            status=MembershipStatus.ACTIVE,
            organization__deleted_at__isnull=True,
            organization__user_permissions__user=user,
            organization__user_permissions__permission__codename="view_organization",
        )
        .select_related("organization")
        .order_by("organization__name")
    )


def audit_events(
    *,
    organization: Organization,
    action: str = "",
    actor: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.for_organization(organization)
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_email__icontains=actor)
    # Days are the organization's days, as every date the app shows.
    zone = ZoneInfo(organization.timezone)
    if date_from:
        events = events.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=zone))
    if date_to:
        events = events.filter(created_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone))
    return events.order_by("-created_at", "-id")


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a link's token opens (of a live organization), whatever its state; None for a bad token."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=invitation_token_hash(token), organization__deleted_at__isnull=True)
        .first()
    )


def admin_key_find(*, prefix: str, secret_hash: str) -> AdminKey | None:
    """The live admin key (not revoked, of a live organization) with this public prefix and secret hash (compared in
    constant time), or None."""
    admin_key = (
        AdminKey.objects.active()
        .filter(prefix=prefix, organization__deleted_at__isnull=True)
        .select_related("organization")
        .first()
    )
    if admin_key is None or not hmac.compare_digest(admin_key.secret_hash, secret_hash):
        return None
    return admin_key


def organization_admin_keys(*, organization: Organization) -> tuple[list[AdminKey], list[AdminKey]]:
    """The organization's admin keys, newest first, in one query: (active, revoked)."""
    keys = list(AdminKey.objects.filter(organization=organization).select_related("created_by", "revoked_by"))
    return [k for k in keys if not k.is_revoked], [k for k in keys if k.is_revoked]
