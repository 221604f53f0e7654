from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from orgs.models import Membership
from workspaces.models import Workspace, WorkspaceUserObjectPermission


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
