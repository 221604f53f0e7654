"""The staff admin: finding organizations, and adding organizations/workspaces through the services."""

from __future__ import annotations

import re

import pytest

from orgs.models import AuditEvent, Membership, Organization, OrganizationRole, User
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole, WorkspaceUserObjectPermission
from workspaces.roles import WORKSPACE_ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    superuser = User.objects.create_superuser("staff@qolaba.test", "staff-password-1")
    client.force_login(superuser)
    return superuser


def management_form(html: str) -> dict[str, str]:
    """The hidden inline-formset management fields of an admin form, as the browser would post them."""
    fields = {}
    for match in re.finditer(
        r'<input type="hidden" name="([^"]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*>', html
    ):
        value = re.search(r'value="([^"]*)"', match.group(0))
        fields[match.group(1)] = value.group(1) if value else ""
    return fields


def ws_codenames(user, ws: Workspace) -> set[str]:
    rows = WorkspaceUserObjectPermission.objects.filter(user=user, content_object=ws)
    return set(rows.values_list("permission__codename", flat=True))


# --- who may open the admin ---------------------------------------------------------------------


def test_admin_is_closed_to_non_staff(client):
    org = make_organization()
    client.force_login(org.created_by)  # an Owner is not staff
    response = client.get("/admin/orgs/organization/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


# --- changelists --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/orgs/organization/",
        "/admin/orgs/membership/",
        "/admin/orgs/auditevent/",
        "/admin/workspaces/workspace/",
        "/admin/orgs/user/",
    ],
)
def test_staff_opens_the_changelists(client, staff, url):
    org = make_organization(name="Northwind Creative")
    make_member(org, workspaces={make_workspace(org, name="Nike Spring"): WorkspaceRole.MEMBER})
    response = client.get(url)
    assert response.status_code == 200


def test_changelists_list_the_rows(client, staff):
    org = make_organization(name="Northwind Creative")
    member = make_member(org)
    make_workspace(org, name="Nike Spring")
    assert "Northwind Creative" in client.get("/admin/orgs/organization/").content.decode()
    assert member.user.email in client.get("/admin/orgs/membership/").content.decode()
    assert "Nike Spring" in client.get("/admin/workspaces/workspace/").content.decode()
    assert member.user.email in client.get("/admin/orgs/user/").content.decode()
    assert "workspace.created" in client.get("/admin/orgs/auditevent/").content.decode()


def test_organization_search_by_member_email_finds_the_org(client, staff):
    target = make_organization(name="Northwind Creative")
    make_member(target, user=UserFactory(email="maya.designer@example.com"))
    make_organization(name="Bluepeak Consulting")

    response = client.get("/admin/orgs/organization/", {"q": "MAYA.designer@example"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [target]
    # The member count is shown, counted once per org (no duplicates from the join).
    assert response.context["cl"].result_list[0].active_members == 2


def northwind_with_four_members() -> Organization:
    org = make_organization(name="Northwind Creative", owner=UserFactory(email="owner@northwind.test"))
    for name in ("ana", "ben", "cyd"):
        make_member(org, user=UserFactory(email=f"{name}@northwind.test"))
    make_organization(name="Bluepeak", owner=UserFactory(email="owner@bluepeak.test"))
    return org


def test_organization_search_matching_many_members_lists_the_org_once(client, staff):
    org = northwind_with_four_members()
    response = client.get("/admin/orgs/organization/", {"q": "northwind.test"})
    assert list(response.context["cl"].result_list) == [org]
    assert response.context["cl"].result_count == 1


def test_organization_search_matching_many_members_shows_the_true_member_count(client, staff):
    northwind_with_four_members()
    response = client.get("/admin/orgs/organization/", {"q": "northwind.test"})
    assert [o.active_members for o in response.context["cl"].result_list] == [4]


def test_user_admin_add_stores_lowercase_email_and_refuses_a_case_variant(client, staff):
    add_url = "/admin/orgs/user/add/"
    data = {"email": "New.Person@Example.com", "password1": "a-long-passphrase-42", "password2": "a-long-passphrase-42"}
    data["usable_password"] = "true"
    response = client.post(add_url, data)
    assert response.status_code == 302
    assert User.objects.filter(email="new.person@example.com").exists()

    response = client.post(add_url, {**data, "email": "NEW.PERSON@example.com"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="new.person@example.com").count() == 1


def test_organization_changelist_shows_active_member_counts(client, staff):
    org = make_organization()
    make_member(org)
    make_member(org, role=OrganizationRole.ADMIN)
    response = client.get("/admin/orgs/organization/")
    assert [o.active_members for o in response.context["cl"].result_list] == [3]


def test_organization_change_page_opens_with_its_memberships(client, staff):
    org = make_organization()
    member = make_member(org)
    response = client.get(f"/admin/orgs/organization/{org.pk}/change/")
    assert response.status_code == 200
    assert member.user.email in response.content.decode()


# --- adding an organization ---------------------------------------------------------------------


def test_add_organization_form_has_name_timezone_and_owner(client, staff):
    response = client.get("/admin/orgs/organization/add/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.fields) == ["name", "timezone", "owner"]


def test_add_organization_through_admin_goes_through_the_service(client, staff, django_capture_on_commit_callbacks):
    owner = UserFactory()
    add_page = client.get("/admin/orgs/organization/add/").content.decode()
    data = {"name": "Harbor Bank", "timezone": "America/New_York", "owner": owner.pk, **management_form(add_page)}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/admin/orgs/organization/add/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    org = Organization.objects.get(name="Harbor Bank")
    assert (org.slug, org.timezone, org.created_by) == ("harbor-bank", "America/New_York", owner)
    assert [(m.user, m.role) for m in Membership.objects.filter(organization=org)] == [(owner, OrganizationRole.OWNER)]
    assert [ws.is_primary for ws in Workspace.objects.filter(organization=org)] == [True]
    assert Organization.objects.for_user(owner).get() == org
    assert AuditEvent.objects.filter(organization=org, action="organization.created").exists()
    assert len(callbacks) == 1  # the welcome email, on commit
    assert Organization.objects.count() == 1


def test_add_organization_with_unknown_timezone_is_refused(client, staff):
    owner = UserFactory()
    response = client.post(
        "/admin/orgs/organization/add/", {"name": "X", "timezone": "Nowhere/Land", "owner": owner.pk}
    )
    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors
    assert not Organization.objects.exists()


def test_delete_is_not_offered_for_organizations(client, staff):
    org = make_organization()
    assert client.get(f"/admin/orgs/organization/{org.pk}/delete/").status_code == 403
    assert Organization.objects.filter(pk=org.pk).exists()


def test_membership_and_audit_admin_are_read_only(client, staff):
    org = make_organization()
    membership = Membership.objects.get(organization=org)
    event = AuditEvent.objects.filter(organization=org).first()
    assert client.get("/admin/orgs/membership/add/").status_code == 403
    assert client.get(f"/admin/orgs/membership/{membership.pk}/delete/").status_code == 403
    assert client.get("/admin/orgs/auditevent/add/").status_code == 403
    assert client.get(f"/admin/orgs/auditevent/{event.pk}/delete/").status_code == 403
    # Viewing is allowed, changing is not.
    assert client.get(f"/admin/orgs/auditevent/{event.pk}/change/").status_code == 200
    client.post(f"/admin/orgs/membership/{membership.pk}/change/", {"role": OrganizationRole.MEMBER})
    membership.refresh_from_db()
    assert membership.role == OrganizationRole.OWNER


# --- workspaces ---------------------------------------------------------------------------------


def test_add_workspace_through_admin_gives_org_admins_access(client, staff):
    org = make_organization(name="Northwind")
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org)
    add_page = client.get("/admin/workspaces/workspace/add/")
    assert add_page.status_code == 200
    data = {
        "organization": org.pk,
        "name": "Client X",
        "description": "A new client",
        **management_form(add_page.content.decode()),
    }

    response = client.post("/admin/workspaces/workspace/add/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    ws = Workspace.objects.get(organization=org, name="Client X")
    assert (ws.slug, ws.description, ws.is_primary, ws.created_by) == ("client-x", "A new client", False, staff)
    expected = WORKSPACE_ROLE_PERMISSIONS[WorkspaceRole.ADMIN]
    assert ws_codenames(org.created_by, ws) == expected
    assert ws_codenames(admin.user, ws) == expected
    assert ws_codenames(member.user, ws) == set()
    assert ws_codenames(staff, ws) == set()  # staff do not become members
    event = AuditEvent.objects.get(action="workspace.created", target_id=str(ws.pk))
    assert event.actor == staff


def test_add_workspace_with_duplicate_name_is_a_form_error(client, staff):
    org = make_organization()
    make_workspace(org, name="Design")
    add_page = client.get("/admin/workspaces/workspace/add/").content.decode()
    data = {"organization": org.pk, "name": "DESIGN", "description": "", **management_form(add_page)}
    response = client.post("/admin/workspaces/workspace/add/", data)
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert Workspace.objects.filter(organization=org).count() == 2


def test_delete_is_not_offered_for_workspaces(client, staff):
    org = make_organization()
    primary = Workspace.objects.get(organization=org, is_primary=True)
    other = make_workspace(org)
    for ws in (primary, other):
        assert client.get(f"/admin/workspaces/workspace/{ws.pk}/delete/").status_code == 403
        assert client.post(f"/admin/workspaces/workspace/{ws.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Workspace.objects.filter(organization=org).count() == 2
    changelist = client.get("/admin/workspaces/workspace/")
    assert "delete_selected" not in changelist.content.decode()


def test_workspace_change_page_does_not_let_staff_change_primary_or_organization(client, staff):
    org = make_organization()
    primary = Workspace.objects.get(organization=org, is_primary=True)
    response = client.get(f"/admin/workspaces/workspace/{primary.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.fields) == {"name", "description"}


def test_workspace_rename_in_admin_to_an_existing_live_name_is_a_form_error_not_a_crash(client, staff):
    org = make_organization()
    make_workspace(org, name="Design")
    other = make_workspace(org, name="Research")
    change_url = f"/admin/workspaces/workspace/{other.pk}/change/"
    data = {"name": "design", "description": "", **management_form(client.get(change_url).content.decode())}
    client.raise_request_exception = False
    response = client.post(change_url, data)
    assert response.status_code == 200
    other.refresh_from_db()
    assert other.name == "Research"
