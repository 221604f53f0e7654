"""workspaces.roles.permissions_apply: the guardian permission rows follow the roles, exactly."""

from __future__ import annotations

import pytest
from django.utils.timezone import now

from orgs.models import (
    Membership,
    MembershipStatus,
    Organization,
    OrganizationRole,
    OrganizationUserObjectPermission,
)
from tests.factories import make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole, WorkspaceUserObjectPermission
from workspaces.roles import (
    ORGANIZATION_ROLE_PERMISSIONS,
    WORKSPACE_ROLE_PERMISSIONS,
    effective_workspace_role,
    permissions_apply,
)

pytestmark = pytest.mark.django_db


def org_codenames(user, org: Organization) -> set[str]:
    rows = OrganizationUserObjectPermission.objects.filter(user=user, content_object=org)
    return set(rows.values_list("permission__codename", flat=True))


def ws_codenames(user, ws: Workspace) -> set[str]:
    rows = WorkspaceUserObjectPermission.objects.filter(user=user, content_object=ws)
    return set(rows.values_list("permission__codename", flat=True))


def ws_rows_by_workspace(user, org: Organization) -> dict[int, set[str]]:
    rows = WorkspaceUserObjectPermission.objects.filter(user=user, content_object__organization=org)
    result: dict[int, set[str]] = {}
    for ws_id, codename in rows.values_list("content_object_id", "permission__codename"):
        result.setdefault(ws_id, set()).add(codename)
    return result


def all_rows() -> set[tuple]:
    org_rows = OrganizationUserObjectPermission.objects.values_list("user_id", "content_object_id", "permission_id")
    ws_rows = WorkspaceUserObjectPermission.objects.values_list("user_id", "content_object_id", "permission_id")
    return {("org", *row) for row in org_rows} | {("ws", *row) for row in ws_rows}


def primary_of(org: Organization) -> Workspace:
    return Workspace.objects.get(organization=org, is_primary=True)


def test_role_maps_are_consistent_with_the_model_permissions():
    org_declared = {codename for codename, _ in Organization._meta.permissions}
    ws_declared = {codename for codename, _ in Workspace._meta.permissions}
    for codenames in ORGANIZATION_ROLE_PERMISSIONS.values():
        assert codenames <= org_declared
    for codenames in WORKSPACE_ROLE_PERMISSIONS.values():
        assert codenames <= ws_declared
    # Each role holds strictly more than the one below it.
    owner = ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.OWNER]
    admin = ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.ADMIN]
    member = ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.MEMBER]
    assert member < admin < owner
    assert {"transfer_ownership", "delete_organization"} <= owner - admin
    viewer, ws_member, ws_admin = (WORKSPACE_ROLE_PERMISSIONS[r] for r in ("viewer", "member", "admin"))
    assert viewer < ws_member < ws_admin
    assert "use_workspace" not in viewer


@pytest.mark.parametrize("role", [OrganizationRole.OWNER, OrganizationRole.ADMIN, OrganizationRole.MEMBER])
def test_each_organization_role_gets_exactly_its_codenames(role):
    org = make_organization()
    user = org.created_by if role == OrganizationRole.OWNER else make_member(org, role=role).user
    permissions_apply(organization=org)
    assert org_codenames(user, org) == ORGANIZATION_ROLE_PERMISSIONS[role]


@pytest.mark.parametrize("role", [OrganizationRole.OWNER, OrganizationRole.ADMIN])
def test_owner_and_admin_are_workspace_admins_everywhere_including_later_workspaces(role):
    org = make_organization()
    early = make_workspace(org)
    user = org.created_by if role == OrganizationRole.OWNER else make_member(org, role=role).user
    later = make_workspace(org)  # created after the membership: must be covered too
    expected = WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.ADMIN]
    assert ws_rows_by_workspace(user, org) == {primary_of(org).pk: expected, early.pk: expected, later.pk: expected}


def test_member_gets_workspace_codenames_only_on_assigned_workspaces():
    org = make_organization()
    ws_admin, ws_member, ws_viewer, unassigned = (make_workspace(org) for _ in range(4))
    member = make_member(
        org,
        workspaces={ws_admin: WorkspaceRole.ADMIN, ws_member: WorkspaceRole.MEMBER, ws_viewer: WorkspaceRole.VIEWER},
    )
    permissions_apply(organization=org)
    assert ws_rows_by_workspace(member.user, org) == {
        ws_admin.pk: WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.ADMIN],
        ws_member.pk: WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.MEMBER],
        ws_viewer.pk: WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.VIEWER],
    }
    assert ws_codenames(member.user, unassigned) == set()
    assert ws_codenames(member.user, primary_of(org)) == set()


def test_workspace_role_of_an_org_admin_is_ignored_in_favour_of_admin():
    org = make_organization()
    ws = make_workspace(org)
    admin = make_member(org, role=OrganizationRole.ADMIN, workspaces={ws: WorkspaceRole.VIEWER})
    assert ws_codenames(admin.user, ws) == WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.ADMIN]


@pytest.mark.parametrize(
    ("org_role", "ws_role", "expected"),
    [
        (OrganizationRole.OWNER, None, WorkspaceRole.ADMIN),
        (OrganizationRole.ADMIN, WorkspaceRole.VIEWER, WorkspaceRole.ADMIN),
        (OrganizationRole.MEMBER, WorkspaceRole.VIEWER, WorkspaceRole.VIEWER),
        (OrganizationRole.MEMBER, None, None),
    ],
)
def test_effective_workspace_role(org_role, ws_role, expected):
    assert effective_workspace_role(organization_role=org_role, workspace_role=ws_role) == expected


def test_permissions_apply_repairs_tampered_rows():
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, workspaces={ws: WorkspaceRole.VIEWER})
    OrganizationUserObjectPermission.objects.filter(user=member.user).delete()
    WorkspaceUserObjectPermission.objects.filter(user=member.user).delete()
    permissions_apply(organization=org, users=[member.user])
    assert org_codenames(member.user, org) == ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.MEMBER]
    assert ws_codenames(member.user, ws) == WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.VIEWER]


def test_permissions_apply_is_idempotent():
    org = make_organization()
    ws = make_workspace(org)
    make_member(org, role=OrganizationRole.ADMIN)
    make_member(org, workspaces={ws: WorkspaceRole.MEMBER})
    before = all_rows()
    permissions_apply(organization=org)
    permissions_apply(organization=org)
    assert all_rows() == before
    # and no duplicate rows crept in
    total = OrganizationUserObjectPermission.objects.count() + WorkspaceUserObjectPermission.objects.count()
    assert total == len(before)


def test_removed_member_loses_every_row_in_the_org():
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, role=OrganizationRole.ADMIN, workspaces={ws: WorkspaceRole.MEMBER})
    assert org_codenames(member.user, org)
    Membership.objects.filter(pk=member.pk).update(status=MembershipStatus.REMOVED, removed_at=now())

    permissions_apply(organization=org)

    assert not OrganizationUserObjectPermission.objects.filter(user=member.user).exists()
    assert not WorkspaceUserObjectPermission.objects.filter(user=member.user).exists()


def test_removing_a_member_leaves_their_rows_in_other_orgs_untouched():
    user_org = make_organization()
    other_org = make_organization()
    other_ws = make_workspace(other_org)
    membership = make_member(user_org, role=OrganizationRole.ADMIN)
    make_member(other_org, user=membership.user, workspaces={other_ws: WorkspaceRole.VIEWER})
    untouched = {
        "org": org_codenames(membership.user, other_org),
        "ws": ws_codenames(membership.user, other_ws),
    }
    Membership.objects.filter(pk=membership.pk).update(status=MembershipStatus.REMOVED)

    permissions_apply(organization=user_org, users=[membership.user])

    assert org_codenames(membership.user, user_org) == set()
    assert org_codenames(membership.user, other_org) == untouched["org"] == {"view_organization"}
    assert ws_codenames(membership.user, other_ws) == untouched["ws"] == {"view_workspace"}


def test_archiving_a_workspace_removes_its_rows_only():
    org = make_organization()
    kept, archived = make_workspace(org), make_workspace(org)
    member = make_member(org, workspaces={kept: WorkspaceRole.MEMBER, archived: WorkspaceRole.ADMIN})
    assert ws_codenames(member.user, archived)
    Workspace.objects.filter(pk=archived.pk).update(archived_at=now())

    permissions_apply(organization=org)

    assert not WorkspaceUserObjectPermission.objects.filter(content_object=archived).exists()
    assert ws_codenames(member.user, kept) == WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.MEMBER]
    assert ws_codenames(org.created_by, kept) == WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.ADMIN]


def test_permissions_apply_leaves_rows_of_other_organizations_untouched():
    org = make_organization()
    other = make_organization()
    make_member(other, role=OrganizationRole.ADMIN, workspaces={make_workspace(other): WorkspaceRole.VIEWER})
    other_rows = {
        row
        for row in all_rows()
        if (row[0] == "org" and row[2] == other.pk)
        or (row[0] == "ws" and Workspace.objects.get(pk=row[2]).organization_id == other.pk)
    }
    assert other_rows
    # Wipe the org's members' access entirely: only this org's rows may go.
    Organization.objects.filter(pk=org.pk).update(deleted_at=now())
    org.refresh_from_db()

    permissions_apply(organization=org)

    assert not OrganizationUserObjectPermission.objects.filter(content_object=org).exists()
    assert not WorkspaceUserObjectPermission.objects.filter(content_object__organization=org).exists()
    assert other_rows <= all_rows()


def test_deleted_organization_gets_no_rows_and_restoring_brings_them_back():
    org = make_organization()
    member = make_member(org, role=OrganizationRole.ADMIN)
    Organization.objects.filter(pk=org.pk).update(deleted_at=now())
    org.refresh_from_db()
    permissions_apply(organization=org)
    assert org_codenames(member.user, org) == set()

    Organization.objects.filter(pk=org.pk).update(deleted_at=None)
    org.refresh_from_db()
    permissions_apply(organization=org)
    assert org_codenames(member.user, org) == ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.ADMIN]


def test_permissions_apply_for_a_subset_of_users_does_not_touch_the_others():
    org = make_organization()
    ws = make_workspace(org)
    first = make_member(org, workspaces={ws: WorkspaceRole.MEMBER})
    second = make_member(org, workspaces={ws: WorkspaceRole.MEMBER})
    Membership.objects.filter(pk__in=[first.pk, second.pk]).update(status=MembershipStatus.REMOVED)

    permissions_apply(organization=org, users=[first.user])

    assert ws_codenames(first.user, ws) == set()
    assert ws_codenames(second.user, ws) == WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.MEMBER]


def test_permissions_apply_for_users_outside_the_org_is_a_no_op():
    org = make_organization()
    other = make_organization()
    before = all_rows()
    permissions_apply(organization=org, users=[other.created_by])
    assert all_rows() == before
