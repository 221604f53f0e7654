"""The Members tab: search, status filter, pagination, the HTMX table fragment, and pending/expired invitations."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import Invitation, Membership, OrganizationRole
from orgs.services import invitation_revoke
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole
from workspaces.services import invitations_create, member_remove

pytestmark = pytest.mark.django_db


@pytest.fixture
def s():
    org = make_organization(name="Northwind", owner=UserFactory(email="owner@northwind.test", name="Olga Owner"))
    primary = Workspace.objects.get(organization=org, is_primary=True)
    campaign = make_workspace(org, name="Campaign")
    admin = make_member(org, role=OrganizationRole.ADMIN, user=UserFactory(email="adam@northwind.test", name="Adam"))
    ana = make_member(
        org,
        user=UserFactory(email="ana@client.test", name="Ana Silva"),
        workspaces={campaign: WorkspaceRole.VIEWER, primary: WorkspaceRole.MEMBER},
    )
    ben = make_member(org, user=UserFactory(email="ben@client.test", name="Benedict Cumber"))
    gone = make_member(org, user=UserFactory(email="gone@client.test", name="Gone Person"))
    member_remove(membership=gone, actor=org.created_by)
    invitations_create(
        organization=org,
        emails=["invitee@client.test"],
        role=OrganizationRole.ADMIN,
        workspaces=[campaign],
        workspace_role="member",
        actor=org.created_by,
    )
    return {"org": org, "owner": org.created_by, "admin": admin, "ana": ana, "ben": ben, "gone": gone}


def members_url(s, **params) -> str:
    base = reverse("orgs:members", kwargs={"org_slug": s["org"].slug})
    return f"{base}?{urlencode(params)}" if params else base


def rows(response) -> tuple[list[str], list[str]]:
    """(member emails on this page, invitation emails shown)."""
    members = [m.user.email for m in response.context["page"].object_list]
    invitations = [i.email for i in response.context["invitations"]]
    return members, invitations


def test_lists_members_by_role_then_email_and_pending_invitations(s, client):
    client.force_login(s["admin"].user)
    response = client.get(members_url(s))
    assert response.status_code == 200
    members, invitations = rows(response)
    assert members == [
        "owner@northwind.test",
        "adam@northwind.test",
        "ana@client.test",
        "ben@client.test",
        "gone@client.test",
    ]
    assert invitations == ["invitee@client.test"]
    body = response.content.decode()
    assert '<span class="status status-pending">Pending</span>' in body
    assert body.count('<span class="status status-active">Active</span>') == 4
    assert body.count('<span class="status status-removed">Removed</span>') == 1
    # Workspaces with their role; Admins reach all of them.
    assert "Campaign · Viewer" in body
    assert "All workspaces" in body
    assert "Ana Silva" in body


@pytest.mark.parametrize(
    ("q", "members", "invitations"),
    [
        ("ana@", ["ana@client.test"], []),
        ("SILVA", ["ana@client.test"], []),  # by name, any case
        ("client.test", ["ana@client.test", "ben@client.test", "gone@client.test"], ["invitee@client.test"]),
        ("invitee", [], ["invitee@client.test"]),
        ("nobody-matches", [], []),
    ],
)
def test_search_by_email_or_name(s, client, q, members, invitations):
    client.force_login(s["owner"])
    response = client.get(members_url(s, q=q))
    assert rows(response) == (members, invitations)
    if not members and not invitations:
        assert f"No one matches “{q}”." in response.content.decode()


@pytest.mark.parametrize(
    ("status", "members", "invitations"),
    [
        ("active", ["owner@northwind.test", "adam@northwind.test", "ana@client.test", "ben@client.test"], []),
        ("removed", ["gone@client.test"], []),
        ("pending", [], ["invitee@client.test"]),
        ("bogus", None, ["invitee@client.test"]),  # unknown filter: everything
    ],
)
def test_status_filter(s, client, status, members, invitations):
    client.force_login(s["owner"])
    response = client.get(members_url(s, status=status))
    assert response.status_code == 200
    got_members, got_invitations = rows(response)
    if members is not None:
        assert got_members == members
    else:
        assert len(got_members) == 5
    assert got_invitations == invitations


def test_search_and_status_combine(s, client):
    client.force_login(s["owner"])
    assert rows(client.get(members_url(s, q="client.test", status="active"))) == (
        ["ana@client.test", "ben@client.test"],
        [],
    )


def test_revoked_and_accepted_invitations_are_not_listed(s, client):
    invitation_revoke(
        invitation=Invitation.objects.get(organization=s["org"], email="invitee@client.test"), actor=s["owner"]
    )
    client.force_login(s["owner"])
    assert rows(client.get(members_url(s)))[1] == []


def test_expired_invitation_is_shown_as_expired(s, client):
    with time_machine.travel(now() + timedelta(days=settings.INVITATION_TTL_DAYS, hours=1), tick=False):
        client.force_login(s["owner"])
        response = client.get(members_url(s, status="pending"))
    body = response.content.decode()
    assert rows(response)[1] == ["invitee@client.test"]
    assert '<span class="status status-removed">Expired</span>' in body
    assert "status-pending" not in body


def test_pagination_by_members_page_size(s, client):
    org = s["org"]
    assert settings.MEMBERS_PAGE_SIZE == 25
    for i in range(25):
        make_member(org, user=UserFactory(email=f"p{i:02d}@bulk.test"))
    client.force_login(s["owner"])

    first = client.get(members_url(s))
    page = first.context["page"]
    assert page.paginator.count == 30
    assert page.paginator.num_pages == 2
    assert len(page.object_list) == 25
    assert rows(first)[1] == ["invitee@client.test"]  # invitations lead the first page
    body = first.content.decode()
    assert "Page 1 of 2 · 30 members" in body
    assert 'href="?page=2"' in body

    second = client.get(members_url(s, page=2))
    assert len(second.context["page"].object_list) == 5
    assert rows(second)[1] == []  # not repeated on later pages
    first_ids = {m.pk for m in page.object_list}
    assert first_ids.isdisjoint({m.pk for m in second.context["page"].object_list})

    # Out-of-range and garbage pages fall back instead of failing.
    assert client.get(members_url(s, page=99)).context["page"].number == 2
    assert client.get(members_url(s, page="abc")).context["page"].number == 1


def test_pagination_links_keep_the_filters(s, client):
    for i in range(26):
        make_member(s["org"], user=UserFactory(email=f"p{i:02d}@bulk.test"))
    client.force_login(s["owner"])
    body = client.get(members_url(s, q="bulk", status="active")).content.decode()
    assert 'href="?q=bulk&amp;status=active&amp;page=2"' in body


def test_htmx_request_for_the_table_returns_only_the_fragment(s, client):
    client.force_login(s["owner"])
    response = client.get(members_url(s, q="ana"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="members-table")
    assert response.status_code == 200
    body = response.content.decode().strip()
    assert body.startswith('<div id="members-table"')
    assert body.endswith("</div>")
    assert "<html" not in body
    assert 'name="q"' not in body  # the search form stays on the page
    assert "ana@client.test" in body
    assert "ben@client.test" not in body


def test_htmx_request_for_another_target_gets_the_full_page(s, client):
    client.force_login(s["owner"])
    response = client.get(members_url(s), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="main")
    assert "<html" in response.content.decode()


def test_owner_sees_transfer_ownership_and_admin_does_not(s, client):
    client.force_login(s["owner"])
    assert "Transfer ownership" in client.get(members_url(s)).content.decode()
    client.force_login(s["admin"].user)
    assert "Transfer ownership" not in client.get(members_url(s)).content.decode()


def test_member_detail_offers_management_only_where_allowed(s, client):
    org = s["org"]
    client.force_login(s["admin"].user)

    def detail(membership: Membership) -> str:
        url = reverse("orgs:member", kwargs={"org_slug": org.slug, "membership_id": membership.pk})
        return client.get(url).content.decode()

    ana_page = detail(s["ana"])
    assert "Save role" in ana_page
    assert "Save workspaces" in ana_page
    assert "Remove member" in ana_page
    assert "This is the Owner." in detail(Membership.objects.get(user=s["owner"]))
    assert "This is you." in detail(s["admin"])
    assert "This person was removed." in detail(s["gone"])
    assert "Save role" not in detail(s["gone"])


def test_other_org_members_never_appear(s, client):
    other = make_organization(name="Elsewhere", owner=UserFactory(email="stranger@elsewhere.test"))
    make_member(other, user=UserFactory(email="their-member@elsewhere.test"))
    client.force_login(s["owner"])
    members, invitations = rows(client.get(members_url(s, q="elsewhere")))
    assert (members, invitations) == ([], [])
