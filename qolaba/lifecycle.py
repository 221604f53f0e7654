"""The writes that span the apps: opening and closing organizations and workspaces.

An organization is created with its Owner, its credit accounts and its Primary Workspace, all or nothing; a
workspace is created with its credit account; archiving a workspace returns its credits to the Primary Workspace.
Each of these touches `orgs`, `workspaces` and `billing` in one transaction, so they live above all three (see the
layers in docs/architecture.md) instead of having a lower app import a higher one.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now

from billing.ledger import account_open_for_workspace, accounts_open_for_organization
from billing.services import workspace_credits_return
from orgs.audit import audit_record
from orgs.models import AuditAction, Membership, Organization, OrganizationRole, User
from orgs.services import organization_timezone_validate
from qolaba.outbox.services import outbox_enqueue
from qolaba.slugs import unique_slug
from workspaces.models import Workspace
from workspaces.roles import permissions_apply
from workspaces.selectors import organization_admins, workspace_restore_deadline, workspace_users_with_access

PRIMARY_WORKSPACE_NAME = "Primary Workspace"


# --- organizations -------------------------------------------------------------------------------------------


@transaction.atomic
def organization_create(
    *, name: str, owner: User, timezone: str = "UTC", primary_workspace_name: str = PRIMARY_WORKSPACE_NAME
) -> Organization:
    """Create an organization with its Owner membership and Primary Workspace, all or nothing."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the organization a name."})
    organization_timezone_validate(timezone)
    organization = Organization.objects.create(
        name=name,
        slug=unique_slug(name, queryset=Organization.objects.all(), fallback="org"),
        timezone=timezone,
        created_by=owner,
    )
    owner_membership = Membership.objects.create(user=owner, organization=organization, role=OrganizationRole.OWNER)
    audit_record(
        organization=organization,
        actor=owner,
        action=AuditAction.ORGANIZATION_CREATED,
        target=organization,
        after={"name": organization.name, "slug": organization.slug, "timezone": timezone},
    )
    audit_record(
        organization=organization,
        actor=owner,
        action=AuditAction.MEMBERSHIP_ADDED,
        target=owner_membership,
        after={"user": owner.email, "role": owner_membership.get_role_display()},
    )
    accounts_open_for_organization(organization=organization)
    workspace_create(organization=organization, name=primary_workspace_name, created_by=owner, is_primary=True)
    outbox_enqueue(task="orgs.tasks.organization_welcome_email_send", args=[organization.pk])
    return organization


@transaction.atomic
def organization_delete(*, organization: Organization, actor: User, confirm_name: str) -> Organization:
    """Soft delete: hidden from everyone at once, purged after the retention window unless staff restore it."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    owner = Membership.objects.active().filter(organization=organization, role=OrganizationRole.OWNER).first()
    if owner is None or owner.user_id != actor.pk:
        raise ValidationError("Only the Owner can delete the organization.")
    if confirm_name.strip() != organization.name:
        raise ValidationError({"confirm_name": "Type the organization's name exactly to confirm."})
    if organization.deleted_at is not None:
        raise ValidationError("The organization is already deleted.")
    organization.deleted_at = now()
    organization.save(update_fields=["deleted_at"])
    permissions_apply(organization=organization)
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.ORGANIZATION_DELETED,
        target=organization,
        before={},
        after={},
    )
    return organization


@transaction.atomic
def organization_restore(*, organization: Organization, actor: User | None) -> Organization:
    """Staff undo a deletion within the retention window; everyone's access comes back as it was."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.deleted_at is None:
        raise ValidationError("The organization is not deleted.")
    organization.deleted_at = None
    organization.save(update_fields=["deleted_at"])
    permissions_apply(organization=organization)
    audit_record(organization=organization, actor=actor, action=AuditAction.ORGANIZATION_RESTORED, target=organization)
    return organization


# --- workspaces ----------------------------------------------------------------------------------------------


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
    account_open_for_workspace(workspace=workspace)
    permissions_apply(organization=organization, users=organization_admins(organization))
    audit_record(
        organization=organization,
        actor=created_by,
        action=AuditAction.WORKSPACE_CREATED,
        target=workspace,
        after={"name": workspace.name, "is_primary": is_primary},
    )
    return workspace


@transaction.atomic
def workspace_archive(*, workspace: Workspace, actor: User) -> Workspace:
    """Delete = archive: access is revoked and usage stops; history stays; restorable within the retention window."""
    workspace = Workspace.objects.select_for_update().select_related("organization").get(pk=workspace.pk)
    if workspace.is_primary:
        raise ValidationError("The Primary Workspace cannot be deleted.")
    if workspace.archived_at is not None:
        raise ValidationError("This workspace is already deleted.")
    workspace.archived_at = now()
    workspace.save(update_fields=["archived_at"])
    returned = workspace_credits_return(workspace=workspace, actor=actor)
    permissions_apply(organization=workspace.organization, users=workspace_users_with_access(workspace))
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.WORKSPACE_ARCHIVED,
        target=workspace,
        before={"archived": False},
        after={"archived": True, "credits_returned_to_primary": returned.amount if returned else 0},
    )
    return workspace


@transaction.atomic
def workspace_restore(*, workspace: Workspace, actor: User) -> Workspace:
    workspace = Workspace.objects.select_for_update().select_related("organization").get(pk=workspace.pk)
    deadline = workspace_restore_deadline(workspace)
    if deadline is None:
        raise ValidationError("This workspace is not deleted.")
    if deadline <= now():
        raise ValidationError("This workspace was deleted too long ago to be restored.")
    if Workspace.objects.live().filter(organization=workspace.organization, name__iexact=workspace.name).exists():
        raise ValidationError(f"Another workspace is now called “{workspace.name}”; rename it first.")
    workspace.archived_at = None
    workspace.save(update_fields=["archived_at"])
    permissions_apply(organization=workspace.organization, users=workspace_users_with_access(workspace))
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.WORKSPACE_RESTORED,
        target=workspace,
        before={"archived": True},
        after={"archived": False},
    )
    return workspace
