"""Users (the email is the identity), organizations, their memberships (one active Owner), invitations, audit events
and notifications."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import now
from guardian.models import UserObjectPermissionBase

from qolaba.keys import SecretKey

if TYPE_CHECKING:
    from django.db.models.query import QuerySet


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)

    def _create_user(self, email: str, password: str | None, **extra_fields: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields: Any) -> User:
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields: Any) -> User:
        extra_fields.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. The email address is the identity (unique whatever its case)."""

    email = models.EmailField("email address", max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the Django admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.lower()
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@", 1)[0]

    @property
    def initials(self) -> str:
        parts = self.display_name.replace(".", " ").replace("_", " ").split()
        return "".join(part[0] for part in parts[:2]).upper() or "?"


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


def default_alert_thresholds() -> list[int]:
    return [80, 100]


class CreditMode(models.TextChoices):
    SHARED = "shared", "Shared pool"
    BUDGET = "budget", "Workspace budgets"


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def alive(self) -> OrganizationQuerySet:
        return self.filter(deleted_at__isnull=True)

    def for_user(self, user: Any) -> OrganizationQuerySet:
        """Organizations the user may open: permission rows are the single source of access."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        return self.alive().filter(
            user_permissions__user=user,
            user_permissions__permission__codename="view_organization",
        )


class Organization(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    logo = models.ImageField(upload_to="org-logos/%Y/%m/", blank=True)
    timezone = models.CharField(max_length=64, default="UTC", choices=timezone_choices)
    credit_mode = models.CharField(max_length=10, choices=CreditMode.choices, default=CreditMode.SHARED)
    alert_thresholds = models.JSONField(
        default=default_alert_thresholds, help_text="Percentages of a budget, limit or pool used that raise an alert."
    )
    runway_alert_days = models.PositiveSmallIntegerField(
        default=7,
        help_text="Owners and Admins are alerted when the pool or a workspace budget is forecast to run out in "
        "fewer days than this (1 to 90).",
    )
    require_two_factor = models.BooleanField(
        default=False, help_text="Members must have two-factor sign-in set up before they open any of its pages."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("view_organization", "Open the organization and its Overview"),
            ("manage_members", "Invite and remove members, change roles"),
            ("manage_workspaces", "Create, edit and delete workspaces"),
            ("view_all_usage", "Monitor the credit usage of everyone"),
            ("manage_credits", "Buy and move credits, switch the credit mode"),
            ("manage_billing", "Change the subscription"),
            ("edit_profile", "Edit the organization profile"),
            ("view_audit_log", "Read and export the audit log"),
            ("transfer_ownership", "Transfer ownership"),
            ("delete_organization", "Delete the organization"),
        ]
        default_permissions = ()
        constraints = [
            models.CheckConstraint(
                condition=models.Q(runway_alert_days__gte=1, runway_alert_days__lte=90),
                name="organization_runway_alert_days_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class OrganizationRole(models.IntegerChoices):
    """Spaced levels so a role can be slotted in later without renumbering (as PostHog does)."""

    MEMBER = 1, "Member"
    ADMIN = 8, "Admin"
    OWNER = 15, "Owner"


class MembershipStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REMOVED = "removed", "Removed"


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        return self.filter(status=MembershipStatus.ACTIVE)


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=OrganizationRole.choices, default=OrganizationRole.MEMBER)
    status = models.CharField(max_length=10, choices=MembershipStatus.choices, default=MembershipStatus.ACTIVE)
    joined_at = models.DateTimeField(default=now)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user_per_org"),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(role=OrganizationRole.OWNER, status=MembershipStatus.ACTIVE),
                name="membership_one_owner_per_org",
            ),
            models.CheckConstraint(condition=models.Q(role__in=OrganizationRole.values), name="membership_role_valid"),
            models.CheckConstraint(
                condition=~models.Q(role=OrganizationRole.OWNER, status=MembershipStatus.REMOVED),
                name="membership_owner_not_removed",
            ),
        ]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        """Owners and Admins manage the organization."""
        return self.status == MembershipStatus.ACTIVE and self.role >= OrganizationRole.ADMIN

    @property
    def is_owner(self) -> bool:
        return self.status == MembershipStatus.ACTIVE and self.role == OrganizationRole.OWNER


class OrganizationUserObjectPermission(UserObjectPermissionBase):
    """Guardian's direct foreign-key table for organizations (joins instead of generic lookups)."""

    content_object = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "content_object"])]


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        """Invitations that can still be accepted (not used, not revoked, not expired)."""
        return self.filter(status=InvitationStatus.PENDING, expires_at__gt=now())


class Invitation(models.Model):
    """An invitation of one email address to join an organization, with a role and workspaces.

    Only a hash of the secret token is stored; the token itself travels in the email link.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.PositiveSmallIntegerField(choices=OrganizationRole.choices, default=OrganizationRole.MEMBER)
    workspaces = models.ManyToManyField("workspaces.Workspace", related_name="+")
    workspace_role = models.CharField(max_length=10, default="member")
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "organization",
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_email",
            ),
            models.CheckConstraint(condition=~models.Q(role=OrganizationRole.OWNER), name="invitation_never_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization}"

    @property
    def is_expired(self) -> bool:
        return self.status == InvitationStatus.PENDING and self.expires_at <= now()

    @property
    def display_status(self) -> str:
        return "Expired" if self.is_expired else self.get_status_display()


class NotificationQuerySet(models.QuerySet["Notification"]):
    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """An in-app message to one person in one organization (the bell in the top bar)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=now)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "organization", "read_at"])]

    def __str__(self) -> str:
        return self.title


ADMIN_KEY_SCHEME = "qlbadm"  # `qlbadm_<prefix>_<secret>` (`qolaba.keys`); a workspace key is `qlb_…`


class AdminKeyQuerySet(models.QuerySet["AdminKey"]):
    def active(self) -> AdminKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class AdminKey(SecretKey):
    """An organization admin key: reads the usage of every workspace of its organization through the usage API
    (`GET /api/v1/organization/usage`) and nothing else — never a charge or a hold. Owners and Admins create and
    revoke them on the Profile tab. Only the SHA-256 of the key is kept; it is shown once.

    Here, not in `usage`, because it belongs to the organization alone (like its invitations and audit log): its
    writes and their audit events need nothing above `orgs`, and the usage API (web layer) reads it from above."""

    scheme = ADMIN_KEY_SCHEME

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="admin_keys")

    objects = AdminKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]


class AuditAction(models.TextChoices):
    """Every kind of audit event, by the name stored in `AuditEvent.action` (`<noun>.<what happened>`)."""

    ORGANIZATION_CREATED = "organization.created", "Organization created"
    ORGANIZATION_DELETED = "organization.deleted", "Organization deleted"
    ORGANIZATION_OWNERSHIP_TRANSFERRED = "organization.ownership_transferred", "Organization ownership transferred"
    ORGANIZATION_RESTORED = "organization.restored", "Organization restored"
    ORGANIZATION_UPDATED = "organization.updated", "Organization updated"
    ORGANIZATION_TWO_FACTOR_REQUIRED = "organization.two_factor_required", "Organization two-factor requirement set"

    MEMBERSHIP_ADDED = "membership.added", "Membership added"
    MEMBERSHIP_REMOVED = "membership.removed", "Membership removed"
    MEMBERSHIP_ROLE_CHANGED = "membership.role_changed", "Membership role changed"
    MEMBERSHIP_WORKSPACES_CHANGED = "membership.workspaces_changed", "Membership workspaces changed"

    INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
    INVITATION_CREATED = "invitation.created", "Invitation created"
    INVITATION_RESENT = "invitation.resent", "Invitation resent"
    INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"

    WORKSPACE_ARCHIVED = "workspace.archived", "Workspace archived"
    WORKSPACE_CREATED = "workspace.created", "Workspace created"
    WORKSPACE_MEMBER_REMOVED = "workspace.member_removed", "Workspace member removed"
    WORKSPACE_MEMBER_SET = "workspace.member_set", "Workspace member set"
    WORKSPACE_RESTORED = "workspace.restored", "Workspace restored"
    WORKSPACE_UPDATED = "workspace.updated", "Workspace updated"

    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    ADMIN_KEY_CREATED = "admin_key.created", "Admin API key created"
    ADMIN_KEY_REVOKED = "admin_key.revoked", "Admin API key revoked"

    HISTORY_ITEM_DELETED = "history_item.deleted", "History item deleted"

    CREDITS_GRANTED = "credits.granted", "Credits granted"
    CREDITS_LIMIT_SET = "credits.limit_set", "Credits limit set"
    CREDITS_MODE_SWITCHED = "credits.mode_switched", "Credits mode switched"
    CREDITS_REFUNDED = "credits.refunded", "Credits refunded"
    CREDITS_TRANSFERRED = "credits.transferred", "Credits transferred"

    BILLING_INVOICE_OPENED = "billing.invoice_opened", "Billing invoice opened"
    BILLING_INVOICE_PAID = "billing.invoice_paid", "Billing invoice paid"
    BILLING_INVOICE_VOIDED = "billing.invoice_voided", "Billing invoice voided"
    BILLING_PACK_EXPIRED = "billing.pack_expired", "Billing pack expired"
    BILLING_SUBSCRIPTION_CANCEL_SCHEDULED = (
        "billing.subscription_cancel_scheduled",
        "Billing subscription cancel scheduled",
    )
    BILLING_SUBSCRIPTION_ENDED = "billing.subscription_ended", "Billing subscription ended"
    BILLING_SUBSCRIPTION_ENDED_UNPAID = "billing.subscription_ended_unpaid", "Billing subscription ended unpaid"
    BILLING_SUBSCRIPTION_RESUMED = "billing.subscription_resumed", "Billing subscription resumed"

    STATEMENT_CLOSED = "statement.closed", "Statement closed"
    CLIENT_RATE_SET = "client_rate.set", "Client rate set"
    USAGE_EXPORT_REQUESTED = "usage_export.requested", "Usage export requested"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_organization(self, organization: Organization) -> QuerySet[AuditEvent]:
        return self.filter(organization=organization)


class AuditEvent(models.Model):
    """An append-only record of a change: who did what to which object, before and after."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_events", null=True, blank=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_email = models.EmailField(blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_repr} by {self.actor_email or 'system'}"

    @property
    def action_label(self) -> str:
        try:
            return str(AuditAction(self.action).label)
        except ValueError:  # an action name no longer in the enum (kept history)
            return self.action

    @property
    def changes(self) -> list[tuple[str, str | None, str | None]]:
        """The change as rows of (field, before, after), each value written for a reader; a side that did not have
        the field is None."""

        def shown(side: dict[str, Any], key: str) -> str | None:
            return audit_value_text(side[key]) if key in side else None

        keys = list(self.before) + [key for key in self.after if key not in self.before]
        return [(key.replace("_", " "), shown(self.before, key), shown(self.after, key)) for key in keys]


def audit_value_text(value: Any) -> str:
    """A recorded value as a person reads it: lists joined, mappings as "key: value", no Python reprs."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(audit_value_text(item) for item in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {audit_value_text(item)}" for key, item in value.items()) or "—"
    return str(value)
