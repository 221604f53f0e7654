from __future__ import annotations

from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from orgs.audit import audit_record
from orgs.models import Membership, MembershipStatus, Organization, OrganizationRole, User, timezone_choices
from orgs.roles import permissions_apply
from qolaba.slugs import unique_slug

PRIMARY_WORKSPACE_NAME = "Primary Workspace"


def _validate_timezone(tz: str) -> None:
    if tz not in dict(timezone_choices()):
        raise ValidationError({"timezone": f"“{tz}” is not a known time zone."})


@transaction.atomic
def organization_create(
    *, name: str, owner: User, timezone: str = "UTC", primary_workspace_name: str = PRIMARY_WORKSPACE_NAME
) -> Organization:
    """Create an organization with its Owner membership and Primary Workspace, all or nothing."""
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
    Membership.objects.create(user=owner, organization=organization, role=OrganizationRole.OWNER)
    audit_record(
        organization=organization,
        actor=owner,
        action="organization.created",
        target=organization,
        after={"name": organization.name, "slug": organization.slug, "timezone": timezone},
    )
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
