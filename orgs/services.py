from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.timezone import now as dj_now

from orgs.audit import audit_record
from orgs.images import logo_process
from orgs.models import (
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    Notification,
    Organization,
    OrganizationRole,
    User,
    timezone_choices,
)
from orgs.roles import permissions_apply
from qolaba.slugs import unique_slug

if TYPE_CHECKING:
    from workspaces.models import Workspace

PRIMARY_WORKSPACE_NAME = "Primary Workspace"


def _validate_timezone(tz: str) -> None:
    if tz not in dict(timezone_choices()):
        raise ValidationError({"timezone": f"“{tz}” is not a known time zone."})


@transaction.atomic
def organization_create(
    *, name: str, owner: User, timezone: str = "UTC", primary_workspace_name: str = PRIMARY_WORKSPACE_NAME
) -> Organization:
    """Create an organization with its Owner membership and Primary Workspace, all or nothing."""
    from billing.ledger import accounts_open_for_organization
    from orgs.tasks import organization_welcome_email_send
    from workspaces.services import workspace_create

    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the organization a name."})
    _validate_timezone(timezone)
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
        action="organization.created",
        target=organization,
        after={"name": organization.name, "slug": organization.slug, "timezone": timezone},
    )
    audit_record(
        organization=organization,
        actor=owner,
        action="membership.added",
        target=owner_membership,
        after={"user": owner.email, "role": owner_membership.get_role_display()},
    )
    accounts_open_for_organization(organization=organization)
    workspace_create(organization=organization, name=primary_workspace_name, created_by=owner, is_primary=True)
    transaction.on_commit(partial(organization_welcome_email_send.delay, organization.pk))
    return organization


@transaction.atomic
def membership_add(*, organization: Organization, user: User, role: OrganizationRole, actor: User | None) -> Membership:
    """Make `user` an active member with `role` (Admin or Member: an organization has one Owner)."""
    if role == OrganizationRole.OWNER:
        raise ValidationError({"role": "An organization has exactly one Owner; transfer ownership instead."})
    membership, created = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if not created:
        if membership.status == MembershipStatus.ACTIVE:
            raise ValidationError(f"{user.email} is already a member of {organization.name}.")
        membership.status = MembershipStatus.ACTIVE
        membership.role = role
        membership.removed_at = None
        membership.save(update_fields=["status", "role", "removed_at"])
    permissions_apply(organization=organization, users=[user])
    audit_record(
        organization=organization,
        actor=actor,
        action="membership.added",
        target=membership,
        after={"user": user.email, "role": membership.get_role_display()},
    )
    return membership


def organization_welcome_email(*, organization: Organization) -> int:
    """Tell the Owner their organization is ready. Returns the number of emails sent."""
    owner_membership = (
        Membership.objects.select_related("user")
        .filter(organization=organization, role=OrganizationRole.OWNER, status=MembershipStatus.ACTIVE)
        .first()
    )
    if owner_membership is None or organization.is_deleted:
        return 0
    context = {
        "organization": organization,
        "owner": owner_membership.user,
        "url": settings.SITE_URL + reverse("orgs:open", kwargs={"org_slug": organization.slug}),
    }
    return send_mail(
        subject=f"[Qolaba] {organization.name} is ready",
        message=render_to_string("orgs/email/welcome.txt", context),
        from_email=None,
        recipient_list=[owner_membership.user.email],
    )


# --- members -------------------------------------------------------------------------------------------------


def _actor_membership(*, organization: Organization, actor: User) -> Membership:
    membership = Membership.objects.active().filter(organization=organization, user=actor).first()
    if membership is None or not membership.is_admin:
        raise ValidationError("Only the Owner and Admins can manage members.")
    return membership


def _check_can_manage(*, actor_membership: Membership, target: Membership) -> None:
    if target.user_id == actor_membership.user_id:
        raise ValidationError("You cannot change your own membership; ask another Admin or the Owner.")
    if target.role == OrganizationRole.OWNER:
        raise ValidationError("The Owner's membership cannot be changed; the Owner can transfer ownership.")
    if target.status != MembershipStatus.ACTIVE:
        raise ValidationError(f"{target.user.email} is no longer a member.")
    if target.role > actor_membership.role:
        raise ValidationError("You cannot change a member whose role is above yours.")


@transaction.atomic
def membership_role_change(*, membership: Membership, role: int, actor: User) -> Membership:
    """Admin ⇄ Member. Nobody changes their own role, touches the Owner, or raises anyone above themselves."""
    membership = Membership.objects.select_for_update().select_related("user", "organization").get(pk=membership.pk)
    actor_membership = _actor_membership(organization=membership.organization, actor=actor)
    _check_can_manage(actor_membership=actor_membership, target=membership)
    if role not in (OrganizationRole.ADMIN, OrganizationRole.MEMBER):
        raise ValidationError("Choose Admin or Member; ownership moves only by a transfer.")
    if role > actor_membership.role:
        raise ValidationError("You cannot give a role above your own.")
    if role == membership.role:
        return membership
    before = {"role": membership.get_role_display()}
    membership.role = role
    membership.save(update_fields=["role"])
    permissions_apply(organization=membership.organization, users=[membership.user])
    audit_record(
        organization=membership.organization,
        actor=actor,
        action="membership.role_changed",
        target=membership,
        before=before,
        after={"role": membership.get_role_display()},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User) -> Membership:
    """Access ends at once (permission rows go); history and usage stay attributed to the person."""
    from workspaces.models import WorkspaceMembership

    membership = Membership.objects.select_for_update().select_related("user", "organization").get(pk=membership.pk)
    actor_membership = _actor_membership(organization=membership.organization, actor=actor)
    _check_can_manage(actor_membership=actor_membership, target=membership)
    assignments = WorkspaceMembership.objects.filter(
        workspace__organization=membership.organization, user=membership.user
    ).select_related("workspace")
    before = {
        "role": membership.get_role_display(),
        "workspaces": {wm.workspace.name: wm.role for wm in assignments},
    }
    assignments.delete()
    membership.status = MembershipStatus.REMOVED
    membership.removed_at = dj_now()
    membership.save(update_fields=["status", "removed_at"])
    permissions_apply(organization=membership.organization, users=[membership.user])
    audit_record(
        organization=membership.organization,
        actor=actor,
        action="membership.removed",
        target=membership,
        before=before,
        after={"status": "removed"},
    )
    return membership


@transaction.atomic
def organization_transfer_ownership(*, organization: Organization, new_owner: Membership, actor: User) -> Membership:
    """The Owner hands the organization to an existing member and becomes an Admin."""
    memberships = {
        m.pk: m
        for m in Membership.objects.select_for_update()
        .select_related("user")
        .filter(organization=organization, status=MembershipStatus.ACTIVE)
    }
    current = next((m for m in memberships.values() if m.role == OrganizationRole.OWNER), None)
    if current is None or current.user_id != actor.pk:
        raise ValidationError("Only the Owner can transfer ownership.")
    target = memberships.get(new_owner.pk)
    if target is None:
        raise ValidationError("Ownership can only go to an active member of the organization.")
    if target.pk == current.pk:
        raise ValidationError("You are already the Owner.")
    # Demote first: the one-owner index must hold after every statement.
    current.role = OrganizationRole.ADMIN
    current.save(update_fields=["role"])
    target.role = OrganizationRole.OWNER
    target.save(update_fields=["role"])
    permissions_apply(organization=organization, users=[current.user, target.user])
    audit_record(
        organization=organization,
        actor=actor,
        action="organization.ownership_transferred",
        target=organization,
        before={"owner": current.user.email},
        after={"owner": target.user.email},
    )
    return target


# --- invitations ---------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, _token_hash(token)


def _send_invitation(invitation: Invitation, token: str) -> None:
    from orgs.tasks import invitation_email_send

    transaction.on_commit(partial(invitation_email_send.delay, invitation.pk, token))


def parse_email_list(raw: str) -> tuple[list[str], list[str]]:
    """Split a comma/newline separated list: (valid lowercase addresses in order, problems found)."""
    problems: list[str] = []
    seen: set[str] = set()
    emails: list[str] = []
    for item in re.split(r"[,;\s]+", raw):
        candidate = item.strip().strip("<>").lower()
        if not candidate:
            continue
        try:
            validate_email(candidate)
        except ValidationError:
            problems.append(f"“{candidate}” is not a valid email address.")
            continue
        if candidate in seen:
            problems.append(f"{candidate} is listed more than once.")
            continue
        seen.add(candidate)
        emails.append(candidate)
    return emails, problems


@transaction.atomic
def invitations_create(
    *,
    organization: Organization,
    emails: Sequence[str],
    role: int,
    workspaces: Sequence[Workspace],
    workspace_role: str,
    actor: User,
) -> list[Invitation]:
    """Invite each address (all or nothing). Every problem is reported; nothing is silently dropped."""
    from workspaces.models import Workspace, WorkspaceRole

    actor_membership = _actor_membership(organization=organization, actor=actor)
    if role not in (OrganizationRole.ADMIN, OrganizationRole.MEMBER):
        raise ValidationError({"role": "Invite as Admin or Member."})
    if role > actor_membership.role:
        raise ValidationError({"role": "You cannot invite someone above your own role."})
    if workspace_role not in WorkspaceRole.values:
        raise ValidationError({"workspace_role": "Choose admin, member or viewer."})
    if not workspaces:
        raise ValidationError({"workspaces": "Pick at least one workspace."})
    live_ids = set(Workspace.objects.live().filter(organization=organization).values_list("pk", flat=True))
    if any(ws.pk not in live_ids for ws in workspaces):
        raise ValidationError({"workspaces": "Pick workspaces of this organization."})
    lowered, problems = parse_email_list("\n".join(emails))
    if not lowered and not problems:
        raise ValidationError({"emails": "Enter at least one email address."})
    members = set(
        Membership.objects.active()
        .filter(organization=organization, user__email__in=lowered)
        .values_list("user__email", flat=True)
    )
    pending = set(
        Invitation.objects.filter(organization=organization, status=InvitationStatus.PENDING, email__in=lowered)
        .filter(expires_at__gt=dj_now())
        .values_list("email", flat=True)
    )
    for email in lowered:
        if email in members:
            problems.append(f"{email} is already a member of {organization.name}.")
        elif email in pending:
            problems.append(f"{email} already has a pending invitation (resend it from the Members tab).")
    if problems:
        raise ValidationError({"emails": problems})
    # Expired pending invitations of the same addresses make way for the new ones.
    Invitation.objects.filter(organization=organization, status=InvitationStatus.PENDING, email__in=lowered).update(
        status=InvitationStatus.REVOKED
    )
    expires_at = dj_now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitations = []
    for email in lowered:
        token, token_hash = _new_token()
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            workspace_role=workspace_role,
            token_hash=token_hash,
            invited_by=actor,
            expires_at=expires_at,
        )
        invitation.workspaces.set(workspaces)
        audit_record(
            organization=organization,
            actor=actor,
            action="invitation.created",
            target=invitation,
            after={
                "email": email,
                "role": OrganizationRole(role).label,
                "workspaces": sorted(ws.name for ws in workspaces),
                "workspace_role": workspace_role,
            },
        )
        _send_invitation(invitation, token)
        invitations.append(invitation)
    return invitations


def _pending_for_update(invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
    if invitation.status != InvitationStatus.PENDING:
        raise ValidationError(f"This invitation was already {invitation.get_status_display().lower()}.")
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User) -> Invitation:
    """A fresh link (the old one stops working) and a fresh expiry."""
    invitation = _pending_for_update(invitation)
    _actor_membership(organization=invitation.organization, actor=actor)
    token, invitation.token_hash = _new_token()
    invitation.sent_at = dj_now()
    invitation.expires_at = invitation.sent_at + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    audit_record(
        organization=invitation.organization,
        actor=actor,
        action="invitation.resent",
        target=invitation,
        after={"email": invitation.email, "expires_at": invitation.expires_at.isoformat()},
    )
    _send_invitation(invitation, token)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User, by_staff: bool = False) -> Invitation:
    """Revoke a pending invitation: by an Owner/Admin of its organization, or by staff from the admin."""
    invitation = _pending_for_update(invitation)
    if not (by_staff and actor.is_staff):
        _actor_membership(organization=invitation.organization, actor=actor)
    invitation.status = InvitationStatus.REVOKED
    invitation.save(update_fields=["status"])
    audit_record(
        organization=invitation.organization,
        actor=actor,
        action="invitation.revoked",
        target=invitation,
        before={"status": "pending"},
        after={"status": "revoked", "email": invitation.email},
    )
    return invitation


def invitation_for_token(token: str) -> Invitation | None:
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=_token_hash(token), organization__deleted_at__isnull=True)
        .first()
    )


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """The invitee, signed in with exactly the invited address, joins with the chosen role and workspaces."""
    from workspaces.models import WorkspaceMembership

    found = invitation_for_token(token)
    if found is None:
        raise ValidationError("This invitation link is not valid.")
    invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=found.pk)
    if invitation.status == InvitationStatus.ACCEPTED:
        raise ValidationError("This invitation has already been used.")
    if invitation.status == InvitationStatus.REVOKED:
        raise ValidationError("This invitation was revoked. Ask for a new one.")
    if invitation.is_expired:
        raise ValidationError("This invitation has expired. Ask for a new one.")
    if user.email.lower() != invitation.email.lower():
        raise ValidationError(
            f"This invitation is for {invitation.email}, but you are signed in as {user.email}. "
            f"Sign out and sign in (or sign up) as {invitation.email} to accept it."
        )
    organization = invitation.organization
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is not None and membership.status == MembershipStatus.ACTIVE:
        raise ValidationError(f"You are already a member of {organization.name}.")
    if membership is None:
        membership = Membership.objects.create(organization=organization, user=user, role=invitation.role)
    else:
        membership.role, membership.status, membership.removed_at = invitation.role, MembershipStatus.ACTIVE, None
        membership.joined_at = dj_now()
        membership.save(update_fields=["role", "status", "removed_at", "joined_at"])
    for workspace in invitation.workspaces.filter(archived_at__isnull=True):
        WorkspaceMembership.objects.update_or_create(
            workspace=workspace, user=user, defaults={"role": invitation.workspace_role}
        )
    invitation.status = InvitationStatus.ACCEPTED
    invitation.accepted_at = dj_now()
    invitation.accepted_by = user
    invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
    permissions_apply(organization=organization, users=[user])
    audit_record(
        organization=organization,
        actor=user,
        action="invitation.accepted",
        target=membership,
        after={"email": user.email, "role": membership.get_role_display()},
    )
    return membership


def invitation_email(*, invitation: Invitation, token: str) -> int:
    context = {
        "invitation": invitation,
        "url": settings.SITE_URL + reverse("orgs:invitation", kwargs={"token": token}),
        "ttl_days": settings.INVITATION_TTL_DAYS,
    }
    return send_mail(
        subject=f"[Qolaba] You're invited to {invitation.organization.name}",
        message=render_to_string("orgs/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


# --- organization profile and lifecycle ----------------------------------------------------------------------


@transaction.atomic
def organization_update(
    *,
    organization: Organization,
    actor: User,
    name: str,
    timezone: str,
    logo: UploadedFile | None = None,
    remove_logo: bool = False,
    alert_thresholds: list[int] | None = None,
) -> Organization:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the organization a name."})
    _validate_timezone(timezone)
    processed = logo_process(logo) if logo is not None else None
    old_logo = organization.logo.name if organization.logo else ""
    if alert_thresholds is not None and (
        not alert_thresholds or any(not isinstance(t, int) or not 1 <= t <= 100 for t in alert_thresholds)
    ):
        raise ValidationError({"alert_thresholds": "Each threshold is a percentage from 1 to 100."})
    before = {
        "name": organization.name,
        "timezone": organization.timezone,
        "logo": old_logo,
        "alert_thresholds": organization.alert_thresholds,
    }
    organization.name, organization.timezone = name, timezone
    if alert_thresholds is not None:
        organization.alert_thresholds = sorted(set(alert_thresholds))
    if processed is not None:
        organization.logo.save(f"{organization.slug}.png", processed, save=False)
    elif remove_logo:
        organization.logo = None
    organization.save(update_fields=["name", "timezone", "logo", "alert_thresholds"])
    new_logo = organization.logo.name if organization.logo else ""
    if old_logo and old_logo != new_logo:
        storage = organization.logo.storage
        transaction.on_commit(partial(storage.delete, old_logo))
    after = {
        "name": organization.name,
        "timezone": organization.timezone,
        "logo": new_logo,
        "alert_thresholds": organization.alert_thresholds,
    }
    if after != before:
        audit_record(
            organization=organization,
            actor=actor,
            action="organization.updated",
            target=organization,
            before=before,
            after=after,
        )
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
    organization.deleted_at = dj_now()
    organization.save(update_fields=["deleted_at"])
    permissions_apply(organization=organization)
    audit_record(
        organization=organization, actor=actor, action="organization.deleted", target=organization, before={}, after={}
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
    audit_record(organization=organization, actor=actor, action="organization.restored", target=organization)
    return organization


def organizations_purge_deleted(*, now: datetime | None = None) -> int:
    """Delete for good the organizations deleted longer ago than the retention window. Returns how many."""
    cutoff = (now or dj_now()) - timedelta(days=settings.ORGANIZATION_RETENTION_DAYS)
    purged = 0
    for organization in Organization.objects.filter(deleted_at__lt=cutoff).only("pk", "logo"):
        with transaction.atomic():
            if organization.logo:
                organization.logo.delete(save=False)
            organization.delete()
            purged += 1
    return purged


def notifications_read(*, user: User, organization: Organization) -> int:
    """Mark every unread notification of `user` in `organization` as read. Returns how many."""
    return Notification.objects.unread().filter(user=user, organization=organization).update(read_at=dj_now())
