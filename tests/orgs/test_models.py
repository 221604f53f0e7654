"""Model behaviour and the database constraints that keep organizations and workspaces consistent.

Constraint tests write straight through the ORM (bypassing the services) inside `transaction.atomic()`,
so that the database itself, not Python code, is shown to refuse the bad row.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import IntegrityError, transaction
from django.utils.timezone import now

from orgs.models import (
    Membership,
    MembershipStatus,
    Organization,
    OrganizationRole,
    User,
)
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole

pytestmark = pytest.mark.django_db


@contextmanager
def refused_by(constraint: str):
    """The block must fail at the database with an IntegrityError naming `constraint`."""
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        yield


def primary_of(org: Organization) -> Workspace:
    return Workspace.objects.get(organization=org, is_primary=True)


# --- Users --------------------------------------------------------------------------------------


def test_create_user_stores_email_lowercase():
    user = User.objects.create_user("Alice.Smith@Example.COM", "pw-12345678")
    user.refresh_from_db()
    assert user.email == "alice.smith@example.com"


def test_create_user_requires_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", "pw-12345678")


def test_user_natural_key_lookup_ignores_case():
    user = UserFactory(email="bob@example.com")
    assert User.objects.get_by_natural_key("BOB@Example.com") == user


def test_user_create_with_other_case_of_existing_email_fails_at_database():
    UserFactory(email="carol@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="CAROL@Example.com")
    assert User.objects.filter(email__iexact="carol@example.com").count() == 1


def test_case_insensitive_email_constraint_holds_even_when_save_is_bypassed():
    UserFactory(email="dave@example.com")
    other = UserFactory(email="someone-else@example.com")
    # .update() skips User.save() (which lowercases): only the functional unique index can refuse this.
    with refused_by("user_email_ci_unique"):
        User.objects.filter(pk=other.pk).update(email="DAVE@example.com")


def test_display_name_and_initials():
    assert UserFactory(name="Olivia Northwind").initials == "ON"
    nameless = UserFactory(name="", email="jane.doe@example.com")
    assert nameless.display_name == "jane.doe"
    assert nameless.initials == "JD"


# --- Memberships --------------------------------------------------------------------------------


def test_second_active_owner_is_refused_by_database():
    org = make_organization()
    with refused_by("membership_one_owner_per_org"):
        Membership.objects.create(user=UserFactory(), organization=org, role=OrganizationRole.OWNER)
    assert Membership.objects.filter(organization=org, role=OrganizationRole.OWNER).count() == 1


def test_promoting_a_member_to_second_owner_is_refused_by_database():
    org = make_organization()
    member = make_member(org)
    with refused_by("membership_one_owner_per_org"):
        Membership.objects.filter(pk=member.pk).update(role=OrganizationRole.OWNER)


def test_owner_membership_cannot_be_removed():
    org = make_organization()
    owner = Membership.objects.get(organization=org, role=OrganizationRole.OWNER)
    with refused_by("membership_owner_not_removed"):
        Membership.objects.filter(pk=owner.pk).update(status=MembershipStatus.REMOVED)


def test_membership_is_unique_per_user_and_organization():
    org = make_organization()
    member = make_member(org)
    with refused_by("membership_unique_user_per_org"):
        Membership.objects.create(user=member.user, organization=org, role=OrganizationRole.ADMIN)


def test_same_user_may_belong_to_many_organizations():
    user = UserFactory()
    make_organization(owner=user)
    make_organization(owner=user)
    other = make_organization()
    make_member(other, user=user)
    assert Membership.objects.filter(user=user).count() == 3


@pytest.mark.parametrize("role", [0, 2, 7, 16])
def test_membership_role_values_are_checked_by_database(role):
    org = make_organization()
    with refused_by("membership_role_valid"):
        Membership.objects.create(user=UserFactory(), organization=org, role=role)


def test_membership_admin_and_owner_flags():
    org = make_organization()
    owner = Membership.objects.get(organization=org, role=OrganizationRole.OWNER)
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org)
    assert (owner.is_owner, owner.is_admin) == (True, True)
    assert (admin.is_owner, admin.is_admin) == (False, True)
    assert (member.is_owner, member.is_admin) == (False, False)
    admin.status = MembershipStatus.REMOVED
    assert admin.is_admin is False


# --- Workspaces ---------------------------------------------------------------------------------


def test_second_primary_workspace_is_refused_by_database():
    org = make_organization()
    with refused_by("workspace_one_primary_per_org"):
        Workspace.objects.create(organization=org, name="Second primary", slug="second-primary", is_primary=True)


def test_primary_workspace_can_never_be_archived():
    org = make_organization()
    with refused_by("workspace_primary_never_archived"):
        Workspace.objects.filter(pk=primary_of(org).pk).update(archived_at=now())


def test_other_workspaces_can_be_archived():
    org = make_organization()
    ws = make_workspace(org)
    Workspace.objects.filter(pk=ws.pk).update(archived_at=now())
    ws.refresh_from_db()
    assert ws.is_archived


def test_live_workspace_names_are_unique_per_org_ignoring_case():
    org = make_organization()
    make_workspace(org, name="Design")
    with refused_by("workspace_live_name_unique_per_org"):
        Workspace.objects.create(organization=org, name="DESIGN", slug="design-2")


def test_archived_workspace_name_may_be_reused_and_other_orgs_may_share_names():
    org = make_organization()
    old = make_workspace(org, name="Design")
    Workspace.objects.filter(pk=old.pk).update(archived_at=now())
    Workspace.objects.create(organization=org, name="design", slug="design-2")
    Workspace.objects.create(organization=make_organization(), name="Design", slug="design")
    assert Workspace.objects.filter(name__iexact="design").count() == 3


def test_workspace_slug_is_unique_per_org_only():
    org = make_organization()
    ws = make_workspace(org, name="Research")
    with refused_by("workspace_slug_unique_per_org"):
        Workspace.objects.create(organization=org, name="Research two", slug=ws.slug)
    other = make_organization()
    assert Workspace.objects.create(organization=other, name="Research", slug=ws.slug).pk


def test_workspace_membership_is_unique_and_role_checked():
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, workspaces={ws: WorkspaceRole.VIEWER})
    with refused_by("workspace_membership_unique"):
        WorkspaceMembership.objects.create(workspace=ws, user=member.user, role=WorkspaceRole.ADMIN)
    with refused_by("workspace_membership_role_valid"):
        WorkspaceMembership.objects.create(workspace=ws, user=UserFactory(), role="owner")


# --- Querysets ----------------------------------------------------------------------------------


def test_organization_for_user_follows_permission_rows_and_hides_deleted():
    user = UserFactory()
    mine = make_organization(owner=user)
    gone = make_organization(owner=user)
    make_organization()  # someone else's
    Organization.objects.filter(pk=gone.pk).update(deleted_at=now())
    assert list(Organization.objects.for_user(user)) == [mine]


def test_workspace_live_and_for_user_hide_archived_and_unassigned():
    org = make_organization()
    assigned = make_workspace(org, name="Assigned")
    archived = make_workspace(org, name="Archived")
    make_workspace(org, name="Not assigned")
    member = make_member(org, workspaces={assigned: WorkspaceRole.VIEWER, archived: WorkspaceRole.MEMBER})
    Workspace.objects.filter(pk=archived.pk).update(archived_at=now())
    assert archived not in Workspace.objects.live()
    assert list(Workspace.objects.for_user(member.user)) == [assigned]


def test_workspace_querysets_are_empty_for_inactive_users():
    org = make_organization()
    owner = org.created_by
    owner.is_active = False
    owner.save()
    assert not Workspace.objects.for_user(owner).exists()
    assert not Organization.objects.for_user(owner).exists()
