"""Writes of the orgs app: the organization's profile, invitation tokens and emails (resend, revoke), the purge of
organizations deleted past the retention window, notifications read, organization admin keys (create, revoke).

What also changes access to workspaces (memberships, invitations sent and accepted, ownership) lives in
`workspaces.services.members`; creating and deleting organizations in `qolaba.lifecycle`.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from functools import partial

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.timezone import now as dj_now

from orgs.audit import audit_record
from orgs.images import logo_process
from orgs.models import (
    ADMIN_KEY_SCHEME,
    AdminKey,
    AuditAction,
    AuditEvent,
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
from orgs.selectors import invitation_token_hash
from qolaba.keys import key_generate, key_secret_hash
from qolaba.outbox.services import outbox_enqueue


def organization_timezone_validate(tz: str) -> None:
    if tz not in dict(timezone_choices()):
        raise ValidationError({"timezone": f"“{tz}” is not a known time zone."})


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


def membership_require_admin(*, organization: Organization, actor: User) -> Membership:
    """The actor's membership, if they may manage members (Owner or Admin); a refusal otherwise."""
    membership = Membership.objects.active().filter(organization=organization, user=actor).first()
    if membership is None or not membership.is_admin:
        raise ValidationError("Only the Owner and Admins can manage members.")
    return membership


# --- invitations ---------------------------------------------------------------------------------------------


def invitation_token_new() -> tuple[str, str]:
    """A new invitation token and its hash: only the hash is stored, the token travels in the email."""
    token = secrets.token_urlsafe(32)
    return token, invitation_token_hash(token)


def invitation_email_enqueue(invitation: Invitation) -> None:
    """Send the invitation through the outbox: once the transaction that made it commits (never for a rolled-back
    one), and later if the broker is down then. The link is made when the email is sent (`invitation_email`), so
    no token is ever stored, in the outbox or anywhere."""
    outbox_enqueue(task="orgs.tasks.invitation_email_send", args=[invitation.pk])


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


def _pending_for_update(invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
    if invitation.status != InvitationStatus.PENDING:
        raise ValidationError(f"This invitation was already {invitation.get_status_display().lower()}.")
    return invitation


INVITATION_SENDS = (AuditAction.INVITATION_CREATED, AuditAction.INVITATION_RESENT)


def invitation_quota_require(*, organization: Organization, count: int) -> None:
    """Refuse (a form error, before anything is written) when sending `count` more invitation emails would pass
    the organization's INVITATIONS_PER_HOUR. The count is the audit log's invitations created and resent in the last
    hour: exact, in the database (so it holds with Redis down), and the organization's row is locked first so that
    two requests at once cannot both pass. Call inside the service's transaction."""
    limit: int = settings.INVITATIONS_PER_HOUR
    if not limit:
        return
    Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk", flat=True).first()
    since = dj_now() - timedelta(hours=1)
    sends = AuditEvent.objects.filter(organization=organization, action__in=INVITATION_SENDS, created_at__gte=since)
    sent = sends.count()
    if sent + count <= limit:
        return
    left = max(limit - sent, 0)
    if count > limit:
        message = f"{organization.name} can send {limit} invitations an hour: invite at most {limit} addresses at once."
    else:
        # The moment enough of the hour's sends age out for this many to fit.
        aging_out = sends.order_by("created_at").values_list("created_at", flat=True)[sent + count - limit - 1]
        minutes = max(1, -(-int((aging_out + timedelta(hours=1) - dj_now()).total_seconds()) // 60))
        message = (
            f"{organization.name} can send {limit} invitations an hour and has {left} left now: try again in "
            f"{minutes} minute{'s' if minutes != 1 else ''}"
            + (f", or invite at most {left} address{'es' if left != 1 else ''}." if left else ".")
        )
    raise ValidationError(
        {"emails": message},
        code="rate_limited",
    )


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User) -> Invitation:
    """A fresh link (the old one stops working) and a fresh expiry."""
    invitation = _pending_for_update(invitation)
    membership_require_admin(organization=invitation.organization, actor=actor)
    invitation_quota_require(organization=invitation.organization, count=1)
    _, invitation.token_hash = invitation_token_new()  # the old link stops working now; the email brings a new one
    invitation.sent_at = dj_now()
    invitation.expires_at = invitation.sent_at + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    audit_record(
        organization=invitation.organization,
        actor=actor,
        action=AuditAction.INVITATION_RESENT,
        target=invitation,
        after={"email": invitation.email, "expires_at": invitation.expires_at.isoformat()},
    )
    invitation_email_enqueue(invitation)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User, by_staff: bool = False) -> Invitation:
    """Revoke a pending invitation: by an Owner/Admin of its organization, or by staff from the admin."""
    invitation = _pending_for_update(invitation)
    if not (by_staff and actor.is_staff):
        membership_require_admin(organization=invitation.organization, actor=actor)
    invitation.status = InvitationStatus.REVOKED
    invitation.save(update_fields=["status"])
    audit_record(
        organization=invitation.organization,
        actor=actor,
        action=AuditAction.INVITATION_REVOKED,
        target=invitation,
        before={"status": "pending"},
        after={"status": "revoked", "email": invitation.email},
    )
    return invitation


@transaction.atomic
def invitation_email(*, invitation: Invitation) -> int:
    """Email a pending invitation its link. The token is made here and only its hash stored, replacing the one
    before (so each email's link is the only one that works). Returns the number of emails sent (0 if the
    invitation is no longer pending)."""
    pending = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization", "invited_by")
        .filter(pk=invitation.pk, status=InvitationStatus.PENDING)
        .first()
    )
    if pending is None:
        return 0
    invitation = pending
    token, invitation.token_hash = invitation_token_new()
    invitation.save(update_fields=["token_hash"])
    context = {
        "invitation": invitation,
        "url": settings.SITE_URL + reverse("orgs:invitation_accept", kwargs={"token": token}),
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
    runway_alert_days: int | None = None,
) -> Organization:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the organization a name."})
    organization_timezone_validate(timezone)
    processed = logo_process(logo) if logo is not None else None
    old_logo = organization.logo.name if organization.logo else ""
    if alert_thresholds is not None and (
        not alert_thresholds or any(not isinstance(t, int) or not 1 <= t <= 100 for t in alert_thresholds)
    ):
        raise ValidationError({"alert_thresholds": "Each threshold is a percentage from 1 to 100."})
    if runway_alert_days is not None and (
        isinstance(runway_alert_days, bool)
        or not isinstance(runway_alert_days, int)
        or not 1 <= runway_alert_days <= 90
    ):
        raise ValidationError({"runway_alert_days": "The runway alert is a number of days from 1 to 90."})
    before = {
        "name": organization.name,
        "timezone": organization.timezone,
        "logo": old_logo,
        "alert_thresholds": organization.alert_thresholds,
        "runway_alert_days": organization.runway_alert_days,
    }
    organization.name, organization.timezone = name, timezone
    if alert_thresholds is not None:
        organization.alert_thresholds = sorted(set(alert_thresholds))
    if runway_alert_days is not None:
        organization.runway_alert_days = runway_alert_days
    if processed is not None:
        organization.logo.save(f"{organization.slug}.png", processed, save=False)
    elif remove_logo:
        organization.logo = None
    organization.save(update_fields=["name", "timezone", "logo", "alert_thresholds", "runway_alert_days"])
    new_logo = organization.logo.name if organization.logo else ""
    if old_logo and old_logo != new_logo:
        storage = organization.logo.storage
        transaction.on_commit(partial(storage.delete, old_logo))
    after = {
        "name": organization.name,
        "timezone": organization.timezone,
        "logo": new_logo,
        "alert_thresholds": organization.alert_thresholds,
        "runway_alert_days": organization.runway_alert_days,
    }
    if after != before:
        audit_record(
            organization=organization,
            actor=actor,
            action=AuditAction.ORGANIZATION_UPDATED,
            target=organization,
            before=before,
            after=after,
        )
    return organization


@transaction.atomic
def organization_two_factor_require(*, organization: Organization, actor: User, required: bool) -> Organization:
    """Require (or stop requiring) two-factor sign-in of every member before they open the organization's pages."""
    if required and not is_mfa_enabled(actor):
        raise ValidationError("Set up two-factor sign-in for your own account first (Account → Two-factor).")
    before = organization.require_two_factor
    if before == required:
        return organization
    organization.require_two_factor = required
    organization.save(update_fields=["require_two_factor"])
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.ORGANIZATION_TWO_FACTOR_REQUIRED,
        target=organization,
        before={"require_two_factor": before},
        after={"require_two_factor": required},
    )
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


# --- admin keys ----------------------------------------------------------------------------------------------

ADMIN_KEY_LAST_USED_PRECISION = timedelta(minutes=1)


def _admin_key_actor_check(*, organization: Organization, actor: User) -> None:
    if (
        not Membership.objects.active()
        .filter(organization=organization, user=actor, role__gte=OrganizationRole.ADMIN)
        .exists()
    ):
        raise ValidationError("Only the Owner and Admins can manage admin keys.")


@transaction.atomic
def admin_key_create(*, organization: Organization, actor: User, name: str) -> tuple[AdminKey, str]:
    """A new read-only admin key for the organization's usage. Returns the key and its secret, never shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the key after the service or person that will use it."})
    if organization.deleted_at is not None:
        raise ValidationError("A deleted organization cannot get new admin keys.")
    _admin_key_actor_check(organization=organization, actor=actor)
    prefix, secret = key_generate(scheme=ADMIN_KEY_SCHEME)
    admin_key = AdminKey.objects.create(
        organization=organization,
        name=name[: AdminKey._meta.get_field("name").max_length],
        prefix=prefix,
        secret_hash=key_secret_hash(secret),
        created_by=actor,
    )
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.ADMIN_KEY_CREATED,
        target=admin_key,
        after={"name": admin_key.name, "prefix": admin_key.display_prefix},
    )
    return admin_key, secret


@transaction.atomic
def admin_key_revoke(*, admin_key: AdminKey, actor: User, by_staff: bool = False) -> AdminKey:
    """Revoke at once: the next request with this key is refused. Revoking twice changes nothing. By an Owner/Admin
    of its organization, or by staff from the admin."""
    locked = AdminKey.objects.select_for_update().select_related("organization").get(pk=admin_key.pk)
    if locked.is_revoked:
        return locked
    if not (by_staff and actor.is_staff):
        _admin_key_actor_check(organization=locked.organization, actor=actor)
    locked.revoked_at = dj_now()
    locked.revoked_by = actor
    locked.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        organization=locked.organization,
        actor=actor,
        action=AuditAction.ADMIN_KEY_REVOKED,
        target=locked,
        before={"name": locked.name, "prefix": locked.display_prefix},
    )
    return locked


def admin_key_mark_used(*, admin_key_id: int, last_used_at: datetime | None) -> datetime | None:
    """Record that the key was used, at most once a minute. Returns the new time, or None when the recorded one is
    recent enough."""
    at = dj_now()
    if last_used_at is not None and at - last_used_at < ADMIN_KEY_LAST_USED_PRECISION:
        return None
    AdminKey.objects.filter(pk=admin_key_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=at - ADMIN_KEY_LAST_USED_PRECISION)
    ).update(last_used_at=at)
    return at
