from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from orgs.audit import audit_record
from orgs.models import Membership, Organization, OrganizationRole, User
from orgs.roles import permissions_apply
from qolaba.slugs import unique_slug
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole


def _organization_admins(organization: Organization) -> list[User]:
    return list(
        User.objects.filter(
            memberships__organization=organization,
            memberships__role__gte=OrganizationRole.ADMIN,
        )
    )


@transaction.atomic
def workspace_create(
    *,
    organization: Organization,
    name: str,
    created_by: User | None,
    description: str = "",
    is_primary: bool = False,
) -> Workspace:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the workspace a name."})
    if Workspace.objects.live().filter(organization=organization, name__iexact=name).exists():
        raise ValidationError({"name": "A workspace with this name already exists in the organization."})
    workspace = Workspace.objects.create(
        organization=organization,
        name=name,
        slug=unique_slug(name, queryset=Workspace.objects.filter(organization=organization), fallback="workspace"),
        description=description.strip(),
        is_primary=is_primary,
        created_by=created_by,
    )
    permissions_apply(organization=organization, users=_organization_admins(organization))
    audit_record(
        organization=organization,
        actor=created_by,
        action="workspace.created",
        target=workspace,
        after={"name": workspace.name, "is_primary": is_primary},
    )
    return workspace


@transaction.atomic
def workspace_membership_set(
    *, workspace: Workspace, user: User, role: WorkspaceRole | str, actor: User | None
) -> WorkspaceMembership:
    """Assign an organization member to a workspace with a role (or change that role)."""
    if role not in WorkspaceRole.values:
        raise ValidationError({"role": "Choose admin, member or viewer."})
    if not Membership.objects.active().filter(organization_id=workspace.organization_id, user=user).exists():
        raise ValidationError("Only active members of the organization can be assigned to its workspaces.")
    existing = WorkspaceMembership.objects.filter(workspace=workspace, user=user).first()
    before = {"role": existing.role} if existing else {}
    membership, _ = WorkspaceMembership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    permissions_apply(organization=workspace.organization, users=[user])
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action="workspace.member_set",
        target=membership,
        before=before,
        after={"role": role, "workspace": workspace.name, "user": user.email},
    )
    return membership
