"""Workspace pages: the workspace list / switcher menu and a workspace's Overview, for every kind of visitor."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils.timezone import now

from orgs.models import Organization, OrganizationRole
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole
from workspaces.roles import permissions_apply

pytestmark = pytest.mark.django_db

HTMX_WORKSPACE_MENU = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "workspace-menu"}


def primary_of(org: Organization) -> Workspace:
    return Workspace.objects.get(organization=org, is_primary=True)


def overview_url(ws: Workspace) -> str:
    return f"/o/{ws.organization.slug}/w/{ws.slug}/"


def list_url(org: Organization) -> str:
    return f"/o/{org.slug}/workspaces/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world():
    """One organization with a workspace for each kind of visitor, and an outsider from another org."""
    org = make_organization(name="Northwind")
    shared = make_workspace(org, name="Shared")
    secret = make_workspace(org, name="Secret")
    people = {
        "owner": org.created_by,
        "admin": make_member(org, role=OrganizationRole.ADMIN).user,
        "ws_admin": make_member(org, workspaces={shared: WorkspaceRole.ADMIN}).user,
        "ws_member": make_member(org, workspaces={shared: WorkspaceRole.MEMBER}).user,
        "ws_viewer": make_member(org, workspaces={shared: WorkspaceRole.VIEWER}).user,
        "no_access": make_member(org).user,
        "outsider": make_organization(name="Bluepeak").created_by,
    }
    return {"org": org, "shared": shared, "secret": secret, "primary": primary_of(org), **people}


# --- overview: who gets in ----------------------------------------------------------------------


def test_overview_sends_anonymous_visitors_to_login(client, world):
    url = overview_url(world["shared"])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"/accounts/login/?next={url}"


@pytest.mark.parametrize(
    ("persona", "note"),
    [
        ("owner", "Workspace admin: you manage this workspace."),
        ("admin", "Workspace admin: you manage this workspace."),
        ("ws_admin", "Workspace admin: you manage this workspace."),
        ("ws_member", "Workspace member: the generations you run here are charged to this workspace."),
        ("ws_viewer", "Workspace viewer: you can read history and usage."),
    ],
)
def test_overview_is_open_to_everyone_with_access(world, persona, note):
    response = logged_in(world[persona]).get(overview_url(world["shared"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Shared" in html
    assert note in html
    assert response.context["tenant"].workspace == world["shared"]


@pytest.mark.parametrize("persona", ["no_access", "outsider"])
def test_overview_is_404_without_access(world, persona):
    assert logged_in(world[persona]).get(overview_url(world["shared"])).status_code == 404


@pytest.mark.parametrize("persona", ["ws_admin", "ws_member", "ws_viewer", "no_access"])
def test_org_members_cannot_open_unassigned_workspaces_not_even_the_primary(world, persona):
    client = logged_in(world[persona])
    assert client.get(overview_url(world["secret"])).status_code == 404
    assert client.get(overview_url(world["primary"])).status_code == 404


@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_owner_and_admin_open_every_workspace(world, persona):
    client = logged_in(world[persona])
    for ws in (world["primary"], world["shared"], world["secret"]):
        assert client.get(overview_url(ws)).status_code == 200


def test_unknown_and_archived_workspaces_are_404_even_for_the_owner(world):
    client = logged_in(world["owner"])
    assert client.get(f"/o/{world['org'].slug}/w/no-such-workspace/").status_code == 404
    Workspace.objects.filter(pk=world["secret"].pk).update(archived_at=now())
    assert client.get(overview_url(world["secret"])).status_code == 404


def test_workspace_is_404_under_another_organizations_slug():
    user = UserFactory()
    mine = make_organization(owner=user, name="Mine")
    other = make_organization(owner=user, name="Other")
    ws = make_workspace(mine, name="Only in mine")
    client = logged_in(user)
    assert client.get(f"/o/{other.slug}/w/{ws.slug}/").status_code == 404
    # Both orgs have a "primary-workspace": each URL opens its own org's.
    response = client.get(f"/o/{other.slug}/w/primary-workspace/")
    assert response.context["tenant"].workspace == primary_of(other)


def test_overview_shows_the_figures(world):
    response = logged_in(world["ws_viewer"]).get(overview_url(world["shared"]))
    figures = response.context["figures"]
    # Owner, Admin (implicit) and the three assigned members.
    assert figures.workspace_people == 5
    assert figures.organization_members == 6
    assert figures.my_workspaces == 1


def test_overview_marks_its_navigation_item_active(world):
    url = overview_url(world["shared"])
    response = logged_in(world["ws_member"]).get(url)
    nav = {item["label"]: item for item in response.context["nav_items"]}
    assert nav["Overview"]["url"] == url
    assert nav["Overview"]["active"] is True
    assert nav["Workspaces"]["active"] is False
    assert f'href="{url}" class="side-link active" aria-current="page"' in response.content.decode()


# --- workspace list -----------------------------------------------------------------------------


def listed_workspaces(response) -> list[str]:
    return [ws.name for ws in response.context["workspaces"]]


def test_workspace_list_sends_anonymous_visitors_to_login(client, world):
    response = client.get(list_url(world["org"]))
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_workspace_list_is_404_for_outsiders(world):
    assert logged_in(world["outsider"]).get(list_url(world["org"])).status_code == 404


@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_workspace_list_shows_owner_and_admin_every_workspace(world, persona):
    response = logged_in(world[persona]).get(list_url(world["org"]))
    assert response.status_code == 200
    assert listed_workspaces(response) == ["Primary Workspace", "Secret", "Shared"]
    html = response.content.decode()
    for ws in ("primary", "secret", "shared"):
        assert f'href="{overview_url(world[ws])}"' in html
    assert "Every workspace of the organization" in html


@pytest.mark.parametrize("persona", ["ws_admin", "ws_member", "ws_viewer"])
def test_workspace_list_shows_members_only_their_workspaces(world, persona):
    response = logged_in(world[persona]).get(list_url(world["org"]))
    assert response.status_code == 200
    assert listed_workspaces(response) == ["Shared"]
    html = response.content.decode()
    assert f'href="{overview_url(world["shared"])}"' in html
    assert "Secret" not in html
    assert overview_url(world["secret"]) not in html
    assert overview_url(world["primary"]) not in html


def test_workspace_list_for_a_member_without_workspaces_is_empty_but_open(world):
    response = logged_in(world["no_access"]).get(list_url(world["org"]))
    assert response.status_code == 200
    assert listed_workspaces(response) == []
    html = response.content.decode()
    assert "No workspace has been assigned to you yet." in html
    assert "/w/" not in html


def test_workspace_list_hides_archived_workspaces(world):
    Workspace.objects.filter(pk=world["secret"].pk).update(archived_at=now())
    permissions_apply(organization=world["org"])
    response = logged_in(world["owner"]).get(list_url(world["org"]))
    assert listed_workspaces(response) == ["Primary Workspace", "Shared"]


# --- HTMX switcher menu -------------------------------------------------------------------------


def test_workspace_menu_fragment_for_htmx(world):
    response = logged_in(world["ws_member"]).get(list_url(world["org"]), **HTMX_WORKSPACE_MENU)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "<body" not in html
    assert 'class="sidebar' not in html
    assert html.strip().startswith('<ul class="menu-list"')
    assert f'href="{overview_url(world["shared"])}"' in html
    assert "Secret" not in html
    assert f'href="{list_url(world["org"])}"' in html  # "All workspaces"


def test_workspace_menu_fragment_lists_everything_for_the_owner(world):
    html = logged_in(world["owner"]).get(list_url(world["org"]), **HTMX_WORKSPACE_MENU).content.decode()
    for ws in ("primary", "secret", "shared"):
        assert f'href="{overview_url(world[ws])}"' in html
    assert "Primary</span>" in html


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_HX_REQUEST": "true"},
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "organization-menu"},
        {"HTTP_HX_TARGET": "workspace-menu"},  # not an htmx request
    ],
)
def test_workspace_list_is_a_full_page_without_the_menu_target(world, headers):
    html = logged_in(world["owner"]).get(list_url(world["org"]), **headers).content.decode()
    assert "<html" in html
    assert '<aside class="sidebar"' in html


def test_workspace_menu_fragment_is_404_for_outsiders(world):
    response = logged_in(world["outsider"]).get(list_url(world["org"]), **HTMX_WORKSPACE_MENU)
    assert response.status_code == 404


def test_workspace_menu_fragment_marks_the_current_workspace(world):
    client = logged_in(world["owner"])
    client.get(overview_url(world["secret"]))
    html = client.get(list_url(world["org"]), **HTMX_WORKSPACE_MENU).content.decode()
    assert html.count('aria-current="true"') == 1
    current_item = html.split(f'href="{overview_url(world["secret"])}"')[1].split("</a>")[0]
    assert 'aria-current="true"' in current_item


# --- every hx-get has a plain link fallback ------------------------------------------------------

VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class HxParser(HTMLParser):
    """Collects elements with hx-get and every <a href>, with the ids and hx-gets of their ancestors."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.hx_elements: list[dict] = []
        self.links: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "hx-get" in attributes:
            # A link is its own fallback, and so is a GET form whose action is the same URL.
            own = attributes.get("href") if tag == "a" else attributes.get("action") if tag == "form" else None
            self.hx_elements.append({**attributes, "_is_own_link": own})
        if tag == "a" and attributes.get("href"):
            self.links.append(
                {
                    "href": attributes["href"],
                    "ancestor_ids": {a.get("id") for _, a in self.stack if a.get("id")},
                    "ancestor_hx_gets": {a.get("hx-get") for _, a in self.stack if a.get("hx-get")},
                }
            )
        if tag not in VOID_ELEMENTS:
            self.stack.append((tag, attributes))

    def handle_startendtag(self, tag, attrs):
        if tag == "a" or "hx-get" in dict(attrs):
            self.handle_starttag(tag, attrs)
            if tag not in VOID_ELEMENTS:
                self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return


def hx_gets_without_fallback(html: str) -> tuple[list[str], int]:
    """(hx-get URLs with no <a href> to the same URL inside the element or its hx-target, number of hx-gets)."""
    parser = HxParser()
    parser.feed(html)
    missing = []
    for element in parser.hx_elements:
        url = element["hx-get"]
        target = element.get("hx-target", "")
        target_id = target[1:] if target.startswith("#") else None
        fallback = element["_is_own_link"] == url or any(
            link["href"] == url and (url in link["ancestor_hx_gets"] or target_id in link["ancestor_ids"])
            for link in parser.links
        )
        if not fallback:
            missing.append(url)
    return missing, len(parser.hx_elements)


@pytest.mark.parametrize("page_name", ["overview", "list", "management list", "no_workspace"])
def test_every_hx_get_has_a_plain_link_fallback(world, page_name):
    urls = {
        "overview": ("owner", overview_url(world["shared"])),
        "list": ("ws_member", list_url(world["org"])),
        "management list": ("owner", list_url(world["org"])),
        "no_workspace": ("no_access", f"/o/{world['org'].slug}/"),
    }
    persona, url = urls[page_name]
    response = logged_in(world[persona]).get(url)
    assert response.status_code == 200
    missing, found = hx_gets_without_fallback(response.content.decode())
    assert found >= 2  # the workspace switcher and the profile menu
    assert missing == []


def test_fallback_checker_catches_a_missing_link():
    html = '<div><button hx-get="/x/" hx-target="#menu">Open</button><div id="menu"><a href="/y/">Y</a></div></div>'
    assert hx_gets_without_fallback(html) == (["/x/"], 1)
    fixed = html.replace('href="/y/"', 'href="/x/"')
    assert hx_gets_without_fallback(fixed) == ([], 1)
    own_link = '<a href="/d/" hx-get="/d/" hx-target="#dialog">Delete</a><a hx-get="/e/" href="/f/">E</a>'
    assert hx_gets_without_fallback(own_link) == (["/e/"], 2)


# --- query counts -------------------------------------------------------------------------------


def build_org(*, members: int, workspaces: int) -> dict:
    """An organization with `workspaces` workspaces (Primary included) and `members` people of every role.

    Returns the organization, a workspace everyone below can open, and one user per persona.
    """
    org = make_organization()
    extra = [make_workspace(org) for _ in range(workspaces - 1)]
    roles = [WorkspaceRole.ADMIN, WorkspaceRole.MEMBER, WorkspaceRole.VIEWER]
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org, workspaces={extra[0]: WorkspaceRole.MEMBER, extra[-1]: WorkspaceRole.VIEWER})
    viewer = make_member(org, workspaces={extra[0]: WorkspaceRole.VIEWER})
    for i in range(members - 4):  # owner, admin, member and viewer above
        assigned = {extra[(i + k) % len(extra)]: roles[(i + k) % 3] for k in range(3)}
        make_member(org, role=OrganizationRole.ADMIN if i % 10 == 0 else OrganizationRole.MEMBER, workspaces=assigned)
    for _ in range(3 if members > 10 else 1):
        make_member(make_organization(), user=member.user)
    return {
        "org": org,
        "workspace": extra[0],
        "owner": org.created_by,
        "admin": admin.user,
        "member": member.user,
        "viewer": viewer.user,
    }


# The overview reads the workspace, permissions, membership, three counts, the credits panel (balance, limits,
# spend), the price list and the unread notifications, and its usage panels (`usage_totals`: watermark + one query, for
# the user's own usage and, for those who may see it, the workspace's): a constant 15 (Members, Viewers) or 17
# (workspace admins) whatever the size of the organization. The Workspaces tab adds the credit columns (2) and, for
# people who do not manage workspaces, which workspaces' usage they may see (1).
QUERY_LIMIT = 17


def measure_pages(django_assert_max_num_queries, world: dict) -> dict[tuple[str, str], int]:
    pages = {
        "workspace list": (list_url(world["org"]), {}),
        "workspace menu fragment": (list_url(world["org"]), HTMX_WORKSPACE_MENU),
        "workspace overview": (overview_url(world["workspace"]), {}),
    }
    counts = {}
    for page, (url, headers) in pages.items():
        for persona in ("owner", "admin", "member", "viewer"):
            client = logged_in(world[persona])
            client.get(url, **headers)  # first visit: remembers organization and workspace in the session
            with django_assert_max_num_queries(QUERY_LIMIT, info=f"{page} as {persona}") as captured:
                response = client.get(url, **headers)
            assert response.status_code == 200, (page, persona)
            counts[page, persona] = len(captured)
    return counts


def test_workspace_pages_make_a_constant_number_of_queries(django_assert_max_num_queries):
    """No N+1: the same number of queries for 5 people and 3 workspaces as for 30 people and 12 workspaces."""
    small = measure_pages(django_assert_max_num_queries, build_org(members=5, workspaces=3))
    large = measure_pages(django_assert_max_num_queries, build_org(members=30, workspaces=12))
    print(f"queries per workspace page: {large}")  # noqa: T201 (shown with -s, for the report)
    assert large == small
