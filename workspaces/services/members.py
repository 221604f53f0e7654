"""Who belongs to an organization, with which role, and how they join: invitations, role changes, removal and
the transfer of ownership.

These live in `workspaces`, above `orgs`, because every one of them decides access to workspaces as well: each
re-applies the member's permission rows (`workspaces.roles`) in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now as dj_now

from orgs.audit import audit_record
from orgs.models import (
    AuditAction,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    Organization,
    OrganizationRole,
    User,
)
from orgs.selectors import invitation_for_token
from orgs.services import (
    invitation_email_enqueue,
    invitation_quota_require,
    invitation_token_new,
    membership_require_admin,
    parse_email_list,
)
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole
from workspaces.roles import permissions_apply
from workspaces.services.workspaces import workspace_member_set


def _membership_activate(*, organization: Organization, user: User, role: int) -> Membership:
    """Join `user` to the organization with `role`: a new membership, or a removed one made active again (a new
    `joined_at`: "active since" counts from the return). An active member is refused."""
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    if membership is None:
        return Membership.objects.create(organization=organization, user=user, role=role)
    if membership.status == MembershipStatus.ACTIVE:
        raise ValidationError(f"{user.email} is already a member of {organization.name}.")
    membership.role, membership.status, membership.removed_at = role, MembershipStatus.ACTIVE, None
    membership.joined_at = dj_now()
    membership.save(update_fields=["role", "status", "removed_at", "joined_at"])
    return membership


@transaction.atomic
def member_add(*, organization: Organization, user: User, role: OrganizationRole, actor: User | None) -> Membership:
    """Make `user` an active member with `role` (Admin or Member: an organization has one Owner)."""
    if role == OrganizationRole.OWNER:
        raise ValidationError({"role": "An organization has exactly one Owner; transfer ownership instead."})
    membership = _membership_activate(organization=organization, user=user, role=role)
    permissions_apply(organization=organization, users=[user])
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.MEMBERSHIP_ADDED,
        target=membership,
        after={"user": user.email, "role": membership.get_role_display()},
    )
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
def member_role_change(*, membership: Membership, role: int, actor: User) -> Membership:
    """Admin ⇄ Member. Nobody changes their own role, touches the Owner, or raises anyone above themselves."""
    membership = Membership.objects.select_for_update().select_related("user", "organization").get(pk=membership.pk)
    actor_membership = membership_require_admin(organization=membership.organization, actor=actor)
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
        action=AuditAction.MEMBERSHIP_ROLE_CHANGED,
        target=membership,
        before=before,
        after={"role": membership.get_role_display()},
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: User) -> Membership:
    """Access ends at once (permission rows go); history and usage stay attributed to the person."""
    membership = Membership.objects.select_for_update().select_related("user", "organization").get(pk=membership.pk)
    actor_membership = membership_require_admin(organization=membership.organization, actor=actor)
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
        action=AuditAction.MEMBERSHIP_REMOVED,
        target=membership,
        before=before,
        after={"status": "removed"},
    )
    return membership


@transaction.atomic
def ownership_transfer(*, organization: Organization, new_owner: Membership, actor: User) -> Membership:
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
        action=AuditAction.ORGANIZATION_OWNERSHIP_TRANSFERRED,
        target=organization,
        before={"owner": current.user.email},
        after={"owner": target.user.email},
    )
    return target


# --- invitations ---------------------------------------------------------------------------------------------


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
    actor_membership = membership_require_admin(organization=organization, actor=actor)
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
    invitation_quota_require(organization=organization, count=len(lowered))
    # Expired pending invitations of the same addresses make way for the new ones.
    Invitation.objects.filter(organization=organization, status=InvitationStatus.PENDING, email__in=lowered).update(
        status=InvitationStatus.REVOKED
    )
    expires_at = dj_now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitations = []
    for email in lowered:
        _, token_hash = invitation_token_new()  # the emailed link gets its own token when it is sent
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
            action=AuditAction.INVITATION_CREATED,
            target=invitation,
            after={
                "email": email,
                "role": OrganizationRole(role).label,
                "workspaces": sorted(ws.name for ws in workspaces),
                "workspace_role": workspace_role,
            },
        )
        invitation_email_enqueue(invitation)
        invitations.append(invitation)
    return invitations


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """The invitee, signed in with exactly the invited address, joins with the chosen role and workspaces."""
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
    if Membership.objects.active().filter(organization=organization, user=user).exists():
        raise ValidationError(f"You are already a member of {organization.name}.")
    membership = _membership_activate(organization=organization, user=user, role=invitation.role)
    for workspace in invitation.workspaces.filter(archived_at__isnull=True):
        workspace_member_set(workspace=workspace, user=user, role=invitation.workspace_role, actor=user)
    invitation.status = InvitationStatus.ACCEPTED
    invitation.accepted_at = dj_now()
    invitation.accepted_by = user
    invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
    permissions_apply(organization=organization, users=[user])
    audit_record(
        organization=organization,
        actor=user,
        action=AuditAction.INVITATION_ACCEPTED,
        target=membership,
        after={"email": user.email, "role": membership.get_role_display()},
    )
    return membership
