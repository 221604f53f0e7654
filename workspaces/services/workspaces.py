"""Workspaces' settings and who is assigned to them, with which role. Every change re-applies permissions.

Creating, archiving and restoring a workspace move credits too, so they live above billing, in `qolaba.lifecycle`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from orgs.audit import audit_record
from orgs.models import AuditAction, Membership, MembershipStatus, OrganizationRole, User
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole
from workspaces.roles import permissions_apply


@transaction.atomic
def workspace_member_set(
    *, workspace: Workspace, user: User, role: WorkspaceRole | str, actor: User | None
) -> WorkspaceMembership:
    """Assign an organization member to a workspace with a role (or change that role)."""
    if role not in WorkspaceRole.values:
        raise ValidationError({"role": "Choose admin, member or viewer."})
    if not Membership.objects.active().filter(organization_id=workspace.organization_id, user=user).exists():
        raise ValidationError("Only active members of the organization can be assigned to its workspaces.")
    existing = WorkspaceMembership.objects.filter(workspace=workspace, user=user).first()
    if existing is not None and existing.role == role:
        return existing
    before = {"role": existing.role} if existing else {}
    membership, _ = WorkspaceMembership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    permissions_apply(organization=workspace.organization, users=[user])
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.WORKSPACE_MEMBER_SET,
        target=membership,
        before=before,
        after={"role": role, "workspace": workspace.name, "user": user.email},
    )
    return membership


@transaction.atomic
def workspace_update(*, workspace: Workspace, actor: User, name: str, description: str) -> Workspace:
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the workspace a name."})
    clash = Workspace.objects.live().filter(organization_id=workspace.organization_id, name__iexact=name)
    if clash.exclude(pk=workspace.pk).exists():
        raise ValidationError({"name": "A workspace with this name already exists in the organization."})
    before = {"name": workspace.name, "description": workspace.description}
    workspace.name, workspace.description = name, description.strip()
    workspace.save(update_fields=["name", "description"])
    after = {"name": workspace.name, "description": workspace.description}
    if after != before:
        audit_record(
            organization=workspace.organization,
            actor=actor,
            action=AuditAction.WORKSPACE_UPDATED,
            target=workspace,
            before=before,
            after=after,
        )
    return workspace


@transaction.atomic
def workspace_member_remove(*, workspace: Workspace, user: User, actor: User) -> None:
    membership = WorkspaceMembership.objects.filter(workspace=workspace, user=user).first()
    if membership is None:
        raise ValidationError(f"{user.email} is not assigned to {workspace.name}.")
    before = {"role": membership.role, "workspace": workspace.name, "user": user.email}
    membership.delete()
    permissions_apply(organization=workspace.organization, users=[user])
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.WORKSPACE_MEMBER_REMOVED,
        target=workspace,
        before=before,
        after={},
    )


@transaction.atomic
def member_workspaces_set(*, membership: Membership, assignments: dict[Workspace, str], actor: User) -> None:
    """Replace which workspaces an org Member is assigned to, and with which role, in one step."""
    membership = Membership.objects.select_for_update().select_related("user", "organization").get(pk=membership.pk)
    organization = membership.organization
    actor_is_admin = Membership.objects.active().filter(
        organization=organization, user=actor, role__gte=OrganizationRole.ADMIN
    )
    if not actor_is_admin.exists():
        raise ValidationError("Only the Owner and Admins can change a member's workspaces.")
    if membership.status != MembershipStatus.ACTIVE:
        raise ValidationError(f"{membership.user.email} is no longer a member.")
    if membership.is_admin:
        raise ValidationError("Owners and Admins can open every workspace; there is nothing to assign.")
    if any(role not in WorkspaceRole.values for role in assignments.values()):
        raise ValidationError("Choose admin, member or viewer.")
    live = {ws.pk: ws for ws in Workspace.objects.live().filter(organization=organization)}
    if any(ws.pk not in live for ws in assignments):
        raise ValidationError("Pick workspaces of this organization.")
    existing = {
        wm.workspace_id: wm
        for wm in WorkspaceMembership.objects.filter(workspace_id__in=live, user_id=membership.user_id)
    }
    before = {live[ws_id].name: wm.role for ws_id, wm in existing.items()}
    wanted = {ws.pk: role for ws, role in assignments.items()}
    WorkspaceMembership.objects.filter(
        user_id=membership.user_id, workspace_id__in=set(existing) - set(wanted)
    ).delete()
    for ws_id, role in wanted.items():
        current = existing.get(ws_id)
        if current is None:
            WorkspaceMembership.objects.create(workspace_id=ws_id, user_id=membership.user_id, role=role)
        elif current.role != role:
            current.role = role
            current.save(update_fields=["role"])
    permissions_apply(organization=organization, users=[membership.user])
    after = {live[ws_id].name: role for ws_id, role in wanted.items()}
    if after != before:
        audit_record(
            organization=organization,
            actor=actor,
            action=AuditAction.MEMBERSHIP_WORKSPACES_CHANGED,
            target=membership,
            before=before,
            after=after,
        )
