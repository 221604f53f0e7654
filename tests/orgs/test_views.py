"""Organization pages: home redirects, the organization list/menu, creating an organization, opening one."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.timezone import now

from orgs.models import AuditEvent, Membership, MembershipStatus, Organization, OrganizationRole
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole
from workspaces.roles import permissions_apply

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"
HTMX_ORG_MENU = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "organization-menu"}


def primary_of(org: Organization) -> Workspace:
    return Workspace.objects.get(organization=org, is_primary=True)


def overview_url(ws: Workspace) -> str:
    return f"/o/{ws.organization.slug}/w/{ws.slug}/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def remove_member(membership: Membership) -> None:
    Membership.objects.filter(pk=membership.pk).update(status=MembershipStatus.REMOVED, removed_at=now())
    permissions_apply(organization=membership.organization, users=[membership.user])


def row_counts() -> tuple[int, int, int]:
    return Organization.objects.count(), Membership.objects.count(), Workspace.objects.count()


# --- anonymous ----------------------------------------------------------------------------------


def test_home_sends_anonymous_visitors_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == LOGIN_URL


@pytest.mark.parametrize("path", ["/orgs/", "/orgs/new/", "/o/{slug}/"])
def test_organization_pages_send_anonymous_visitors_to_login(client, path):
    org = make_organization()
    url = path.format(slug=org.slug)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{LOGIN_URL}?next={url}"


# --- home ---------------------------------------------------------------------------------------


def test_home_without_organization_offers_to_create_one(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/orgs/new/"


def test_home_with_organization_opens_it_and_then_its_primary_workspace(client):
    org = make_organization(name="Acme")
    client.force_login(org.created_by)
    response = client.get("/", follow=True)
    assert [url for url, _ in response.redirect_chain] == [f"/o/{org.slug}/", overview_url(primary_of(org))]
    assert response.status_code == 200


def test_home_returns_to_the_remembered_workspace(client):
    org = make_organization()
    ws = make_workspace(org, name="Research")
    client.force_login(org.created_by)
    assert client.get(overview_url(ws)).status_code == 200

    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == overview_url(ws)


def test_home_returns_to_the_remembered_organization(client):
    user = UserFactory()
    first = make_organization(owner=user, name="Aardvark")  # first by name: the default
    second = make_organization(owner=user, name="Zebra")
    client.force_login(user)
    assert client.get("/").url == f"/o/{first.slug}/"
    client.get(f"/o/{second.slug}/")
    assert client.get("/").url == f"/o/{second.slug}/"


def test_remembered_workspace_is_kept_per_organization_when_switching_back_and_forth(client):
    user = UserFactory()
    org_a = make_organization(owner=user, name="Alpha")
    org_b = make_organization(owner=user, name="Beta")
    ws_a = make_workspace(org_a, name="A research")
    ws_b = make_workspace(org_b, name="B design")
    client.force_login(user)

    client.get(overview_url(ws_a))
    client.get(overview_url(ws_b))
    # Back to A through the organization switcher: A's own choice, not B's.
    assert client.get(f"/o/{org_a.slug}/").url == overview_url(ws_a)
    assert client.get("/", follow=True).redirect_chain[-1][0] == overview_url(ws_a)
    assert client.get(f"/o/{org_b.slug}/").url == overview_url(ws_b)
    client.get(overview_url(primary_of(org_b)))
    assert client.get(f"/o/{org_a.slug}/").url == overview_url(ws_a)
    assert client.get(f"/o/{org_b.slug}/").url == overview_url(primary_of(org_b))


def test_remembered_workspace_that_became_unreachable_falls_back_to_a_reachable_one(client):
    org = make_organization()
    kept = make_workspace(org, name="Kept")
    lost = make_workspace(org, name="Lost")
    member = make_member(org, workspaces={kept: WorkspaceRole.MEMBER, lost: WorkspaceRole.MEMBER})
    client.force_login(member.user)
    client.get(overview_url(lost))
    Workspace.objects.filter(pk=lost.pk).update(archived_at=now())
    permissions_apply(organization=org)

    assert client.get(f"/o/{org.slug}/").url == overview_url(kept)


def test_home_skips_organizations_the_user_was_removed_from(client):
    user = UserFactory()
    stay = make_organization(name="Zulu")
    leave = make_organization(name="Alpha")
    make_member(stay, user=user)
    gone = make_member(leave, user=user)
    client.force_login(user)
    client.get(f"/o/{leave.slug}/")
    remove_member(gone)
    assert client.get("/").url == f"/o/{stay.slug}/"


# --- /o/<slug>/ ---------------------------------------------------------------------------------


def test_open_organization_as_outsider_is_404(client):
    org = make_organization()
    make_organization(owner=(outsider := UserFactory()))
    client.force_login(outsider)
    assert client.get(f"/o/{org.slug}/").status_code == 404


def test_open_unknown_organization_is_404_like_a_forbidden_one(client, user):
    client.force_login(user)
    assert client.get("/o/no-such-org/").status_code == 404


def test_open_organization_as_member_without_workspaces_shows_empty_state(client):
    org = make_organization(name="Acme")
    member = make_member(org)
    client.force_login(member.user)
    response = client.get(f"/o/{org.slug}/")
    assert response.status_code == 200
    assert "No workspace yet" in response.content.decode()
    assert "orgs/no_workspace.html" in [t.name for t in response.templates]


def test_open_organization_as_member_lands_on_an_assigned_workspace(client):
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, workspaces={ws: WorkspaceRole.VIEWER})
    client.force_login(member.user)
    assert client.get(f"/o/{org.slug}/").url == overview_url(ws)


@pytest.mark.parametrize("role", [OrganizationRole.OWNER, OrganizationRole.ADMIN])
def test_open_organization_as_owner_or_admin_lands_on_primary_workspace(client, role):
    org = make_organization()
    make_workspace(org, name="Aaa first by name")
    user = org.created_by if role == OrganizationRole.OWNER else make_member(org, role=role).user
    client.force_login(user)
    assert client.get(f"/o/{org.slug}/").url == overview_url(primary_of(org))


def test_deleted_organization_is_404_for_its_owner(client):
    org = make_organization()
    ws = make_workspace(org)
    client.force_login(org.created_by)
    assert client.get(overview_url(ws)).status_code == 200
    Organization.objects.filter(pk=org.pk).update(deleted_at=now())

    assert client.get(f"/o/{org.slug}/").status_code == 404
    assert client.get(overview_url(ws)).status_code == 404
    assert client.get(f"/o/{org.slug}/workspaces/").status_code == 404
    assert client.get("/").url == "/orgs/new/"
    assert org.name not in client.get("/orgs/").content.decode()


def test_removed_member_loses_access_at_once_in_the_same_session(client):
    org = make_organization()
    ws = make_workspace(org)
    member = make_member(org, role=OrganizationRole.ADMIN, workspaces={ws: WorkspaceRole.ADMIN})
    client.force_login(member.user)
    assert client.get(overview_url(ws)).status_code == 200
    assert client.get(f"/o/{org.slug}/workspaces/").status_code == 200

    remove_member(member)

    assert client.get(overview_url(ws)).status_code == 404
    assert client.get(overview_url(primary_of(org))).status_code == 404
    assert client.get(f"/o/{org.slug}/").status_code == 404
    assert client.get(f"/o/{org.slug}/workspaces/").status_code == 404
    assert client.get("/").url == "/orgs/new/"


def test_deactivated_user_is_sent_back_to_login(client):
    org = make_organization()
    client.force_login(org.created_by)
    assert client.get(f"/o/{org.slug}/").status_code == 302
    org.created_by.is_active = False
    org.created_by.save()
    response = client.get(f"/o/{org.slug}/")
    assert response.status_code == 302
    assert response.url.startswith(LOGIN_URL)


def test_names_are_escaped_everywhere(client):
    evil = '<script>alert("x")</script>'
    user = UserFactory(name=evil)
    org = make_organization(owner=user, name=evil)
    ws = make_workspace(org, name=evil + " ws")
    client.force_login(user)
    for url, headers in [
        (overview_url(ws), {}),
        (f"/o/{org.slug}/workspaces/", {}),
        (f"/o/{org.slug}/workspaces/", {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "workspace-menu"}),
        ("/orgs/", {}),
        ("/orgs/", HTMX_ORG_MENU),
    ]:
        html = client.get(url, **headers).content.decode()
        assert "<script>alert" not in html, url
        assert "&lt;script&gt;alert" in html, url


# --- /orgs/ -------------------------------------------------------------------------------------


def test_organization_list_shows_live_memberships_with_roles(client):
    user = UserFactory()
    owned = make_organization(owner=user, name="Owned Org")
    joined = make_organization(name="Joined Org")
    make_member(joined, user=user, role=OrganizationRole.ADMIN)
    removed_from = make_organization(name="Removed Org")
    remove_member(make_member(removed_from, user=user))
    deleted = make_organization(owner=user, name="Deleted Org")
    Organization.objects.filter(pk=deleted.pk).update(deleted_at=now())
    make_organization(name="Stranger Org")
    client.force_login(user)

    response = client.get("/orgs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert f'href="/o/{owned.slug}/"' in html
    assert f'href="/o/{joined.slug}/"' in html
    for hidden in ("Removed Org", "Deleted Org", "Stranger Org"):
        assert hidden not in html
    assert [m.organization.name for m in response.context["memberships"]] == ["Joined Org", "Owned Org"]
    assert [m.get_role_display() for m in response.context["memberships"]] == ["Admin", "Owner"]


def test_organization_list_without_organizations_says_so(client, user):
    client.force_login(user)
    html = client.get("/orgs/").content.decode()
    assert "You are not in any organization yet." in html
    assert 'href="/orgs/new/"' in html


def test_organization_menu_fragment_for_htmx(client):
    user = UserFactory()
    current = make_organization(owner=user, name="Current")
    other = make_organization(owner=user, name="Other")
    client.force_login(user)
    client.get(f"/o/{current.slug}/")

    response = client.get("/orgs/", **HTMX_ORG_MENU)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "<body" not in html
    assert html.strip().startswith('<ul class="menu-list"')
    assert f'href="/o/{current.slug}/"' in html
    assert f'href="/o/{other.slug}/"' in html
    assert html.count('aria-current="true"') == 1
    current_item = html.split(f'href="/o/{current.slug}/"')[1].split("</a>")[0]
    assert 'aria-current="true"' in current_item


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_HX_REQUEST": "true"},
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "workspace-menu"},
        {"HTTP_HX_TARGET": "organization-menu"},  # not an htmx request
    ],
)
def test_organization_list_is_a_full_page_without_the_menu_target(client, user, headers):
    make_organization(owner=user)
    client.force_login(user)
    html = client.get("/orgs/", **headers).content.decode()
    assert "<html" in html
    assert "Your organizations" in html


# --- /orgs/new/ ---------------------------------------------------------------------------------


def test_create_page_for_a_first_organization(client, user):
    client.force_login(user)
    response = client.get("/orgs/new/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Create your organization" in html
    assert 'name="name"' in html
    assert 'name="timezone"' in html


def test_create_page_for_another_organization(client):
    org = make_organization()
    client.force_login(org.created_by)
    html = client.get("/orgs/new/").content.decode()
    assert "Create another organization" in html
    assert 'href="/orgs/"' in html


def test_create_organization_post_creates_it_and_lands_in_primary_workspace(client, user):
    client.force_login(user)
    response = client.post("/orgs/new/", {"name": "  Northwind Creative ", "timezone": "Europe/London"}, follow=True)

    org = Organization.objects.get()
    assert (org.name, org.timezone, org.created_by) == ("Northwind Creative", "Europe/London", user)
    assert Membership.objects.get(organization=org).role == OrganizationRole.OWNER
    assert [url for url, _ in response.redirect_chain] == [f"/o/{org.slug}/", overview_url(primary_of(org))]
    assert response.status_code == 200
    html = response.content.decode()
    assert "Northwind Creative is ready. This is its Primary Workspace." in html
    assert AuditEvent.objects.filter(organization=org, action="organization.created", actor=user).exists()


def test_create_organization_sends_the_welcome_email(client, user, django_capture_on_commit_callbacks, mailoutbox):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/orgs/new/", {"name": "Acme", "timezone": "UTC"})
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [[user.email]]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "timezone": "UTC"}, "name", "This field is required."),
        ({"name": "   ", "timezone": "UTC"}, "name", "This field is required."),
        ({"name": "Acme", "timezone": "Mars/Olympus_Mons"}, "timezone", "Select a valid choice."),
        ({"name": "Acme"}, "timezone", "This field is required."),
        ({"name": "x" * 101, "timezone": "UTC"}, "name", "at most 100 characters"),
    ],
)
def test_create_organization_post_with_invalid_data_shows_form_error_and_creates_nothing(
    client, user, data, field, message
):
    client.force_login(user)
    before = row_counts()
    response = client.post("/orgs/new/", data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert row_counts() == before


# --- methods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/", "/orgs/", "/o/{slug}/", "/o/{slug}/workspaces/", "/o/{slug}/w/{ws}/"])
def test_get_only_pages_answer_405_to_other_methods(client, method, path):
    org = make_organization()
    client.force_login(org.created_by)
    url = path.format(slug=org.slug, ws=primary_of(org).slug)
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_create_page_answers_405_to_other_methods(client, user, method):
    client.force_login(user)
    response = getattr(client, method)("/orgs/new/")
    assert response.status_code == 405
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_anonymous_post_to_get_only_page_is_405_not_500(client):
    org = make_organization()
    assert client.post(f"/o/{org.slug}/").status_code == 405
    assert client.post("/").status_code == 405


# --- query counts -------------------------------------------------------------------------------


def build_org(*, members: int, workspaces: int) -> dict:
    """An organization with `workspaces` workspaces (Primary included) and `members` people of every role.

    Returns the organization and one user per persona: owner, admin, member (assigned to two workspaces).
    """
    org = make_organization()
    extra = [make_workspace(org) for _ in range(workspaces - 1)]
    roles = [WorkspaceRole.ADMIN, WorkspaceRole.MEMBER, WorkspaceRole.VIEWER]
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org, workspaces={extra[0]: WorkspaceRole.MEMBER, extra[-1]: WorkspaceRole.VIEWER})
    for i in range(members - 3):  # owner, admin and member above
        assigned = {extra[(i + k) % len(extra)]: roles[(i + k) % 3] for k in range(3)}
        make_member(org, role=OrganizationRole.ADMIN if i % 10 == 0 else OrganizationRole.MEMBER, workspaces=assigned)
    # The people also belong to other organizations (the menu lists them).
    for _ in range(3 if members > 10 else 1):
        make_member(make_organization(), user=member.user)
        make_member(make_organization(), user=org.created_by, role=OrganizationRole.ADMIN)
    return {"org": org, "owner": org.created_by, "admin": admin.user, "member": member.user}


ORG_PAGES = {
    "home": ("/", {}),
    "organization list": ("/orgs/", {}),
    "organization menu fragment": ("/orgs/", HTMX_ORG_MENU),
    "create organization": ("/orgs/new/", {}),
    "open organization": ("/o/{slug}/", {}),
}
QUERY_LIMIT = 9


def measure_pages(django_assert_max_num_queries, world: dict) -> dict[tuple[str, str], int]:
    counts = {}
    for page, (path, headers) in ORG_PAGES.items():
        url = path.format(slug=world["org"].slug)
        for persona in ("owner", "admin", "member"):
            client = logged_in(world[persona])
            client.get(url, **headers)  # first visit: remembers the organization in the session
            with django_assert_max_num_queries(QUERY_LIMIT, info=f"{page} as {persona}") as captured:
                response = client.get(url, **headers)
            assert response.status_code in (200, 302), (page, persona)
            counts[page, persona] = len(captured)
    return counts


def test_organization_pages_make_a_constant_number_of_queries(django_assert_max_num_queries):
    """No N+1: the same number of queries for 4 people and 2 workspaces as for 30 people and 12 workspaces."""
    small = measure_pages(django_assert_max_num_queries, build_org(members=4, workspaces=2))
    large = measure_pages(django_assert_max_num_queries, build_org(members=30, workspaces=12))
    print(f"queries per organization page: {large}")  # noqa: T201 (shown with -s, for the report)
    assert large == small
