from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from billing.ledger import account_open_for_workspace
from billing.services import workspace_credits_return
from orgs.audit import audit_record
from orgs.models import Membership, MembershipStatus, Organization, OrganizationRole, User
from orgs.roles import permissions_apply
from qolaba.slugs import unique_slug
from workspaces.models import API_KEY_PREFIX, ApiKey, HistoryItem, Workspace, WorkspaceMembership, WorkspaceRole


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
    account_open_for_workspace(workspace=workspace)
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
        action="workspace.member_set",
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
            action="workspace.updated",
            target=workspace,
            before=before,
            after=after,
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
    permissions_apply(organization=workspace.organization, users=_users_with_access(workspace))
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action="workspace.archived",
        target=workspace,
        before={"archived": False},
        after={"archived": True, "credits_returned_to_primary": returned.amount if returned else 0},
    )
    return workspace


def workspace_restore_deadline(workspace: Workspace) -> datetime | None:
    if workspace.archived_at is None:
        return None
    return workspace.archived_at + timedelta(days=settings.ORGANIZATION_RETENTION_DAYS)


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
    permissions_apply(organization=workspace.organization, users=_users_with_access(workspace))
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action="workspace.restored",
        target=workspace,
        before={"archived": True},
        after={"archived": False},
    )
    return workspace


@transaction.atomic
def workspace_membership_remove(*, workspace: Workspace, user: User, actor: User) -> None:
    membership = WorkspaceMembership.objects.filter(workspace=workspace, user=user).first()
    if membership is None:
        raise ValidationError(f"{user.email} is not assigned to {workspace.name}.")
    before = {"role": membership.role, "workspace": workspace.name, "user": user.email}
    membership.delete()
    permissions_apply(organization=workspace.organization, users=[user])
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action="workspace.member_removed",
        target=workspace,
        before=before,
        after={},
    )


def _users_with_access(workspace: Workspace) -> list[User]:
    """Org Owners/Admins plus the members assigned to the workspace: whose rows change with it."""
    return list(
        User.objects.filter(
            Q(memberships__organization_id=workspace.organization_id, memberships__role__gte=OrganizationRole.ADMIN)
            | Q(workspace_memberships__workspace=workspace)
        ).distinct()
    )


@transaction.atomic
def membership_workspaces_set(*, membership: Membership, assignments: dict[Workspace, str], actor: User) -> None:
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
            action="membership.workspaces_changed",
            target=membership,
            before=before,
            after=after,
        )


# --- API keys ------------------------------------------------------------------------------------------------


def _api_key_secret_hash(secret: str) -> str:
    # Keys carry 240 bits of randomness, so a fast hash is as safe as a slow one and keeps every API call cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_parse(raw: str) -> tuple[str, str] | None:
    """Split `qlb_<prefix>_<secret>` into (prefix, hash of the whole key); None when it is not such a key."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 8 or not 30 <= len(parts[2]) <= 64:
        return None
    if not all(part.isascii() and part.replace("-", "").replace("_", "").isalnum() for part in parts[1:]):
        return None
    return parts[1], _api_key_secret_hash(raw)


@transaction.atomic
def api_key_create(*, workspace: Workspace, actor: User, name: str) -> tuple[ApiKey, str]:
    """A new key for the metering API. Returns the key and its secret, which is never shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the key after the service that will use it."})
    if workspace.is_archived:
        raise ValidationError("A deleted workspace cannot get new API keys.")
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(30)}"
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name[:80],
        prefix=prefix,
        secret_hash=_api_key_secret_hash(secret),
        created_by=actor,
    )
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action="api_key.created",
        target=api_key,
        after={"name": api_key.name, "prefix": api_key.display_prefix, "workspace": workspace.name},
    )
    return api_key, secret


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User) -> ApiKey:
    """Revoke at once: the next request with this key is refused. Revoking twice changes nothing."""
    locked = ApiKey.objects.select_for_update().select_related("workspace__organization").get(pk=api_key.pk)
    if locked.is_revoked:
        return locked
    locked.revoked_at = now()
    locked.revoked_by = actor
    locked.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        organization=locked.workspace.organization,
        actor=actor,
        action="api_key.revoked",
        target=locked,
        before={"name": locked.name, "prefix": locked.display_prefix, "workspace": locked.workspace.name},
    )
    return locked


API_KEY_LAST_USED_PRECISION = timedelta(minutes=1)


def api_key_mark_used(*, api_key_id: int, last_used_at: datetime | None) -> datetime | None:
    """Record that the key was used, at most once a minute (a write on every call would cost the hot path).
    Returns the new time, or None when the recorded one is recent enough."""
    at = now()
    if last_used_at is not None and at - last_used_at < API_KEY_LAST_USED_PRECISION:
        return None
    ApiKey.objects.filter(pk=api_key_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=at - API_KEY_LAST_USED_PRECISION)
    ).update(last_used_at=at)
    return at


# --- history -------------------------------------------------------------------------------------------------

HISTORY_PROMPT_MAX = 100_000
HISTORY_OUTPUT_MAX = 500_000


def history_item_create(
    *,
    workspace: Workspace,
    author: User,
    tool: str,
    model: str,
    credits: int,
    prompt: str = "",
    output_text: str = "",
    metadata: dict[str, Any] | None = None,
    media: File[Any] | None = None,
    media_content_type: str = "",
    usage_event_id: int | None = None,
    created_at: datetime | None = None,
) -> HistoryItem:
    """Record a generation's content in its workspace (called inside the charge's transaction)."""
    item = HistoryItem(
        organization_id=workspace.organization_id,
        workspace=workspace,
        author=author,
        tool=tool,
        model=model,
        credits=credits,
        prompt=prompt[:HISTORY_PROMPT_MAX],
        output_text=output_text[:HISTORY_OUTPUT_MAX],
        metadata=metadata or {},
        media_content_type=media_content_type if media is not None else "",
        usage_event_id=usage_event_id,
        created_at=created_at or now(),
    )
    if media is not None:
        item.media.save(media.name or "media.bin", media, save=False)
    item.save(force_insert=True)
    return item


def history_item_can_delete(*, item: HistoryItem, user: User, workspace_permissions: frozenset[str]) -> bool:
    """The author, or an admin of the workspace (org Owners and Admins are admins of every workspace)."""
    return item.author_id == user.pk or "manage_workspace" in workspace_permissions


@transaction.atomic
def history_item_delete(*, item: HistoryItem, actor: User) -> HistoryItem:
    """Soft delete: hidden from History at once; the usage event and the credits it cost stay for reports. Audited:
    the workspace's owners can see who removed a generation's content (once; deleting again changes nothing)."""
    locked = (
        HistoryItem.objects.select_for_update(of=("self",))
        .select_related("workspace__organization", "author")
        .get(pk=item.pk)
    )
    if locked.is_deleted:
        return locked
    locked.deleted_at = now()
    locked.deleted_by = actor
    locked.save(update_fields=["deleted_at", "deleted_by"])
    audit_record(
        organization=locked.workspace.organization,
        actor=actor,
        action="history_item.deleted",
        target=locked,
        before={
            "workspace": locked.workspace.name,
            "author": locked.author.email if locked.author is not None else "",
            "tool": locked.tool,
            "model": locked.model,
            "created_at": locked.created_at.isoformat(),
        },
    )
    return locked
