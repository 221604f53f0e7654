"""The one place where roles become permissions.

A membership's role is the source of truth. `permissions_apply` turns the roles a user holds in an
organization (organization role + workspace roles) into django-guardian object-permission rows, and is
the only code that writes those rows. Every service that changes a role, a membership or the set of
live workspaces calls it inside its own transaction, so access changes exactly when the data does.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Permission
from django.db import transaction

from orgs.models import (
    Membership,
    MembershipStatus,
    Organization,
    OrganizationRole,
    OrganizationUserObjectPermission,
    User,
)
from workspaces.models import (
    Workspace,
    WorkspaceMembership,
    WorkspaceRole,
    WorkspaceUserObjectPermission,
)

_MEMBER = frozenset({"view_organization"})
_ADMIN = _MEMBER | {
    "manage_members",
    "manage_workspaces",
    "view_all_usage",
    "manage_credits",
    "manage_billing",
    "edit_profile",
    "view_audit_log",
}
_OWNER = _ADMIN | {"transfer_ownership", "delete_organization"}

ORGANIZATION_ROLE_PERMISSIONS: dict[int, frozenset[str]] = {
    OrganizationRole.OWNER: _OWNER,
    OrganizationRole.ADMIN: _ADMIN,
    OrganizationRole.MEMBER: _MEMBER,
}

# The workspace permission that lets its holder spend credits there (run tools, charge the metering API).
SPEND_PERMISSION = "use_workspace"

WORKSPACE_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    WorkspaceRole.ADMIN: frozenset({"view_workspace", "use_workspace", "manage_workspace", "view_workspace_usage"}),
    WorkspaceRole.MEMBER: frozenset({"view_workspace", "use_workspace"}),
    WorkspaceRole.VIEWER: frozenset({"view_workspace"}),
}


def effective_workspace_role(*, organization_role: int, workspace_role: str | None) -> str | None:
    """Owners and Admins are admins of every workspace; Members hold the role they were given, if any."""
    if organization_role >= OrganizationRole.ADMIN:
        return WorkspaceRole.ADMIN
    return workspace_role


def _permission_ids(model: type[Organization] | type[Workspace]) -> dict[str, int]:
    opts = model._meta
    rows = Permission.objects.filter(content_type__app_label=opts.app_label, content_type__model=opts.model_name)
    return dict(rows.values_list("codename", "id"))


@transaction.atomic
def permissions_apply(*, organization: Organization, users: Iterable[User] | None = None) -> None:
    """Make the permission rows of `users` (default: everyone ever in the org) match their roles.

    Removed members and archived workspaces end up with no rows at all, which is what revokes access.
    """
    memberships = Membership.objects.filter(organization=organization)
    if users is not None:
        memberships = memberships.filter(user__in=list(users))
    role_by_user = {
        m.user_id: (m.role if m.status == MembershipStatus.ACTIVE and organization.deleted_at is None else None)
        for m in memberships
    }
    if not role_by_user:
        return
    user_ids = list(role_by_user)
    workspaces = list(Workspace.objects.filter(organization=organization).values_list("id", "archived_at"))
    live_workspace_ids = [ws_id for ws_id, archived_at in workspaces if archived_at is None]
    all_workspace_ids = [ws_id for ws_id, _ in workspaces]
    workspace_roles = {
        (wm.user_id, wm.workspace_id): wm.role
        for wm in WorkspaceMembership.objects.filter(workspace__organization=organization, user_id__in=user_ids)
    }
    org_perm_ids = _permission_ids(Organization)
    ws_perm_ids = _permission_ids(Workspace)

    org_rows = []
    ws_rows = []
    for user_id, org_role in role_by_user.items():
        if org_role is None:
            continue
        for codename in ORGANIZATION_ROLE_PERMISSIONS[org_role]:
            org_rows.append(
                OrganizationUserObjectPermission(
                    user_id=user_id, content_object=organization, permission_id=org_perm_ids[codename]
                )
            )
        for ws_id in live_workspace_ids:
            role = effective_workspace_role(
                organization_role=org_role, workspace_role=workspace_roles.get((user_id, ws_id))
            )
            if role is None:
                continue
            for codename in WORKSPACE_ROLE_PERMISSIONS[role]:
                ws_rows.append(
                    WorkspaceUserObjectPermission(
                        user_id=user_id, content_object_id=ws_id, permission_id=ws_perm_ids[codename]
                    )
                )

    OrganizationUserObjectPermission.objects.filter(content_object=organization, user_id__in=user_ids).delete()
    WorkspaceUserObjectPermission.objects.filter(content_object_id__in=all_workspace_ids, user_id__in=user_ids).delete()
    OrganizationUserObjectPermission.objects.bulk_create(org_rows)
    WorkspaceUserObjectPermission.objects.bulk_create(ws_rows)
