"""Query counts of the Members and Workspaces tabs and the member page stay constant with the size of the org.

An organization of 500 members across 50 workspaces is measured against one of 10 members and 3 workspaces:
the same pages must cost exactly the same number of queries (no N+1), and a small fixed maximum.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import Membership, OrganizationRole
from qolaba.lifecycle import workspace_archive
from tests.factories import UserFactory, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole
from workspaces.roles import permissions_apply
from workspaces.services import invitations_create, member_remove

pytestmark = pytest.mark.django_db

# Measured (PostgreSQL, Django 5.2, warm session): Members tab 13 on the first page (it also lists the
# invitations), 11 on later pages; Workspaces tab 11; member page 9 (each page counts unread notifications). The two
# tabs' credit columns cost 2 of those (`usage_totals`: the watermark, then one query); sorted by credits, the Members
# tab reads the ids in order, then the page's rows — as many queries as the count and the page it replaces.
MAX_QUERIES = 13

WS_ROLES = [WorkspaceRole.MEMBER, WorkspaceRole.VIEWER, WorkspaceRole.ADMIN]


def build_org(*, members: int, workspaces: int, invitations: int, removed: int, name: str) -> dict:
    """An org with `members` active people (Owner included), `workspaces` live workspaces (Primary included),
    one archived workspace, pending invitations and some removed members.

    Users come from the factory; memberships and workspace assignments are bulk-inserted and then turned into
    permission rows by one `permissions_apply` call, the same function the services use.
    """
    org = make_organization(name=name)
    owner = org.created_by
    spaces = [Workspace.objects.get(organization=org, is_primary=True)]
    spaces += [make_workspace(org, name=f"{name} WS {i:02d}") for i in range(1, workspaces)]
    archived = make_workspace(org, name=f"{name} archived")

    users = UserFactory.create_batch(members - 1 + removed)
    admins = max(1, (members - 1) // 20)
    Membership.objects.bulk_create(
        Membership(organization=org, user=user, role=OrganizationRole.ADMIN if i < admins else OrganizationRole.MEMBER)
        for i, user in enumerate(users)
    )
    assignments = []
    for i, user in enumerate(users[admins:]):
        for k in range(1 + i % 3):  # one to three workspaces each, spread over all of them
            workspace = spaces[(i * 7 + k * 13) % len(spaces)]
            assignments.append(WorkspaceMembership(workspace=workspace, user=user, role=WS_ROLES[(i + k) % 3]))
        if i % 10 == 0:
            assignments.append(WorkspaceMembership(workspace=archived, user=user, role=WorkspaceRole.MEMBER))
    WorkspaceMembership.objects.bulk_create(assignments, ignore_conflicts=True)
    permissions_apply(organization=org)

    workspace_archive(workspace=archived, actor=owner)
    for membership in Membership.objects.filter(organization=org, role=OrganizationRole.MEMBER).order_by("-pk")[
        :removed
    ]:
        member_remove(membership=membership, actor=owner)
    invitations_create(
        organization=org,
        emails=[f"invitee{i}@{name.lower()}.test" for i in range(invitations)],
        role=OrganizationRole.MEMBER,
        workspaces=spaces[:3],
        workspace_role="member",
        actor=owner,
    )
    member = (
        Membership.objects.active()
        .filter(organization=org, role=OrganizationRole.MEMBER, user__workspace_memberships__isnull=False)
        .order_by("pk")
        .first()
    )
    client = Client()
    client.force_login(owner)
    return {"org": org, "owner": owner, "member": member, "client": client}


def pages(built: dict) -> dict[str, tuple[str, dict]]:
    slug = built["org"].slug
    members = reverse("orgs:members", kwargs={"org_slug": slug})
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "members-table"}
    return {
        "members first page": (members, {}),
        "members htmx first page": (members, htmx),
        "members page 2": (f"{members}?page=2", {}),
        "members last page": (f"{members}?page=999", {}),
        "members htmx search page 2": (f"{members}?q=example&status=active&page=2", htmx),
        "members sorted by credits": (f"{members}?sort=-total&period=last_30_days", {}),
        "members htmx sorted page 2": (f"{members}?sort=chatbot&page=2", htmx),
        "workspaces tab": (reverse("workspaces:list", kwargs={"org_slug": slug}), {}),
        "workspaces tab sorted": (reverse("workspaces:list", kwargs={"org_slug": slug}) + "?sort=-total", {}),
        "member page": (
            reverse("orgs:member", kwargs={"org_slug": slug, "membership_id": built["member"].pk}),
            {},
        ),
    }


def measure(built: dict, url: str, headers: dict) -> tuple[int, int]:
    client = built["client"]
    client.get(url, **headers)  # warm-up: the session remembers the organization once
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200, url
    return len(queries), len(response.content)


COMPARABLE = [
    "members first page",
    "members htmx first page",
    "members sorted by credits",
    "workspaces tab",
    "workspaces tab sorted",
    "member page",
]


def test_members_and_workspaces_tabs_cost_a_constant_number_of_queries(django_assert_max_num_queries):
    large = build_org(members=500, workspaces=50, invitations=20, removed=5, name="Large")
    small = build_org(members=10, workspaces=3, invitations=2, removed=1, name="Small")

    # The data is what it claims to be.
    large_org = large["org"]
    assert Membership.objects.active().filter(organization=large_org).count() == 500
    assert Workspace.objects.live().filter(organization=large_org).count() == 50
    assert WorkspaceMembership.objects.filter(workspace__organization=large_org).count() > 500

    large_counts, small_counts = {}, {}
    for label, (url, headers) in pages(large).items():
        large_counts[label], size = measure(large, url, headers)
        with django_assert_max_num_queries(MAX_QUERIES):
            large["client"].get(url, **headers)
        if label == "members first page":
            assert size > 25 * 300  # 25 rows and the invitations were really rendered
    for label in COMPARABLE:
        url, headers = pages(small)[label]
        small_counts[label], _ = measure(small, url, headers)

    # No N+1: 500 members and 50 workspaces cost exactly what 10 members and 3 workspaces cost.
    for label in COMPARABLE:
        assert large_counts[label] == small_counts[label], (label, large_counts, small_counts)
    # Every later page costs the same, and no more than the first (which also lists the invitations).
    assert large_counts["members page 2"] == large_counts["members last page"], large_counts
    assert large_counts["members htmx search page 2"] <= large_counts["members page 2"], large_counts
    assert large_counts["members page 2"] <= large_counts["members first page"], large_counts
    assert large_counts["members htmx sorted page 2"] == large_counts["members page 2"], large_counts
    assert max(large_counts.values()) <= MAX_QUERIES, large_counts
