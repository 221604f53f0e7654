"""Managing members: role changes, removal and ownership transfer, with every refusal.

Permissions follow the role in the same transaction, and a removed member's open session stops working at once.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from orgs.models import (
    AuditEvent,
    Membership,
    MembershipStatus,
    OrganizationRole,
    OrganizationUserObjectPermission,
)
from tests.factories import make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole, WorkspaceUserObjectPermission
from workspaces.roles import ORGANIZATION_ROLE_PERMISSIONS
from workspaces.services import member_remove, member_role_change, ownership_transfer

pytestmark = pytest.mark.django_db

ADMIN_CODENAMES = set(ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.ADMIN])
OWNER_CODENAMES = set(ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.OWNER])
MEMBER_CODENAMES = set(ORGANIZATION_ROLE_PERMISSIONS[OrganizationRole.MEMBER])


def org_codenames(user, org) -> set[str]:
    rows = OrganizationUserObjectPermission.objects.filter(user=user, content_object=org)
    return set(rows.values_list("permission__codename", flat=True))


def ws_codenames(user, ws: Workspace) -> set[str]:
    rows = WorkspaceUserObjectPermission.objects.filter(user=user, content_object=ws)
    return set(rows.values_list("permission__codename", flat=True))


def snapshot(org) -> dict:
    """Everything a refused change must leave as it was."""
    return {
        "memberships": sorted(
            Membership.objects.filter(organization=org).values_list("pk", "role", "status", "removed_at")
        ),
        "org_perms": sorted(
            OrganizationUserObjectPermission.objects.filter(content_object=org).values_list("user_id", "permission_id")
        ),
        "ws_perms": sorted(
            WorkspaceUserObjectPermission.objects.filter(content_object__organization=org).values_list(
                "user_id", "content_object_id", "permission_id"
            )
        ),
        "ws_memberships": sorted(
            WorkspaceMembership.objects.filter(workspace__organization=org).values_list(
                "user_id", "workspace_id", "role"
            )
        ),
        "audit": AuditEvent.objects.filter(organization=org).count(),
    }


@pytest.fixture
def team():
    """An org with its Owner, two Admins and two Members (one assigned to a second workspace)."""
    org = make_organization(name="Northwind")
    primary = Workspace.objects.get(organization=org, is_primary=True)
    campaign = make_workspace(org, name="Campaign")
    owner = Membership.objects.get(organization=org, role=OrganizationRole.OWNER)
    admin = make_member(org, role=OrganizationRole.ADMIN)
    admin2 = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org, workspaces={campaign: WorkspaceRole.MEMBER})
    member2 = make_member(org, workspaces={primary: WorkspaceRole.VIEWER})
    return {
        "org": org,
        "primary": primary,
        "campaign": campaign,
        "owner": owner,
        "admin": admin,
        "admin2": admin2,
        "member": member,
        "member2": member2,
    }


# --- role change: what is allowed -----------------------------------------------------------------------------


def test_owner_promotes_member_to_admin_and_permissions_follow(team):
    org, member, campaign, primary = team["org"], team["member"], team["campaign"], team["primary"]
    assert org_codenames(member.user, org) == MEMBER_CODENAMES
    assert ws_codenames(member.user, primary) == set()

    member_role_change(membership=member, role=OrganizationRole.ADMIN, actor=team["owner"].user)

    member.refresh_from_db()
    assert member.role == OrganizationRole.ADMIN
    assert org_codenames(member.user, org) == ADMIN_CODENAMES
    # Admins are workspace admins everywhere, including workspaces they were never assigned to.
    assert "manage_workspace" in ws_codenames(member.user, primary)
    assert "manage_workspace" in ws_codenames(member.user, campaign)
    event = AuditEvent.objects.get(organization=org, action="membership.role_changed")
    assert event.actor == team["owner"].user
    assert event.before == {"role": "Member"}
    assert event.after == {"role": "Admin"}
    assert event.target_id == str(member.pk)


def test_admin_demotes_another_admin_and_loses_admin_permissions_in_same_call(team):
    org, admin2 = team["org"], team["admin2"]
    member_role_change(membership=admin2, role=OrganizationRole.MEMBER, actor=team["admin"].user)

    admin2.refresh_from_db()
    assert admin2.role == OrganizationRole.MEMBER
    assert org_codenames(admin2.user, org) == MEMBER_CODENAMES
    # Not assigned to any workspace: as a Member they reach none.
    assert ws_codenames(admin2.user, team["primary"]) == set()
    assert ws_codenames(admin2.user, team["campaign"]) == set()


def test_setting_the_same_role_is_a_no_op_without_audit(team):
    before = snapshot(team["org"])
    member_role_change(membership=team["member"], role=OrganizationRole.MEMBER, actor=team["owner"].user)
    assert snapshot(team["org"]) == before


def test_role_change_and_permissions_roll_back_together(team, monkeypatch):
    """Role, permission rows and the audit event are one transaction: if the audit write fails, nothing moved."""
    org, member = team["org"], team["member"]
    before = snapshot(org)

    def boom(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr("workspaces.services.members.audit_record", boom)
    with pytest.raises(RuntimeError):
        member_role_change(membership=member, role=OrganizationRole.ADMIN, actor=team["owner"].user)

    assert snapshot(org) == before
    assert org_codenames(member.user, org) == MEMBER_CODENAMES


# --- role change: refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor_key", ["owner", "admin"])
def test_nobody_promotes_to_owner(team, actor_key):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="ownership moves only by a transfer"):
        member_role_change(membership=team["member"], role=OrganizationRole.OWNER, actor=team[actor_key].user)
    assert snapshot(team["org"]) == before


@pytest.mark.parametrize("role", [OrganizationRole.ADMIN, OrganizationRole.MEMBER])
def test_admin_cannot_change_the_owner(team, role):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="Owner's membership cannot be changed"):
        member_role_change(membership=team["owner"], role=role, actor=team["admin"].user)
    assert snapshot(team["org"]) == before


@pytest.mark.parametrize(
    ("actor_key", "role"),
    [
        ("owner", OrganizationRole.ADMIN),
        ("owner", OrganizationRole.MEMBER),
        ("admin", OrganizationRole.MEMBER),
    ],
)
def test_nobody_changes_their_own_role(team, actor_key, role):
    """Including the Owner: self-demotion would leave the org without an Owner."""
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="cannot change your own membership"):
        member_role_change(membership=team[actor_key], role=role, actor=team[actor_key].user)
    assert snapshot(team["org"]) == before


@pytest.mark.parametrize("target_key", ["member2", "admin"])
def test_member_actor_is_refused(team, target_key):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="Only the Owner and Admins"):
        member_role_change(membership=team[target_key], role=OrganizationRole.ADMIN, actor=team["member"].user)
    with pytest.raises(ValidationError, match="Only the Owner and Admins"):
        member_remove(membership=team[target_key], actor=team["member"].user)
    assert snapshot(team["org"]) == before


def test_removed_admin_can_no_longer_act(team):
    admin = team["admin"]
    member_remove(membership=admin, actor=team["owner"].user)
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="Only the Owner and Admins"):
        member_role_change(membership=team["member"], role=OrganizationRole.ADMIN, actor=admin.user)
    assert snapshot(team["org"]) == before


def test_owner_of_another_org_cannot_change_a_membership(team):
    other = make_organization(name="Elsewhere")
    before = snapshot(team["org"])
    with pytest.raises(ValidationError):
        member_role_change(membership=team["member"], role=OrganizationRole.ADMIN, actor=other.created_by)
    with pytest.raises(ValidationError):
        member_remove(membership=team["member"], actor=other.created_by)
    assert snapshot(team["org"]) == before


def test_role_change_of_a_removed_member_is_refused(team):
    member = team["member"]
    member_remove(membership=member, actor=team["owner"].user)
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="no longer a member"):
        member_role_change(membership=member, role=OrganizationRole.ADMIN, actor=team["owner"].user)
    assert snapshot(team["org"]) == before


@pytest.mark.parametrize("role", [0, 2, 99])
def test_unknown_role_values_are_refused(team, role):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError):
        member_role_change(membership=team["member"], role=role, actor=team["owner"].user)
    assert snapshot(team["org"]) == before


# --- removal --------------------------------------------------------------------------------------------------


def test_removal_keeps_the_row_revokes_every_permission_and_is_audited(team):
    org, member, campaign = team["org"], team["member"], team["campaign"]
    assert ws_codenames(member.user, campaign) == {"view_workspace", "use_workspace"}

    member_remove(membership=member, actor=team["admin"].user)

    member.refresh_from_db()
    assert member.status == MembershipStatus.REMOVED
    assert member.removed_at is not None
    assert member.role == OrganizationRole.MEMBER  # kept for the record
    assert not OrganizationUserObjectPermission.objects.filter(user=member.user, content_object=org).exists()
    assert not WorkspaceUserObjectPermission.objects.filter(user=member.user, content_object__organization=org).exists()
    assert not WorkspaceMembership.objects.filter(user=member.user, workspace__organization=org).exists()
    event = AuditEvent.objects.get(organization=org, action="membership.removed")
    assert event.actor == team["admin"].user
    assert event.target_id == str(member.pk)
    assert event.before == {"role": "Member", "workspaces": {"Campaign": "member"}}
    assert event.after == {"status": "removed"}


def test_removal_leaves_other_members_untouched(team):
    org = team["org"]
    other_rows = sorted(
        OrganizationUserObjectPermission.objects.filter(content_object=org)
        .exclude(user=team["member"].user)
        .values_list("user_id", "permission_id")
    )
    member_remove(membership=team["member"], actor=team["owner"].user)
    assert (
        sorted(
            OrganizationUserObjectPermission.objects.filter(content_object=org).values_list("user_id", "permission_id")
        )
        == other_rows
    )


def test_removed_member_open_session_gets_404_on_the_next_request(team, client):
    org, member, campaign = team["org"], team["member"], team["campaign"]
    client.force_login(member.user)
    overview = reverse("workspaces:overview", kwargs={"org_slug": org.slug, "ws_slug": campaign.slug})
    assert client.get(overview).status_code == 200
    assert client.get(reverse("orgs:open", kwargs={"org_slug": org.slug})).status_code == 302

    member_remove(membership=member, actor=team["owner"].user)

    # Same client, same session cookie: no re-login needed for the revocation to bite.
    assert client.get(overview).status_code == 404
    assert client.get(reverse("orgs:open", kwargs={"org_slug": org.slug})).status_code == 404
    assert client.get(reverse("workspaces:list", kwargs={"org_slug": org.slug})).status_code == 404
    assert org.name not in client.get(reverse("orgs:list")).content.decode()


def test_removed_admin_open_session_loses_the_members_tab(team, client):
    org, admin = team["org"], team["admin"]
    client.force_login(admin.user)
    members_url = reverse("orgs:members", kwargs={"org_slug": org.slug})
    assert client.get(members_url).status_code == 200

    member_remove(membership=admin, actor=team["owner"].user)

    assert client.get(members_url).status_code == 404


def test_demoted_admin_open_session_loses_the_members_tab_but_keeps_the_org(team, client):
    org, admin = team["org"], team["admin"]
    client.force_login(admin.user)
    members_url = reverse("orgs:members", kwargs={"org_slug": org.slug})
    assert client.get(members_url).status_code == 200

    member_role_change(membership=admin, role=OrganizationRole.MEMBER, actor=team["owner"].user)

    assert client.get(members_url).status_code == 404
    assert client.get(reverse("workspaces:list", kwargs={"org_slug": org.slug})).status_code == 200


@pytest.mark.parametrize("actor_key", ["admin", "admin2"])
def test_the_owner_can_never_be_removed(team, actor_key):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="Owner's membership cannot be changed"):
        member_remove(membership=team["owner"], actor=team[actor_key].user)
    assert snapshot(team["org"]) == before


def test_the_only_owner_cannot_remove_or_demote_themselves():
    org = make_organization()
    owner = Membership.objects.get(organization=org)
    before = snapshot(org)
    with pytest.raises(ValidationError):
        member_remove(membership=owner, actor=owner.user)
    with pytest.raises(ValidationError):
        member_role_change(membership=owner, role=OrganizationRole.ADMIN, actor=owner.user)
    assert snapshot(org) == before
    owner.refresh_from_db()
    assert owner.is_owner


def test_nobody_removes_themselves(team):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="cannot change your own membership"):
        member_remove(membership=team["admin"], actor=team["admin"].user)
    assert snapshot(team["org"]) == before


def test_removing_twice_is_refused(team):
    member_remove(membership=team["member"], actor=team["owner"].user)
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="no longer a member"):
        member_remove(membership=team["member"], actor=team["owner"].user)
    assert snapshot(team["org"]) == before


def test_removal_rolls_back_with_its_audit_event(team, monkeypatch):
    before = snapshot(team["org"])

    def boom(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr("workspaces.services.members.audit_record", boom)
    with pytest.raises(RuntimeError):
        member_remove(membership=team["member"], actor=team["owner"].user)
    assert snapshot(team["org"]) == before


# --- ownership transfer ---------------------------------------------------------------------------------------


def owners(org) -> list[Membership]:
    return list(Membership.objects.filter(organization=org, role=OrganizationRole.OWNER))


@pytest.mark.parametrize("target_key", ["admin", "member"])
def test_transfer_makes_the_target_owner_and_the_old_owner_admin(team, target_key):
    org, owner, target = team["org"], team["owner"], team[target_key]

    result = ownership_transfer(organization=org, new_owner=target, actor=owner.user)

    assert result.pk == target.pk
    owner.refresh_from_db()
    target.refresh_from_db()
    assert target.role == OrganizationRole.OWNER
    assert owner.role == OrganizationRole.ADMIN
    assert owner.status == MembershipStatus.ACTIVE
    assert [m.pk for m in owners(org)] == [target.pk]
    assert org_codenames(target.user, org) == OWNER_CODENAMES
    assert org_codenames(owner.user, org) == ADMIN_CODENAMES
    event = AuditEvent.objects.get(organization=org, action="organization.ownership_transferred")
    assert event.actor == owner.user
    assert event.before == {"owner": owner.user.email}
    assert event.after == {"owner": target.user.email}


def test_new_owner_can_transfer_back_and_old_owner_can_no_longer(team):
    org, owner, admin = team["org"], team["owner"], team["admin"]
    ownership_transfer(organization=org, new_owner=admin, actor=owner.user)

    with pytest.raises(ValidationError, match="Only the Owner"):
        ownership_transfer(organization=org, new_owner=team["member"], actor=owner.user)

    ownership_transfer(organization=org, new_owner=owner, actor=admin.user)
    assert [m.pk for m in owners(org)] == [owner.pk]


@pytest.mark.parametrize("actor_key", ["admin", "member"])
def test_only_the_owner_transfers(team, actor_key):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="Only the Owner can transfer ownership"):
        ownership_transfer(organization=team["org"], new_owner=team["admin2"], actor=team[actor_key].user)
    assert snapshot(team["org"]) == before


def test_transfer_to_a_removed_member_is_refused(team):
    member_remove(membership=team["member"], actor=team["owner"].user)
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="active member"):
        ownership_transfer(organization=team["org"], new_owner=team["member"], actor=team["owner"].user)
    assert snapshot(team["org"]) == before


def test_transfer_to_a_member_of_another_org_is_refused(team):
    other = make_organization(name="Elsewhere")
    stranger = make_member(other)
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="active member"):
        ownership_transfer(organization=team["org"], new_owner=stranger, actor=team["owner"].user)
    assert snapshot(team["org"]) == before
    stranger.refresh_from_db()
    assert stranger.role == OrganizationRole.MEMBER


def test_transfer_to_oneself_is_refused(team):
    before = snapshot(team["org"])
    with pytest.raises(ValidationError, match="already the Owner"):
        ownership_transfer(organization=team["org"], new_owner=team["owner"], actor=team["owner"].user)
    assert snapshot(team["org"]) == before


def test_transfer_view_requires_confirmation_and_reports_success(team, client):
    org, owner, admin = team["org"], team["owner"], team["admin"]
    client.force_login(owner.user)
    url = reverse("orgs:ownership_transfer", kwargs={"org_slug": org.slug})

    response = client.post(url, {"new_owner": admin.pk})  # confirmation box not ticked
    assert response.status_code == 400
    assert [m.pk for m in owners(org)] == [owner.pk]

    response = client.post(url, {"new_owner": admin.pk, "confirm": "on"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("orgs:members", kwargs={"org_slug": org.slug})
    assert f"{admin.user.email} is now the Owner" in response.content.decode()
    assert [m.pk for m in owners(org)] == [admin.pk]
    # The old Owner's session lost the Owner-only pages at once.
    assert client.get(url).status_code == 404


def test_transfer_view_refuses_garbage_and_removed_targets(team, client):
    org, owner = team["org"], team["owner"]
    member_remove(membership=team["member"], actor=owner.user)
    client.force_login(owner.user)
    url = reverse("orgs:ownership_transfer", kwargs={"org_slug": org.slug})
    before = snapshot(org)
    for new_owner in ["abc", "999999", str(team["member"].pk), str(owner.pk)]:
        response = client.post(url, {"new_owner": new_owner, "confirm": "on"})
        assert response.status_code == 400, new_owner
    assert snapshot(org) == before
