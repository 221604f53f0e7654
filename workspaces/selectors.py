from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Value

from billing.models import balance_of
from orgs.models import Membership, MembershipStatus, Organization, OrganizationRole, User
from workspaces.models import ApiKey, Workspace, WorkspaceMembership, WorkspaceUserObjectPermission
from workspaces.services import api_key_parse


def workspaces_for_switcher(*, user: Any, organization: Any) -> QuerySet[Workspace]:
    """The live workspaces of `organization` that `user` can open, Primary first."""
    return Workspace.objects.for_user(user).filter(organization=organization).order_by("-is_primary", "name")


@dataclass(frozen=True)
class OverviewFigures:
    workspace_people: int
    organization_members: int
    my_workspaces: int


def workspace_overview_figures(*, user: Any, workspace: Workspace) -> OverviewFigures:
    """Counts for the Overview: who can open this workspace, the org's members, the user's workspaces."""
    return OverviewFigures(
        workspace_people=WorkspaceUserObjectPermission.objects.filter(
            content_object=workspace, permission__codename="view_workspace"
        ).count(),
        organization_members=Membership.objects.active().filter(organization_id=workspace.organization_id).count(),
        my_workspaces=workspaces_for_switcher(user=user, organization=workspace.organization).count(),
    )


def workspaces_for_management(*, organization: Organization) -> QuerySet[Workspace]:
    """Live workspaces with their people count (assigned Members + the org's Owner/Admins) for the Workspaces tab."""
    admins = Membership.objects.active().filter(organization=organization, role__gte=OrganizationRole.ADMIN).count()
    return (
        Workspace.objects.live()
        .filter(organization=organization)
        .select_related("created_by")
        .annotate(
            assigned=Count(
                "memberships",
                filter=Q(
                    memberships__user__memberships__organization=organization,
                    memberships__user__memberships__status=MembershipStatus.ACTIVE,
                    memberships__user__memberships__role=OrganizationRole.MEMBER,
                ),
            ),
            people=F("assigned") + Value(admins),
            balance=balance_of("credit_account"),
        )
        .order_by("-is_primary", "name")
    )


def archived_workspaces(*, organization: Organization) -> QuerySet[Workspace]:
    return Workspace.objects.filter(organization=organization, archived_at__isnull=False).order_by("-archived_at")


def workspace_people(*, workspace: Workspace) -> list[dict[str, Any]]:
    """Everyone who can open the workspace, with how they got access, Owner/Admins first."""
    organization_admins = (
        Membership.objects.active()
        .filter(organization_id=workspace.organization_id, role__gte=OrganizationRole.ADMIN)
        .select_related("user")
        .order_by("-role", "user__email")
    )
    assigned = (
        WorkspaceMembership.objects.filter(
            workspace=workspace,
            user__memberships__organization_id=workspace.organization_id,
            user__memberships__status=MembershipStatus.ACTIVE,
            user__memberships__role=OrganizationRole.MEMBER,
        )
        .select_related("user")
        .order_by("user__email")
    )
    people: list[dict[str, Any]] = [
        {"user": m.user, "role": "admin", "via": m.get_role_display(), "assigned": False} for m in organization_admins
    ]
    people += [{"user": wm.user, "role": wm.role, "via": "Assigned", "assigned": True} for wm in assigned]
    return people


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The live key `raw` is, with its workspace and organization; None for anything else (malformed, unknown,
    revoked, or its workspace or organization deleted). Compared in constant time."""
    parsed = api_key_parse(raw)
    if parsed is None:
        return None
    prefix, secret_hash = parsed
    api_key = (
        ApiKey.objects.active()
        .filter(
            prefix=prefix,
            workspace__archived_at__isnull=True,
            workspace__organization__deleted_at__isnull=True,
        )
        .select_related("workspace__organization")
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, secret_hash):
        return None
    return api_key


def workspace_spender(*, workspace: Workspace, email: str) -> User | None:
    """The active user with this email who may spend credits in `workspace` (the same permission rows that guard
    every page: viewers, removed members and strangers have no `use_workspace` row)."""
    row = (
        WorkspaceUserObjectPermission.objects.filter(
            content_object=workspace,
            permission__codename="use_workspace",
            user__email=email.strip().lower(),
            user__is_active=True,
        )
        .select_related("user")
        .first()
    )
    return row.user if row is not None else None
