"""Workspace management from the browser: create, edit, delete (archive) and restore; workspace admins manage
their own workspace only; a member's workspaces are replaced in one step; bad input never becomes a 500.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import AuditEvent, Membership, OrganizationRole
from qolaba.lifecycle import workspace_archive, workspace_create, workspace_restore
from tests.factories import make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole, WorkspaceUserObjectPermission
from workspaces.services import member_remove, member_workspaces_set, workspace_update

pytestmark = pytest.mark.django_db


def ws_codenames(user, ws) -> set[str]:
    rows = WorkspaceUserObjectPermission.objects.filter(user=user, content_object=ws)
    return set(rows.values_list("permission__codename", flat=True))


def assignments(user, org) -> dict[str, str]:
    rows = WorkspaceMembership.objects.filter(user=user, workspace__organization=org)
    return dict(rows.values_list("workspace__name", "role"))


@pytest.fixture
def s():
    org = make_organization(name="Northwind")
    primary = Workspace.objects.get(organization=org, is_primary=True)
    campaign = make_workspace(org, name="Campaign")
    launch = make_workspace(org, name="Launch")
    admin = make_member(org, role=OrganizationRole.ADMIN)
    ws_admin = make_member(org, workspaces={campaign: WorkspaceRole.ADMIN, primary: WorkspaceRole.VIEWER})
    member = make_member(org, workspaces={campaign: WorkspaceRole.MEMBER})
    other = make_member(org)
    return {
        "org": org,
        "owner": org.created_by,
        "admin": admin,
        "ws_admin": ws_admin,
        "member": member,
        "other": other,
        "primary": primary,
        "campaign": campaign,
        "launch": launch,
    }


def url(name: str, s, ws=None, **kwargs) -> str:
    kwargs["org_slug"] = s["org"].slug
    if ws is not None:
        kwargs["ws_slug"] = ws.slug
    return reverse(f"workspaces:{name}", kwargs=kwargs)


def overview(s, ws) -> str:
    return url("overview", s, ws)


# --- create ---------------------------------------------------------------------------------------------------


def test_create_view_makes_the_workspace_and_says_so(s, client):
    client.force_login(s["admin"].user)
    response = client.post(url("workspace_create", s), {"name": "  Nike Spring  ", "description": " Ads "}, follow=True)
    ws = Workspace.objects.get(organization=s["org"], name="Nike Spring")
    assert ws.description == "Ads"
    assert ws.created_by == s["admin"].user
    assert response.redirect_chain[-1][0] == url("settings", s, ws)
    assert "Workspace “Nike Spring” created." in response.content.decode()
    # Owner and Admins reach it at once; a Member does not.
    assert "manage_workspace" in ws_codenames(s["owner"], ws)
    assert ws_codenames(s["member"].user, ws) == set()


@pytest.mark.parametrize("name", ["campaign", "CAMPAIGN", " Campaign ", "primary workspace"])
def test_create_with_a_live_name_in_any_case_is_a_form_error(s, client, name):
    client.force_login(s["owner"])
    count = Workspace.objects.filter(organization=s["org"]).count()
    response = client.post(url("workspace_create", s), {"name": name, "description": ""})
    assert response.status_code == 400
    assert "already exists" in " ".join(response.context["form"].errors["name"])
    assert Workspace.objects.filter(organization=s["org"]).count() == count


def test_create_with_the_name_of_an_archived_workspace_is_allowed(s):
    workspace_archive(workspace=s["launch"], actor=s["owner"])
    ws = workspace_create(organization=s["org"], name="launch", created_by=s["owner"])
    assert ws.slug != s["launch"].slug


def test_the_same_name_is_fine_in_another_org(s):
    other = make_organization(name="Elsewhere")
    assert workspace_create(organization=other, name="Campaign", created_by=other.created_by).name == "Campaign"


@pytest.mark.parametrize(
    "data", [{"name": ""}, {"name": "   "}, {"name": "x" * 81}, {"name": "ok", "description": "d" * 501}]
)
def test_create_bad_input_is_a_form_error(s, client, data):
    client.force_login(s["owner"])
    count = Workspace.objects.filter(organization=s["org"]).count()
    response = client.post(url("workspace_create", s), data)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert Workspace.objects.filter(organization=s["org"]).count() == count


# --- edit -----------------------------------------------------------------------------------------------------


def test_edit_renames_and_describes(s, client):
    client.force_login(s["admin"].user)
    response = client.post(
        url("settings", s, s["campaign"]), {"name": "Campaign 2026", "description": "Spring"}, follow=True
    )
    s["campaign"].refresh_from_db()
    assert (s["campaign"].name, s["campaign"].description) == ("Campaign 2026", "Spring")
    assert "Workspace saved." in response.content.decode()


def test_the_primary_workspace_can_be_renamed(s, client):
    client.force_login(s["owner"])
    client.post(url("settings", s, s["primary"]), {"name": "Head office", "description": ""})
    s["primary"].refresh_from_db()
    assert s["primary"].name == "Head office"
    assert s["primary"].is_primary


def test_edit_to_another_live_name_is_a_form_error_but_own_name_in_other_case_is_fine(s, client):
    client.force_login(s["owner"])
    response = client.post(url("settings", s, s["campaign"]), {"name": "LAUNCH", "description": ""})
    assert response.status_code == 400
    assert "already exists" in " ".join(response.context["form"].errors["name"])
    s["campaign"].refresh_from_db()
    assert s["campaign"].name == "Campaign"

    client.post(url("settings", s, s["campaign"]), {"name": "CAMPAIGN", "description": ""})
    s["campaign"].refresh_from_db()
    assert s["campaign"].name == "CAMPAIGN"


def test_edit_blank_name_is_refused(s):
    with pytest.raises(ValidationError):
        workspace_update(workspace=s["campaign"], actor=s["owner"], name="  ", description="")


# --- archive --------------------------------------------------------------------------------------------------


def test_delete_view_confirms_then_archives_and_revokes_access(s, client):
    member_client = Client()
    member_client.force_login(s["member"].user)
    assert member_client.get(overview(s, s["campaign"])).status_code == 200

    client.force_login(s["admin"].user)
    confirm = client.get(url("workspace_archive", s, s["campaign"]))
    assert confirm.status_code == 200
    assert "Delete the workspace “Campaign”?" in confirm.content.decode()
    assert Workspace.objects.get(pk=s["campaign"].pk).archived_at is None

    response = client.post(url("workspace_archive", s, s["campaign"]), follow=True)
    assert response.redirect_chain[-1][0] == url("list", s)
    assert "Workspace “Campaign” deleted." in response.content.decode()
    s["campaign"].refresh_from_db()
    assert s["campaign"].archived_at is not None
    assert member_client.get(overview(s, s["campaign"])).status_code == 404
    assert client.get(overview(s, s["campaign"])).status_code == 404  # nobody opens an archived workspace
    assert not WorkspaceUserObjectPermission.objects.filter(content_object=s["campaign"]).exists()
    # The assignment is kept so a restore brings the members back.
    assert assignments(s["member"].user, s["org"]) == {"Campaign": "member"}
    # It appears among the deleted workspaces, with its restore button.
    page = client.get(url("list", s)).content.decode()
    assert "Deleted workspaces" in page
    assert url("workspace_restore", s, workspace_id=s["campaign"].pk) in page


def test_the_delete_dialog_and_the_danger_zone_say_what_deleting_does(s, client, settings):
    """They promised "reports" that did not exist and left out that the credits go back to the Primary."""
    settings.ORGANIZATION_RETENTION_DAYS = 12
    client.force_login(s["admin"].user)
    texts = [
        client.get(url("workspace_archive", s, s["campaign"])).content.decode(),
        client.get(url("settings", s, s["campaign"])).content.decode(),
    ]
    for text in texts:
        assert "for reports" not in text
        assert "remaining credits return to" in text
        assert "the Primary Workspace" in text
    assert "restore it within 12 days" in texts[0]


def test_the_primary_workspace_cannot_be_deleted(s, client):
    with pytest.raises(ValidationError, match="Primary Workspace cannot be deleted"):
        workspace_archive(workspace=s["primary"], actor=s["owner"])
    client.force_login(s["owner"])
    response = client.post(url("workspace_archive", s, s["primary"]))
    assert response.status_code == 400
    assert "The Primary Workspace cannot be deleted." in response.content.decode()
    s["primary"].refresh_from_db()
    assert s["primary"].archived_at is None
    # And the list does not offer it.
    assert url("workspace_archive", s, s["primary"]) not in client.get(url("list", s)).content.decode()


def test_archiving_twice_is_refused(s):
    workspace_archive(workspace=s["launch"], actor=s["owner"])
    with pytest.raises(ValidationError, match="already deleted"):
        workspace_archive(workspace=s["launch"], actor=s["owner"])


# --- restore --------------------------------------------------------------------------------------------------


def test_restore_within_the_window_brings_members_back(s, client):
    start = now()
    with time_machine.travel(start, tick=False):
        workspace_archive(workspace=s["campaign"], actor=s["owner"])
    member = s["member"].user
    assert ws_codenames(member, s["campaign"]) == set()

    with time_machine.travel(start + timedelta(days=settings.ORGANIZATION_RETENTION_DAYS - 1), tick=False):
        client.force_login(s["owner"])  # a fresh session: the old one would have expired by then
        response = client.post(url("workspace_restore", s, workspace_id=s["campaign"].pk), follow=True)
    assert "Workspace “Campaign” restored with its members." in response.content.decode()
    s["campaign"].refresh_from_db()
    assert s["campaign"].archived_at is None
    assert ws_codenames(member, s["campaign"]) == {"view_workspace", "use_workspace"}
    assert "manage_workspace" in ws_codenames(s["ws_admin"].user, s["campaign"])
    assert "manage_workspace" in ws_codenames(s["admin"].user, s["campaign"])
    assert AuditEvent.objects.filter(organization=s["org"], action="workspace.restored", actor=s["owner"]).count() == 1


def test_restore_after_the_window_is_refused(s, client):
    start = now()
    with time_machine.travel(start, tick=False):
        workspace_archive(workspace=s["campaign"], actor=s["owner"])
    with time_machine.travel(start + timedelta(days=settings.ORGANIZATION_RETENTION_DAYS, seconds=1), tick=False):
        client.force_login(s["owner"])
        page = client.get(url("list", s)).content.decode()
        assert "Past the retention window" in page
        response = client.post(url("workspace_restore", s, workspace_id=s["campaign"].pk), follow=True)
    assert "deleted too long ago to be restored" in response.content.decode()
    s["campaign"].refresh_from_db()
    assert s["campaign"].archived_at is not None
    assert ws_codenames(s["member"].user, s["campaign"]) == set()


def test_restore_is_refused_when_a_live_workspace_took_the_name(s, client):
    workspace_archive(workspace=s["campaign"], actor=s["owner"])
    workspace_create(organization=s["org"], name="CAMPAIGN", created_by=s["owner"])
    client.force_login(s["owner"])
    response = client.post(url("workspace_restore", s, workspace_id=s["campaign"].pk), follow=True)
    assert "Another workspace is now called “Campaign”; rename it first." in response.content.decode()
    s["campaign"].refresh_from_db()
    assert s["campaign"].archived_at is not None


def test_restore_of_a_live_or_foreign_or_unknown_workspace_is_404(s, client):
    client.force_login(s["owner"])
    assert client.post(url("workspace_restore", s, workspace_id=s["campaign"].pk)).status_code == 404
    assert client.post(url("workspace_restore", s, workspace_id=987654)).status_code == 404
    other = make_organization(name="Elsewhere")
    foreign = make_workspace(other, name="Theirs")
    workspace_archive(workspace=foreign, actor=other.created_by)
    assert client.post(url("workspace_restore", s, workspace_id=foreign.pk)).status_code == 404
    foreign.refresh_from_db()
    assert foreign.archived_at is not None


def test_restoring_a_live_workspace_is_refused_by_the_service(s):
    with pytest.raises(ValidationError, match="not deleted"):
        workspace_restore(workspace=s["campaign"], actor=s["owner"])


# --- workspace admins -----------------------------------------------------------------------------------------


def test_workspace_admin_manages_their_own_workspace(s, client):
    ws_admin, campaign = s["ws_admin"], s["campaign"]
    client.force_login(ws_admin.user)

    page = client.get(url("settings", s, campaign))
    assert page.status_code == 200
    assert "Delete workspace" not in page.content.decode()  # deleting is for Owner/Admins

    client.post(url("settings", s, campaign), {"name": "Campaign HQ", "description": "Ours"})
    campaign.refresh_from_db()
    assert campaign.name == "Campaign HQ"

    response = client.post(
        url("workspace_member_set", s, campaign), {"member": s["other"].pk, "role": "viewer"}, follow=True
    )
    assert f"{s['other'].user.email} is now viewer of Campaign HQ." in response.content.decode()
    assert assignments(s["other"].user, s["org"]) == {"Campaign HQ": "viewer"}
    assert ws_codenames(s["other"].user, campaign) == {"view_workspace"}

    response = client.post(url("workspace_member_remove", s, campaign, user_id=s["member"].user.pk), follow=True)
    assert "no longer has access to Campaign HQ" in response.content.decode()
    assert assignments(s["member"].user, s["org"]) == {}
    assert ws_codenames(s["member"].user, campaign) == set()


def test_workspace_admin_cannot_manage_another_workspace(s, client):
    client.force_login(s["ws_admin"].user)
    before = (
        sorted(
            WorkspaceMembership.objects.filter(workspace__organization=s["org"]).values_list(
                "user_id", "workspace_id", "role"
            )
        ),
        sorted(Workspace.objects.filter(organization=s["org"]).values_list("pk", "name", "archived_at")),
    )
    # A viewer of the Primary Workspace, a stranger to Launch.
    for ws in [s["primary"], s["launch"]]:
        assert client.get(url("settings", s, ws)).status_code == 404
        assert client.post(url("settings", s, ws), {"name": "Hijacked", "description": ""}).status_code == 404
        assert (
            client.post(url("workspace_member_set", s, ws), {"member": s["other"].pk, "role": "admin"}).status_code
            == 404
        )
        assert client.post(url("workspace_archive", s, ws)).status_code == 404
    assert (
        client.post(url("workspace_member_remove", s, s["primary"], user_id=s["ws_admin"].user.pk)).status_code == 404
    )
    after = (
        sorted(
            WorkspaceMembership.objects.filter(workspace__organization=s["org"]).values_list(
                "user_id", "workspace_id", "role"
            )
        ),
        sorted(Workspace.objects.filter(organization=s["org"]).values_list("pk", "name", "archived_at")),
    )
    assert after == before


def test_workspace_admin_has_no_workspaces_tab_management(s, client):
    client.force_login(s["ws_admin"].user)
    workspace_archive(workspace=s["launch"], actor=s["owner"])
    assert client.get(url("workspace_create", s)).status_code == 404
    assert client.post(url("workspace_create", s), {"name": "Mine"}).status_code == 404
    assert client.post(url("workspace_archive", s, s["campaign"])).status_code == 404
    assert client.post(url("workspace_restore", s, workspace_id=s["launch"].pk)).status_code == 404
    page = client.get(url("list", s))
    assert page.status_code == 200
    body = page.content.decode()
    assert "New workspace" not in body
    assert "Deleted workspaces" not in body
    # They see only the workspaces they can open.
    assert [ws.name for ws in page.context["workspaces"]] == ["Primary Workspace", "Campaign"]
    assert not Workspace.objects.filter(name="Mine").exists()
    s["campaign"].refresh_from_db()
    assert s["campaign"].archived_at is None


def test_workspace_admin_cannot_assign_org_admins_or_foreign_people(s, client):
    client.force_login(s["ws_admin"].user)
    other_org_member = make_member(make_organization(name="Elsewhere"))
    for member_id in [s["admin"].pk, other_org_member.pk, Membership.objects.get(user=s["owner"]).pk]:
        response = client.post(url("workspace_member_set", s, s["campaign"]), {"member": member_id, "role": "admin"})
        assert response.status_code == 400
        assert "member" in response.context["member_form"].errors
    assert not WorkspaceMembership.objects.filter(user__in=[s["admin"].user, other_org_member.user]).exists()


@pytest.mark.parametrize(
    "data",
    [
        {"member": "abc", "role": "member"},
        {"member": "987654", "role": "member"},
        {"member": "", "role": "member"},
        {"role": "admin"},
        {"member": "__OTHER__", "role": "owner"},
        {"member": "__OTHER__", "role": ""},
    ],
)
def test_workspace_member_set_bad_input_is_a_form_error(s, client, data):
    data = {k: (str(s["other"].pk) if v == "__OTHER__" else v) for k, v in data.items()}
    client.force_login(s["owner"])
    response = client.post(url("workspace_member_set", s, s["campaign"]), data)
    assert response.status_code == 400
    assert response.context["member_form"].errors
    assert assignments(s["other"].user, s["org"]) == {}


def test_workspace_member_remove_of_an_unassigned_or_unknown_user_is_404(s, client):
    client.force_login(s["owner"])
    assert client.post(url("workspace_member_remove", s, s["campaign"], user_id=s["other"].user.pk)).status_code == 404
    assert client.post(url("workspace_member_remove", s, s["campaign"], user_id=987654)).status_code == 404


def test_settings_people_panel_lists_admins_and_assigned_members(s, client):
    member_remove(membership=s["member"], actor=s["owner"])
    client.force_login(s["owner"])
    people = client.get(url("settings", s, s["campaign"])).context["people"]
    listed = {(p["user"].email, p["role"], p["via"]) for p in people}
    assert listed == {
        (s["owner"].email, "admin", "Owner"),
        (s["admin"].user.email, "admin", "Admin"),
        (s["ws_admin"].user.email, "admin", "Assigned"),
    }


# --- a member's workspaces ------------------------------------------------------------------------------------


def test_membership_workspaces_set_replaces_the_assignments(s):
    member = s["member"]
    member_workspaces_set(
        membership=member,
        assignments={s["campaign"]: WorkspaceRole.MEMBER, s["launch"]: WorkspaceRole.VIEWER},
        actor=s["owner"],
    )
    assert assignments(member.user, s["org"]) == {"Campaign": "member", "Launch": "viewer"}

    member_workspaces_set(
        membership=member,
        assignments={s["launch"]: WorkspaceRole.ADMIN, s["primary"]: WorkspaceRole.MEMBER},
        actor=s["admin"].user,
    )

    assert assignments(member.user, s["org"]) == {"Launch": "admin", "Primary Workspace": "member"}
    assert ws_codenames(member.user, s["campaign"]) == set()
    assert ws_codenames(member.user, s["launch"]) == {
        "view_workspace",
        "use_workspace",
        "manage_workspace",
        "view_workspace_usage",
    }
    assert ws_codenames(member.user, s["primary"]) == {"view_workspace", "use_workspace"}
    event = (
        AuditEvent.objects.filter(organization=s["org"], action="membership.workspaces_changed").order_by("-id").first()
    )
    assert event.actor == s["admin"].user
    assert event.before == {"Campaign": "member", "Launch": "viewer"}
    assert event.after == {"Launch": "admin", "Primary Workspace": "member"}

    member_workspaces_set(membership=member, assignments={}, actor=s["owner"])
    assert assignments(member.user, s["org"]) == {}
    assert not WorkspaceUserObjectPermission.objects.filter(user=member.user).exists()


def test_membership_workspaces_set_without_change_writes_no_event(s):
    count = AuditEvent.objects.filter(organization=s["org"]).count()
    member_workspaces_set(membership=s["member"], assignments={s["campaign"]: "member"}, actor=s["owner"])
    assert AuditEvent.objects.filter(organization=s["org"]).count() == count


def test_membership_workspaces_set_keeps_assignments_to_archived_workspaces(s):
    workspace_archive(workspace=s["campaign"], actor=s["owner"])
    member_workspaces_set(membership=s["member"], assignments={s["launch"]: "member"}, actor=s["owner"])
    assert assignments(s["member"].user, s["org"]) == {"Campaign": "member", "Launch": "member"}


@pytest.mark.parametrize("target", ["owner", "admin"])
def test_membership_workspaces_set_refuses_owners_and_admins(s, target):
    membership = Membership.objects.get(user=s["owner"]) if target == "owner" else s["admin"]
    with pytest.raises(ValidationError, match="Owners and Admins can open every workspace"):
        member_workspaces_set(membership=membership, assignments={s["launch"]: "viewer"}, actor=s["owner"])
    assert not WorkspaceMembership.objects.filter(user=membership.user).exists()


@pytest.mark.parametrize(
    ("actor_key", "message"),
    [("ws_admin", "Only the Owner and Admins"), ("member", "Only the Owner and Admins")],
)
def test_membership_workspaces_set_refuses_non_admin_actors(s, actor_key, message):
    with pytest.raises(ValidationError, match=message):
        member_workspaces_set(membership=s["other"], assignments={s["campaign"]: "admin"}, actor=s[actor_key].user)
    assert assignments(s["other"].user, s["org"]) == {}


def test_membership_workspaces_set_refuses_bad_targets_and_roles(s):
    other_org = make_organization(name="Elsewhere")
    foreign = Workspace.objects.get(organization=other_org, is_primary=True)
    workspace_archive(workspace=s["launch"], actor=s["owner"])
    cases = [
        ({foreign: "member"}, "workspaces of this organization"),
        ({s["launch"]: "member"}, "workspaces of this organization"),
        ({s["campaign"]: "owner"}, "Choose admin, member or viewer"),
    ]
    for mapping, message in cases:
        with pytest.raises(ValidationError, match=message):
            member_workspaces_set(membership=s["member"], assignments=mapping, actor=s["owner"])
    assert assignments(s["member"].user, s["org"]) == {"Campaign": "member"}
    member_remove(membership=s["member"], actor=s["owner"])
    removed = Membership.objects.get(pk=s["member"].pk)
    with pytest.raises(ValidationError, match="no longer a member"):
        member_workspaces_set(membership=removed, assignments={s["campaign"]: "member"}, actor=s["owner"])
    assert assignments(s["member"].user, s["org"]) == {}


def test_membership_workspaces_set_rereads_the_membership(s):
    stale = Membership.objects.get(pk=s["member"].pk)  # e.g. loaded by a view just before a removal
    member_remove(membership=s["member"], actor=s["owner"])
    with pytest.raises(ValidationError, match="no longer a member"):
        member_workspaces_set(membership=stale, assignments={s["launch"]: "admin"}, actor=s["owner"])
    assert assignments(s["member"].user, s["org"]) == {}


def test_member_workspaces_view_saves_and_says_so(s, client):
    client.force_login(s["admin"].user)
    target = reverse("orgs:member_workspaces_set", kwargs={"org_slug": s["org"].slug, "membership_id": s["other"].pk})
    response = client.post(
        target,
        {f"ws_{s['campaign'].pk}": "viewer", f"ws_{s['launch'].pk}": "admin", f"ws_{s['primary'].pk}": ""},
        follow=True,
    )
    assert f"Workspaces of {s['other'].user.email} updated." in response.content.decode()
    assert assignments(s["other"].user, s["org"]) == {"Campaign": "viewer", "Launch": "admin"}


@pytest.mark.parametrize("value", ["owner", "1", "<script>"])
def test_member_workspaces_view_bad_role_is_a_form_error(s, client, value):
    client.force_login(s["owner"])
    target = reverse("orgs:member_workspaces_set", kwargs={"org_slug": s["org"].slug, "membership_id": s["member"].pk})
    response = client.post(target, {f"ws_{s['launch'].pk}": value})
    assert response.status_code == 400
    assert response.context["workspaces_form"].errors
    assert assignments(s["member"].user, s["org"]) == {"Campaign": "member"}


def test_member_workspaces_view_ignores_unknown_workspace_ids(s, client):
    other_org = make_organization(name="Elsewhere")
    foreign = Workspace.objects.get(organization=other_org, is_primary=True)
    client.force_login(s["owner"])
    target = reverse("orgs:member_workspaces_set", kwargs={"org_slug": s["org"].slug, "membership_id": s["member"].pk})
    client.post(
        target,
        {f"ws_{s['campaign'].pk}": "member", f"ws_{foreign.pk}": "admin", "ws_abc": "admin", "ws_987654": "admin"},
    )
    assert assignments(s["member"].user, s["org"]) == {"Campaign": "member"}
    assert not WorkspaceMembership.objects.filter(workspace=foreign).exists()


def test_member_workspaces_view_for_an_admin_is_a_clear_error(s, client):
    client.force_login(s["owner"])
    target = reverse("orgs:member_workspaces_set", kwargs={"org_slug": s["org"].slug, "membership_id": s["admin"].pk})
    response = client.post(target, {f"ws_{s['launch'].pk}": "viewer"})
    assert response.status_code == 400
    # The page offers no workspace form for an Admin, and says why.
    assert "Admins can open every workspace as workspace admins" in response.content.decode()
    assert not WorkspaceMembership.objects.filter(user=s["admin"].user).exists()


@pytest.mark.parametrize("role", ["abc", "", "15", "99", "8.0"])
def test_member_role_view_bad_value_is_a_form_error(s, client, role):
    client.force_login(s["owner"])
    target = reverse("orgs:member_role_change", kwargs={"org_slug": s["org"].slug, "membership_id": s["member"].pk})
    response = client.post(target, {"role": role})
    assert response.status_code == 400
    s["member"].refresh_from_db()
    assert s["member"].role == OrganizationRole.MEMBER


def test_member_role_view_service_refusal_shows_on_the_form(s, client):
    client.force_login(s["admin"].user)
    owner_membership = Membership.objects.get(user=s["owner"])
    target = reverse(
        "orgs:member_role_change", kwargs={"org_slug": s["org"].slug, "membership_id": owner_membership.pk}
    )
    response = client.post(target, {"role": OrganizationRole.MEMBER})
    assert response.status_code == 400
    assert "This is the Owner. Only the Owner can hand the organization over" in response.content.decode()
    owner_membership.refresh_from_db()
    assert owner_membership.role == OrganizationRole.OWNER


def test_member_pages_of_unknown_or_foreign_members_are_404(s, client):
    foreign = make_member(make_organization(name="Elsewhere"))
    client.force_login(s["owner"])
    for membership_id in [987654, foreign.pk]:
        kwargs = {"org_slug": s["org"].slug, "membership_id": membership_id}
        assert client.get(reverse("orgs:member", kwargs=kwargs)).status_code == 404
        assert client.post(reverse("orgs:member_role_change", kwargs=kwargs), {"role": 8}).status_code == 404
        assert client.post(reverse("orgs:member_workspaces_set", kwargs=kwargs), {}).status_code == 404
        assert client.post(reverse("orgs:member_remove", kwargs=kwargs)).status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == OrganizationRole.MEMBER
    assert foreign.status == "active"


def test_member_remove_view_confirms_then_removes(s, client):
    client.force_login(s["admin"].user)
    kwargs = {"org_slug": s["org"].slug, "membership_id": s["member"].pk}
    confirm = client.get(reverse("orgs:member_remove", kwargs=kwargs))
    assert f"Remove {s['member'].user.email}?" in confirm.content.decode()
    s["member"].refresh_from_db()
    assert s["member"].status == "active"
    response = client.post(reverse("orgs:member_remove", kwargs=kwargs), follow=True)
    assert f"{s['member'].user.email} was removed." in response.content.decode()
    s["member"].refresh_from_db()
    assert s["member"].status == "removed"


def test_member_remove_view_refusal_is_shown(s, client):
    client.force_login(s["admin"].user)
    kwargs = {"org_slug": s["org"].slug, "membership_id": Membership.objects.get(user=s["owner"]).pk}
    response = client.post(reverse("orgs:member_remove", kwargs=kwargs))
    assert response.status_code == 400
    assert "cannot be changed" in response.content.decode()
    assert Membership.objects.get(user=s["owner"]).status == "active"


def test_overview_links_to_settings_only_for_those_who_manage_the_workspace(client):
    org = make_organization()
    target = make_workspace(org, name="Settings Link Target")
    admin = make_member(org, workspaces={target: WorkspaceRole.ADMIN}).user
    member = make_member(org, workspaces={target: WorkspaceRole.MEMBER}).user
    settings_url = f"/o/{org.slug}/w/{target.slug}/settings/"
    overview_url = f"/o/{org.slug}/w/{target.slug}/"
    client.force_login(admin)
    assert settings_url in client.get(overview_url).content.decode()
    client.force_login(member)
    assert settings_url not in client.get(overview_url).content.decode()


def test_the_member_picker_prompts_instead_of_dashes(s, client):
    client.force_login(s["admin"].user)
    page = client.get(url("settings", s, s["campaign"])).content.decode()
    assert '<option value="" selected>Choose a member…</option>' in page
    assert "---------" not in page
