"""orgs.services: creating organizations (all or nothing) and adding members."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils.timezone import now

from orgs.models import AuditEvent, Membership, MembershipStatus, Organization, OrganizationRole
from orgs.services import organization_welcome_email
from qolaba.lifecycle import PRIMARY_WORKSPACE_NAME, organization_create
from tests.factories import UserFactory, make_member, make_organization
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.services import member_add

pytestmark = pytest.mark.django_db


def row_counts() -> dict[str, int]:
    return {
        "organizations": Organization.objects.count(),
        "memberships": Membership.objects.count(),
        "workspaces": Workspace.objects.count(),
        "audit_events": AuditEvent.objects.count(),
    }


# --- organization_create ------------------------------------------------------------------------


def test_organization_create_makes_one_owner_membership_and_one_primary_workspace():
    owner = UserFactory()
    org = organization_create(name="  Northwind Creative  ", owner=owner, timezone="Europe/London")

    assert (org.name, org.slug, org.timezone, org.created_by) == (
        "Northwind Creative",
        "northwind-creative",
        "Europe/London",
        owner,
    )
    memberships = list(Membership.objects.filter(organization=org))
    assert [(m.user, m.role, m.status) for m in memberships] == [
        (owner, OrganizationRole.OWNER, MembershipStatus.ACTIVE)
    ]
    workspaces = list(Workspace.objects.filter(organization=org))
    assert len(workspaces) == 1
    assert workspaces[0].is_primary
    assert workspaces[0].name == PRIMARY_WORKSPACE_NAME
    assert workspaces[0].created_by == owner


def test_organization_create_gives_the_owner_access_to_org_and_primary_workspace():
    owner = UserFactory()
    org = organization_create(name="Acme", owner=owner)
    assert list(Organization.objects.for_user(owner)) == [org]
    assert list(Workspace.objects.for_user(owner).values_list("is_primary", flat=True)) == [True]


def test_organization_create_with_custom_primary_workspace_name():
    org = organization_create(name="Acme", owner=UserFactory(), primary_workspace_name="Acme HQ")
    assert Workspace.objects.get(organization=org, is_primary=True).name == "Acme HQ"


def test_organization_create_with_unknown_timezone_creates_nothing():
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        organization_create(name="Acme", owner=UserFactory(), timezone="Mars/Olympus_Mons")
    assert "timezone" in excinfo.value.message_dict
    assert row_counts() == before


@pytest.mark.parametrize("name", ["", "   "])
def test_organization_create_with_blank_name_creates_nothing(name):
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        organization_create(name=name, owner=UserFactory())
    assert "name" in excinfo.value.message_dict
    assert row_counts() == before


def test_organization_create_rolls_back_everything_when_primary_workspace_fails():
    """The organization, the Owner membership and the audit event are written first; the Primary Workspace's
    own validation then fails, and nothing of the half-made organization may remain."""
    owner = UserFactory()
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        organization_create(name="Half made", owner=owner, primary_workspace_name="   ")
    assert "name" in excinfo.value.message_dict
    assert row_counts() == before
    assert not Organization.objects.filter(slug="half-made").exists()
    assert not owner.memberships.exists()


def test_two_organizations_with_the_same_name_get_distinct_slugs():
    first = make_organization(name="Acme")
    second = make_organization(name="Acme")
    third = make_organization(name="ACME")
    assert [first.slug, second.slug, third.slug] == ["acme", "acme-2", "acme-3"]


def test_organization_with_unsluggable_name_gets_fallback_slug():
    org = make_organization(name="!!!")
    assert org.slug == "org"
    assert make_organization(name="???").slug == "org-2"


def test_organization_create_writes_audit_events_with_actor():
    owner = UserFactory()
    org = organization_create(name="Acme", owner=owner, timezone="UTC")
    events = {e.action: e for e in AuditEvent.objects.for_organization(org)}

    created = events["organization.created"]
    assert created.actor == owner
    assert created.actor_email == owner.email
    assert created.target_type == "orgs.organization"
    assert created.target_id == str(org.pk)
    assert created.before == {}
    assert created.after == {"name": "Acme", "slug": "acme", "timezone": "UTC"}

    ws_created = events["workspace.created"]
    primary = Workspace.objects.get(organization=org, is_primary=True)
    assert ws_created.actor == owner
    assert ws_created.target_id == str(primary.pk)
    assert ws_created.after == {"name": PRIMARY_WORKSPACE_NAME, "is_primary": True}


def test_organization_create_audits_the_owner_membership():
    owner = UserFactory()
    org = organization_create(name="Acme", owner=owner)
    event = AuditEvent.objects.get(organization=org, action="membership.added")
    assert event.after == {"user": owner.email, "role": "Owner"}


def test_welcome_email_is_sent_only_when_the_transaction_commits(django_capture_on_commit_callbacks, mailoutbox):
    owner = UserFactory(email="olivia@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        org = organization_create(name="Northwind", owner=owner)
    assert mailoutbox == []
    assert len(callbacks) == 1

    callbacks[0]()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["olivia@example.com"]
    assert "Northwind" in message.subject
    assert f"/o/{org.slug}/" in message.body


def test_welcome_email_sent_on_commit(django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        make_organization(name="Bluepeak")
    assert [m.subject for m in mailoutbox] == ["[Qolaba] Bluepeak is ready"]


def test_failed_organization_create_sends_no_welcome_email(django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(ValidationError):
        organization_create(name="Nope", owner=UserFactory(), primary_workspace_name="")
    assert callbacks == []
    assert mailoutbox == []


def test_welcome_email_is_not_sent_for_a_deleted_organization(mailoutbox):
    org = make_organization()
    Organization.objects.filter(pk=org.pk).update(deleted_at=now())
    org.refresh_from_db()
    assert organization_welcome_email(organization=org) == 0
    assert mailoutbox == []


# --- member_add -----------------------------------------------------------------------------


def test_membership_add_creates_active_membership_with_permissions_and_audit():
    org = make_organization()
    user = UserFactory()
    membership = member_add(organization=org, user=user, role=OrganizationRole.ADMIN, actor=org.created_by)

    assert (membership.role, membership.status) == (OrganizationRole.ADMIN, MembershipStatus.ACTIVE)
    assert list(Organization.objects.for_user(user)) == [org]
    event = AuditEvent.objects.get(organization=org, action="membership.added", target_id=str(membership.pk))
    assert event.actor == org.created_by
    assert event.after == {"user": user.email, "role": "Admin"}


def test_membership_add_refuses_owner_role():
    org = make_organization()
    user = UserFactory()
    with pytest.raises(ValidationError) as excinfo:
        member_add(organization=org, user=user, role=OrganizationRole.OWNER, actor=None)
    assert "role" in excinfo.value.message_dict
    assert not Membership.objects.filter(organization=org, user=user).exists()


def test_membership_add_refuses_an_already_active_member():
    org = make_organization()
    member = make_member(org, role=OrganizationRole.MEMBER)
    with pytest.raises(ValidationError, match="already a member"):
        member_add(organization=org, user=member.user, role=OrganizationRole.ADMIN, actor=None)
    member.refresh_from_db()
    assert member.role == OrganizationRole.MEMBER


def test_membership_add_refuses_the_owner_as_a_member_again():
    org = make_organization()
    with pytest.raises(ValidationError, match="already a member"):
        member_add(organization=org, user=org.created_by, role=OrganizationRole.MEMBER, actor=None)
    assert Membership.objects.get(organization=org, user=org.created_by).role == OrganizationRole.OWNER


def test_membership_add_reactivates_a_removed_member_with_the_new_role():
    org = make_organization()
    member = make_member(org, role=OrganizationRole.MEMBER)
    Membership.objects.filter(pk=member.pk).update(status=MembershipStatus.REMOVED, removed_at=now())

    again = member_add(organization=org, user=member.user, role=OrganizationRole.ADMIN, actor=org.created_by)

    assert again.pk == member.pk
    again.refresh_from_db()
    assert (again.status, again.role, again.removed_at) == (MembershipStatus.ACTIVE, OrganizationRole.ADMIN, None)
    assert Membership.objects.filter(organization=org, user=member.user).count() == 1
    assert list(Organization.objects.for_user(member.user)) == [org]
    # Re-activated as Admin: reaches every workspace.
    assert Workspace.objects.for_user(member.user).filter(organization=org).count() == 1


def test_membership_add_does_not_touch_other_memberships_of_the_user():
    org = make_organization()
    other = make_organization()
    user = UserFactory()
    make_member(other, user=user)
    member_add(organization=org, user=user, role=OrganizationRole.MEMBER, actor=None)
    assert set(Organization.objects.for_user(user)) == {org, other}
    assert not WorkspaceMembership.objects.filter(user=user).exists()
