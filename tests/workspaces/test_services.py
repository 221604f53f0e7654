"""workspaces.services and selectors: creating workspaces and assigning members to them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils.timezone import now

from orgs.models import AuditEvent, Membership, MembershipStatus, OrganizationRole
from qolaba.lifecycle import workspace_create
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole
from workspaces.roles import permissions_apply
from workspaces.selectors import workspace_overview_figures, workspaces_for_switcher
from workspaces.services import workspace_member_set

pytestmark = pytest.mark.django_db


def primary_of(org) -> Workspace:
    return Workspace.objects.get(organization=org, is_primary=True)


# --- workspace_create ---------------------------------------------------------------------------


def test_workspace_create_strips_and_slugifies_and_audits():
    org = make_organization()
    actor = org.created_by
    ws = workspace_create(organization=org, name="  Nike Spring Campaign ", description="  visuals  ", created_by=actor)
    assert (ws.name, ws.slug, ws.description, ws.is_primary, ws.created_by) == (
        "Nike Spring Campaign",
        "nike-spring-campaign",
        "visuals",
        False,
        actor,
    )
    event = AuditEvent.objects.get(organization=org, action="workspace.created", target_id=str(ws.pk))
    assert event.actor == actor
    assert event.target_type == "workspaces.workspace"
    assert event.after == {"name": "Nike Spring Campaign", "is_primary": False}


@pytest.mark.parametrize("name", ["", "   "])
def test_workspace_create_refuses_an_empty_name(name):
    org = make_organization()
    with pytest.raises(ValidationError) as excinfo:
        workspace_create(organization=org, name=name, created_by=None)
    assert "name" in excinfo.value.message_dict
    assert Workspace.objects.filter(organization=org).count() == 1


@pytest.mark.parametrize("duplicate", ["Design", "design", "  DESIGN  "])
def test_workspace_create_refuses_a_duplicate_live_name_ignoring_case(duplicate):
    org = make_organization()
    make_workspace(org, name="Design")
    with pytest.raises(ValidationError) as excinfo:
        workspace_create(organization=org, name=duplicate, created_by=None)
    assert "name" in excinfo.value.message_dict
    assert Workspace.objects.filter(organization=org, name__iexact="design").count() == 1


def test_workspace_create_refuses_the_primary_workspace_name():
    org = make_organization()
    with pytest.raises(ValidationError):
        workspace_create(organization=org, name="primary workspace", created_by=None)


def test_workspace_create_allows_the_name_of_an_archived_workspace_with_a_fresh_slug():
    org = make_organization()
    old = make_workspace(org, name="Design")
    Workspace.objects.filter(pk=old.pk).update(archived_at=now())
    new = workspace_create(organization=org, name="Design", created_by=None)
    assert new.slug == "design-2"
    assert new.pk != old.pk


def test_workspace_create_allows_same_name_in_another_organization():
    make_workspace(make_organization(), name="Design")
    other = make_workspace(make_organization(), name="Design")
    assert other.slug == "design"


def test_workspace_create_gives_org_owner_and_admins_access_but_not_members():
    org = make_organization()
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org)
    ws = make_workspace(org)
    assert ws in Workspace.objects.for_user(org.created_by)
    assert ws in Workspace.objects.for_user(admin.user)
    assert ws not in Workspace.objects.for_user(member.user)


def test_workspace_create_refuses_a_second_primary_workspace():
    org = make_organization()
    with pytest.raises(IntegrityError, match="workspace_one_primary_per_org"):
        workspace_create(organization=org, name="Another primary", created_by=None, is_primary=True)
    assert Workspace.objects.filter(organization=org).count() == 1


# --- workspace_member_set -------------------------------------------------------------------


def test_workspace_membership_set_assigns_a_member_and_audits():
    org = make_organization()
    ws = make_workspace(org, name="Research")
    member = make_member(org)
    actor = org.created_by

    wm = workspace_member_set(workspace=ws, user=member.user, role=WorkspaceRole.VIEWER, actor=actor)

    assert (wm.workspace, wm.user, wm.role) == (ws, member.user, WorkspaceRole.VIEWER)
    assert list(Workspace.objects.for_user(member.user)) == [ws]
    event = AuditEvent.objects.get(organization=org, action="workspace.member_set")
    assert event.actor == actor
    assert event.target_type == "workspaces.workspacemembership"
    assert event.before == {}
    assert event.after == {"role": "viewer", "workspace": "Research", "user": member.user.email}


def test_workspace_membership_set_changes_the_role_and_records_before_and_after():
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, workspaces={ws: WorkspaceRole.VIEWER})

    workspace_member_set(workspace=ws, user=member.user, role=WorkspaceRole.ADMIN, actor=org.created_by)

    assert WorkspaceMembership.objects.get(workspace=ws, user=member.user).role == WorkspaceRole.ADMIN
    event = AuditEvent.objects.filter(action="workspace.member_set").first()  # newest first
    assert event.before == {"role": "viewer"}
    assert event.after["role"] == "admin"


def test_workspace_membership_set_with_the_same_role_writes_no_audit_event():
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, workspaces={ws: WorkspaceRole.VIEWER})
    events = AuditEvent.objects.filter(action="workspace.member_set").count()

    workspace_member_set(workspace=ws, user=member.user, role=WorkspaceRole.VIEWER, actor=org.created_by)

    assert WorkspaceMembership.objects.get(workspace=ws, user=member.user).role == WorkspaceRole.VIEWER
    assert AuditEvent.objects.filter(action="workspace.member_set").count() == events


def test_workspace_membership_set_refuses_a_user_outside_the_organization():
    org = make_organization()
    ws = make_workspace(org)
    outsider = UserFactory()
    make_organization(owner=outsider)  # a member elsewhere is still an outsider here
    with pytest.raises(ValidationError, match="Only active members"):
        workspace_member_set(workspace=ws, user=outsider, role=WorkspaceRole.MEMBER, actor=None)
    assert not WorkspaceMembership.objects.filter(user=outsider).exists()
    assert not Workspace.objects.for_user(outsider).filter(organization=org).exists()


def test_workspace_membership_set_refuses_a_removed_member():
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org)
    Membership.objects.filter(pk=member.pk).update(status=MembershipStatus.REMOVED)
    with pytest.raises(ValidationError, match="Only active members"):
        workspace_member_set(workspace=ws, user=member.user, role=WorkspaceRole.MEMBER, actor=None)


@pytest.mark.parametrize("role", ["owner", "", "ADMIN", None])
def test_workspace_membership_set_refuses_an_invalid_role(role):
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org)
    with pytest.raises(ValidationError) as excinfo:
        workspace_member_set(workspace=ws, user=member.user, role=role, actor=None)
    assert "role" in excinfo.value.message_dict
    assert not WorkspaceMembership.objects.filter(user=member.user).exists()


# --- selectors ----------------------------------------------------------------------------------


def test_workspaces_for_switcher_lists_primary_first_then_by_name_and_only_reachable_ones():
    org = make_organization()
    zeta = make_workspace(org, name="Zeta")
    alpha = make_workspace(org, name="Alpha")
    make_workspace(org, name="Hidden")
    archived = make_workspace(org, name="Archived")
    Workspace.objects.filter(pk=archived.pk).update(archived_at=now())
    member = make_member(org, workspaces={zeta: WorkspaceRole.MEMBER, alpha: WorkspaceRole.VIEWER})

    owner_view = [ws.name for ws in workspaces_for_switcher(user=org.created_by, organization=org)]
    assert owner_view == ["Primary Workspace", "Alpha", "Hidden", "Zeta"]
    assert list(workspaces_for_switcher(user=member.user, organization=org)) == [alpha, zeta]


def test_workspace_overview_figures_count_people_members_and_my_workspaces():
    org = make_organization()
    ws = make_workspace(org)
    make_member(org, role=OrganizationRole.ADMIN)
    viewer = make_member(org, workspaces={ws: WorkspaceRole.VIEWER})
    make_member(org)  # a member without access to ws
    removed = make_member(org, workspaces={ws: WorkspaceRole.MEMBER})
    Membership.objects.filter(pk=removed.pk).update(status=MembershipStatus.REMOVED)
    permissions_apply(organization=org, users=[removed.user])

    figures = workspace_overview_figures(user=viewer.user, workspace=ws)
    # Owner + Admin (implicit) + the viewer; the removed member lost access.
    assert figures.workspace_people == 3
    assert figures.organization_members == 4
    assert figures.my_workspaces == 1
