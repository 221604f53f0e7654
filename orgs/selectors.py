from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from orgs.models import AuditEvent, Invitation, InvitationStatus, Membership, MembershipStatus, Organization


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


def members_table(
    *, organization: Organization, search: str = "", status: str = ""
) -> tuple[QuerySet[Membership], QuerySet[Invitation]]:
    """Members (newest role first) and pending/expired invitations of the Members tab, filtered alike.

    Workspace assignments are prefetched, so a page of rows costs a constant number of queries.
    """
    from workspaces.models import WorkspaceMembership

    members = (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .prefetch_related(
            Prefetch(
                "user__workspace_memberships",
                queryset=WorkspaceMembership.objects.filter(
                    workspace__organization=organization, workspace__archived_at__isnull=True
                ).select_related("workspace"),
                to_attr="org_workspace_memberships",
            )
        )
        .order_by("-role", "user__email")
    )
    invitations = (
        Invitation.objects.filter(organization=organization, status=InvitationStatus.PENDING)
        .prefetch_related("workspaces")
        .select_related("invited_by")
        .order_by("email")
    )
    if search:
        members = members.filter(Q(user__email__icontains=search) | Q(user__name__icontains=search))
        invitations = invitations.filter(email__icontains=search)
    if status == "active":
        members, invitations = members.filter(status=MembershipStatus.ACTIVE), invitations.none()
    elif status == "removed":
        members, invitations = members.filter(status=MembershipStatus.REMOVED), invitations.none()
    elif status == "pending":
        members = members.none()
    return members, invitations


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
    if date_from:
        events = events.filter(created_at__date__gte=date_from)
    if date_to:
        events = events.filter(created_at__date__lte=date_to)
    return events.order_by("-created_at", "-id")
