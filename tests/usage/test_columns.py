"""Usage where people already look (`usage.columns`): the credit columns of the Members and Workspaces tabs and the
usage panels of the Overview, on real PostgreSQL.

The figures are compared with sums of the raw usage events computed here in Python (cut into local days and months
with zoneinfo), and with `usage_totals` for the same period. The organization is in Asia/Kolkata (+05:30): a charge at
20:00 UTC on 31 March is 01:30 on 1 April there, so it counts in April. "Now" is 1 April 2026, 02:00 UTC (07:30 there).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.ledger import credits_grant
from billing.services import credit_mode_switch, credits_transfer
from orgs.models import CreditMode, Organization, OrganizationRole, User
from qolaba.lifecycle import workspace_archive
from qolaba.tools import TOOL_GROUP
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage.columns import (
    AllocationUse,
    ColumnsPeriodChoice,
    GroupCredits,
    UsageColumns,
    allocation_uses,
    columns_period,
    columns_sort,
    columns_sorted,
    usage_columns_by_member,
    usage_columns_by_workspace,
    workspace_usage_overview,
)
from usage.models import UsageEvent, UsageStatus
from usage.rollup import usage_totals
from workspaces.models import Workspace, WorkspaceRole

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)  # 1 April, 07:30 in Kolkata
KOLKATA = ZoneInfo("Asia/Kolkata")
_keys = itertools.count(1)
HTMX_MEMBERS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "members-table"}
HTMX_WORKSPACES = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "workspaces-table"}


def record(
    workspace: Workspace,
    user: User,
    tool: str,
    credits: int,
    at: datetime,
    status: str = UsageStatus.CAPTURED,
) -> UsageEvent:
    """A usage event as the metering services write it (its ledger transaction does not matter here)."""
    return UsageEvent.objects.create(
        organization_id=workspace.organization_id,
        workspace=workspace,
        user=user,
        tool=tool,
        model=f"{tool}-model",
        units=1,
        credits=credits,
        status=status,
        idempotency_key=f"columns-{next(_keys)}",
        ledger_transaction_id=1,
        created_at=at,
    )


def expected_by(
    organization: Organization, start: datetime, end: datetime, key: str
) -> tuple[dict[int, GroupCredits], GroupCredits]:
    """The captured events' credits in [start, end), by `key` (user_id / workspace_id) and in all, by report group."""
    sums: dict[int, dict[str, int]] = {}
    everything: dict[str, int] = {}
    for event in UsageEvent.objects.filter(organization_id=organization.pk, status=UsageStatus.CAPTURED):
        if start <= event.created_at < end:
            group = TOOL_GROUP[event.tool].value
            per = sums.setdefault(getattr(event, key), {})
            per[group] = per.get(group, 0) + event.credits
            everything[group] = everything.get(group, 0) + event.credits
    return {k: GroupCredits(**v) for k, v in sums.items()}, GroupCredits(**everything)


@dataclass
class World:
    org: Organization
    primary: Workspace
    studio: Workspace
    lab: Workspace
    old: Workspace  # archived
    owner: User
    admin: User
    ws_admin: User  # a Member, admin of Studio and member of Lab
    member: User  # member of Studio
    viewer: User  # viewer of Studio
    other: User  # member of Lab


@pytest.fixture
def travel():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(travel) -> World:
    owner = UserFactory(email="owner@northwind.test")
    org = make_organization(owner=owner, name="Northwind", timezone="Asia/Kolkata")
    primary = Workspace.objects.get(organization=org, is_primary=True)
    studio, lab, old = (make_workspace(org, name=name) for name in ("Studio", "Lab", "Old"))
    admin = make_member(org, role=OrganizationRole.ADMIN, user=UserFactory(email="admin@northwind.test")).user
    ws_admin = make_member(
        org,
        user=UserFactory(email="wsadmin@northwind.test"),
        workspaces={studio: WorkspaceRole.ADMIN, lab: WorkspaceRole.MEMBER},
    ).user
    member = make_member(
        org, user=UserFactory(email="member@northwind.test"), workspaces={studio: WorkspaceRole.MEMBER}
    )
    viewer = make_member(
        org, user=UserFactory(email="viewer@northwind.test"), workspaces={studio: WorkspaceRole.VIEWER}
    )
    other = make_member(org, user=UserFactory(email="other@northwind.test"), workspaces={lab: WorkspaceRole.MEMBER})
    credits_grant(organization=org, amount=50_000, actor=None)
    w = World(org, primary, studio, lab, old, owner, admin, ws_admin, member.user, viewer.user, other.user)

    # April in Kolkata starts at 2026-03-31 18:30 UTC.
    record(studio, w.member, "chat", 7_311, datetime(2026, 3, 31, 20, 0, tzinfo=UTC))  # 1 Apr 01:30 local
    record(studio, w.member, "image", 1_204, datetime(2026, 4, 1, 1, 0, tzinfo=UTC))
    record(studio, ws_admin, "speech", 1_933, datetime(2026, 4, 1, 0, 15, tzinfo=UTC))
    record(primary, owner, "chat", 2_468, datetime(2026, 3, 31, 18, 30, tzinfo=UTC))  # local midnight: April
    record(primary, owner, "chat", 111, datetime(2026, 3, 31, 18, 29, 59, tzinfo=UTC))  # a second before: March
    record(lab, w.other, "video", 5_557, datetime(2026, 3, 31, 10, 0, tzinfo=UTC))  # March
    record(lab, w.other, "music", 4_242, datetime(2026, 4, 1, 1, 30, tzinfo=UTC))
    record(old, admin, "chat", 3_030, datetime(2026, 4, 1, 0, 45, tzinfo=UTC))
    record(studio, w.member, "chat", 9_999, datetime(2026, 4, 1, 1, 45, tzinfo=UTC), status=UsageStatus.HELD)
    record(studio, w.member, "video", 0, datetime(2026, 4, 1, 1, 50, tzinfo=UTC), status=UsageStatus.RELEASED)
    record(studio, w.member, "chat", 17, datetime(2026, 3, 3, 12, 0, tzinfo=UTC))  # 3 March: in the 30-day trend
    record(studio, w.member, "chat", 19, datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # 2 March: just before it
    workspace_archive(workspace=old, actor=owner)
    return w


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def members_url(w: World, query: str = "") -> str:
    return reverse("orgs:members", args=[w.org.slug]) + (f"?{query}" if query else "")


def workspaces_url(w: World, query: str = "") -> str:
    return reverse("workspaces:list", args=[w.org.slug]) + (f"?{query}" if query else "")


def overview_url(w: World, workspace: Workspace) -> str:
    return reverse("workspaces:overview", args=[w.org.slug, workspace.slug])


def text(response) -> str:
    assert response.status_code == 200
    return unescape(response.content.decode())


def org_total(w: World, choice: str) -> int:
    period = columns_period(organization=w.org, choice=choice)
    return usage_totals(organization=w.org, start=period.start, end=period.end).rows[0].credits


# --- periods ------------------------------------------------------------------------------------------------------


def test_periods_are_cut_at_local_midnights_of_the_organization():
    org = Organization(timezone="Asia/Kolkata")
    at = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)  # 1 April 01:30 in Kolkata

    def bounds(choice):
        period = columns_period(organization=org, choice=choice, at=at)
        return period.start, period.end, period.first_day.isoformat(), period.last_day.isoformat()

    assert bounds("this_month") == (
        datetime(2026, 3, 31, 18, 30, tzinfo=UTC),
        datetime(2026, 4, 30, 18, 30, tzinfo=UTC),
        "2026-04-01",
        "2026-04-30",
    )
    assert bounds("last_month") == (
        datetime(2026, 2, 28, 18, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 18, 30, tzinfo=UTC),
        "2026-03-01",
        "2026-03-31",
    )
    assert bounds("last_7_days") == (
        datetime(2026, 3, 25, 18, 30, tzinfo=UTC),
        datetime(2026, 4, 1, 18, 30, tzinfo=UTC),
        "2026-03-26",
        "2026-04-01",
    )
    assert bounds("last_30_days")[2:] == ("2026-03-03", "2026-04-01")
    # The same instant is still March in UTC.
    utc = columns_period(organization=Organization(timezone="UTC"), choice="this_month", at=at)
    assert (utc.first_day.isoformat(), utc.start) == ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC))
    # +05:45 falls on a 15-minute boundary too; January's last month is December of the year before.
    kathmandu = columns_period(
        organization=Organization(timezone="Asia/Kathmandu"), choice="last_month", at=datetime(2026, 1, 5, tzinfo=UTC)
    )
    assert (kathmandu.start, kathmandu.end) == (
        datetime(2025, 11, 30, 18, 15, tzinfo=UTC),
        datetime(2025, 12, 31, 18, 15, tzinfo=UTC),
    )


@pytest.mark.parametrize("bad", [None, "", "yesterday", "THIS_MONTH", "last_month ", "<script>", "x" * 5000])
def test_an_unknown_period_is_this_month(bad):
    org = Organization(timezone="Asia/Kolkata")
    period = columns_period(organization=org, choice=bad, at=NOW)
    assert period == columns_period(organization=org, choice="this_month", at=NOW)
    assert period.choice == ColumnsPeriodChoice.THIS_MONTH


def test_sorting_is_stable_and_unknown_sorts_keep_the_order():
    rows = [("a", GroupCredits(5, 0)), ("b", GroupCredits(1, 9)), ("c", GroupCredits(5, 0)), ("d", GroupCredits())]
    by = {"usage": lambda row: row[1]}
    names = lambda ordered: [name for name, _ in ordered]  # noqa: E731
    assert names(columns_sorted(rows, sort=columns_sort("-total"), **by)) == ["b", "a", "c", "d"]
    assert names(columns_sorted(rows, sort=columns_sort("total"), **by)) == ["d", "a", "c", "b"]
    assert names(columns_sorted(rows, sort=columns_sort("-chatbot"), **by)) == ["a", "c", "b", "d"]
    assert names(columns_sorted(rows, sort=columns_sort("image_speech"), **by)) == ["a", "c", "d", "b"]
    for bad in (None, "", "-", "name", "--total", "total;drop"):
        assert columns_sort(bad).column == ""
        assert names(columns_sorted(rows, sort=columns_sort(bad), **by)) == ["a", "b", "c", "d"]
    # A header's link sorts most used first, then the other way round.
    assert columns_sort("").toggled("total") == "-total"
    assert columns_sort("-total").toggled("total") == "total"
    assert columns_sort("total").toggled("total") == "-total"
    assert columns_sort("-total").toggled("chatbot") == "-chatbot"


def test_allocation_is_the_budget_in_budget_mode_and_the_pool_in_shared_mode():
    period = columns_period(organization=Organization(timezone="UTC"), choice="this_month", at=NOW)
    columns = UsageColumns(period, {1: GroupCredits(300, 100), 2: GroupCredits(0, 0)}, GroupCredits(500, 100), NOW)
    spaces = [Workspace(pk=1, is_primary=True), Workspace(pk=2), Workspace(pk=3)]
    balances = {1: 1_400, 2: 0, 3: 50}
    budget = allocation_uses(
        organization=Organization(credit_mode=CreditMode.BUDGET), columns=columns, workspaces=spaces, balances=balances
    )
    assert budget == {
        1: AllocationUse(400, 1_800, shared=False),
        2: AllocationUse(0, 0, shared=False),
        3: AllocationUse(0, 50, shared=False),
    }
    assert [budget[pk].percent for pk in (1, 2, 3)] == [22, 0, 0]
    shared = allocation_uses(
        organization=Organization(credit_mode=CreditMode.SHARED), columns=columns, workspaces=spaces, balances=balances
    )
    # The pool: what every workspace used (600, a deleted one's included) and what the Primary has left (1,400).
    assert shared[1] == AllocationUse(400, 2_000, shared=True)
    assert shared[1].percent == 20
    assert AllocationUse(5, 0, shared=False).percent == 100  # used with nothing left: all of it


# --- the figures --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ColumnsPeriodChoice.values)
def test_columns_equal_the_captured_events_of_the_period(world, choice):
    w = world
    period = columns_period(organization=w.org, choice=choice)
    by_member = usage_columns_by_member(organization=w.org, period=period)
    by_workspace = usage_columns_by_workspace(organization=w.org, period=period)
    members, everything = expected_by(w.org, period.start, period.end, "user_id")
    spaces, _ = expected_by(w.org, period.start, period.end, "workspace_id")
    assert by_member.by_id == members
    assert by_workspace.by_id == spaces
    assert by_member.organization_total == by_workspace.organization_total == everything
    assert everything.total == org_total(w, choice)


def test_a_charge_late_on_the_last_day_in_utc_counts_in_the_next_local_month(world):
    w = world
    april = usage_columns_by_member(organization=w.org, period=columns_period(organization=w.org, choice="this_month"))
    march = usage_columns_by_member(organization=w.org, period=columns_period(organization=w.org, choice="last_month"))
    assert april.of(w.member.pk) == GroupCredits(chatbot=7_311, image_speech=1_204)  # 20:00 UTC on 31 March
    assert april.of(w.owner.pk) == GroupCredits(chatbot=2_468)  # 18:30 UTC: midnight in Kolkata
    assert march.of(w.owner.pk) == GroupCredits(chatbot=111)  # a second before
    assert april.organization_total == GroupCredits(chatbot=7_311 + 2_468 + 3_030, image_speech=1_204 + 1_933 + 4_242)
    assert march.organization_total == GroupCredits(chatbot=111 + 17 + 19, image_speech=5_557)
    # In a UTC organization the same charge is March's (last month: it is already 1 April, 02:00 there).
    w.org.timezone = "UTC"
    utc_march = usage_columns_by_member(
        organization=w.org, period=columns_period(organization=w.org, choice="last_month")
    )
    assert utc_march.of(w.member.pk).chatbot == 7_311 + 17 + 19
    assert utc_march.of(w.owner.pk).chatbot == 2_468 + 111


def test_held_and_released_generations_count_nowhere(world):
    w = world
    columns = usage_columns_by_member(
        organization=w.org, period=columns_period(organization=w.org, choice="this_month")
    )
    assert 9_999 not in {c.chatbot for c in columns.by_id.values()}
    assert columns.of(w.member.pk).total == 8_515


# --- Members tab --------------------------------------------------------------------------------------------------


def member_figures(response) -> dict[str, GroupCredits | None]:
    return {member.user.email: credits for member, credits in response.context["member_rows"]}


def test_members_tab_shows_each_members_credits_and_the_total_of_the_period(world):
    w = world
    response = logged_in(w.owner).get(members_url(w))
    html = text(response)
    figures = member_figures(response)
    assert figures["member@northwind.test"] == GroupCredits(7_311, 1_204)
    assert figures["other@northwind.test"] == GroupCredits(0, 4_242)
    assert figures["viewer@northwind.test"] == GroupCredits()
    # The rows add up to the organization's total of usage_totals, shown in the footer.
    assert sum(credits.total for credits in figures.values()) == org_total(w, "this_month") == 20_188
    footer = re.search(r"<tfoot>(.*?)</tfoot>", html, re.S)
    assert footer
    assert re.findall(r'data-label="[^"]+">([\d,]+)<', footer.group(1)) == ["12,809", "7,379", "20,188"]
    # Each row's cells carry their column's name (phones show it beside the figure).
    assert re.search(r'data-label="Chatbot">7,311</td><td class="num" data-label="Image &amp; Speech">1,204</td>'
                     r'<td class="num strong" data-label="Total">8,515</td>', response.content.decode())  # fmt: skip
    assert "this month" in html
    assert re.search(r"as of <time datetime=\"2026-04-01T07:30:00\+05:30\">1 Apr, 07:30</time> Asia/Kolkata", html)


def test_members_tab_period_parameter_and_bad_values(world):
    w = world
    client = logged_in(w.owner)
    march = member_figures(client.get(members_url(w, "period=last_month")))
    assert march["other@northwind.test"] == GroupCredits(0, 5_557)
    assert march["owner@northwind.test"] == GroupCredits(111, 0)
    assert sum(c.total for c in march.values()) == org_total(w, "last_month")
    html = text(client.get(members_url(w, "period=last_month")))
    assert '<option value="last_month" selected>Last month</option>' in html
    this_month = member_figures(client.get(members_url(w)))
    for bad in ("period=nope", "period=", "period=%00", "period=last_month&period=<b>", "sort=evil&period=-1"):
        response = client.get(members_url(w, bad))
        assert response.status_code == 200, bad
        if "last_month&" not in bad:
            assert member_figures(response) == this_month, bad


def test_members_tab_sorts_by_each_credit_column_across_pages(world, settings):
    w = world
    settings.MEMBERS_PAGE_SIZE = 2
    client = logged_in(w.owner)

    def emails(query):
        return list(member_figures(client.get(members_url(w, query))))

    assert emails("sort=-total") == ["member@northwind.test", "other@northwind.test"]
    assert emails("sort=-total&page=2") == ["admin@northwind.test", "owner@northwind.test"]
    assert emails("sort=-total&page=3") == ["wsadmin@northwind.test", "viewer@northwind.test"]
    assert emails("sort=total")[0] == "viewer@northwind.test"
    assert emails("sort=-image_speech") == ["other@northwind.test", "wsadmin@northwind.test"]
    assert emails("sort=-chatbot&period=last_month") == ["owner@northwind.test", "member@northwind.test"]
    # The headers are links (with the period kept) and say how the table is sorted.
    html = client.get(members_url(w, "sort=-total&period=last_7_days")).content.decode()
    header = (
        '<th scope="col" class="num" aria-sort="descending"><a class="sort-link" href="?period=last_7_days&amp;sort='
    )
    assert f'{header}total"' in html
    assert 'href="?period=last_7_days&amp;sort=-chatbot"' in html
    # The pager keeps the sort and the period; the filter form carries the sort.
    assert "?period=last_7_days&amp;sort=-total&amp;page=2" in html
    assert '<input type="hidden" name="sort" value="-total" form="members-filter">' in html


def test_members_tab_htmx_answers_the_table_with_the_figures(world):
    w = world
    response = logged_in(w.owner).get(members_url(w, "period=last_month&sort=-total"), **HTMX_MEMBERS)
    html = text(response)
    assert html.lstrip().startswith('<div id="members-table"')
    assert "<html" not in html
    assert "5,557" in html
    assert "HX-Target" in response.get("Vary", "")


# --- Workspaces tab -----------------------------------------------------------------------------------------------


def workspace_rows(response) -> dict[str, tuple[GroupCredits | None, AllocationUse | None]]:
    return {ws.name: (credits, bar) for ws, credits, bar in response.context["rows"]}


def test_workspaces_tab_shows_credits_bars_and_totals_to_owners_and_admins(world):
    w = world
    for user in (w.owner, w.admin):
        response = logged_in(user).get(workspaces_url(w))
        html = text(response)
        rows = workspace_rows(response)
        assert rows["Studio"][0] == GroupCredits(7_311, 1_204 + 1_933)
        assert rows["Primary Workspace"][0] == GroupCredits(2_468, 0)
        assert rows["Lab"][0] == GroupCredits(0, 4_242)
        # Live rows plus the deleted workspaces add up to the organization's total.
        deleted = response.context["deleted_usage"]
        assert deleted == GroupCredits(3_030, 0)
        assert sum(c.total for c, _ in rows.values()) + deleted.total == org_total(w, "this_month") == 20_188
        assert "Deleted workspaces" in html
        # Shared mode: each workspace's share of the pool (what all used + the 50,000 left).
        studio_bar = rows["Studio"][1]
        assert studio_bar == AllocationUse(10_448, 20_188 + 50_000, shared=True)
        assert "Share of the pool" in html
        assert '<meter min="0" max="100" value="15"' in html
        assert "10,448 of 70,188" in html
        assert 'aria-label="Studio: 15% of the pool"' in html


def test_workspaces_tab_in_budget_mode_shows_use_of_each_budget(world):
    w = world
    w.org = credit_mode_switch(organization=w.org, mode=CreditMode.BUDGET, actor=w.owner)
    credits_transfer(organization=w.org, source=w.primary, target=w.studio, amount=552, actor=w.owner)
    response = logged_in(w.owner).get(workspaces_url(w))
    html = text(response)
    assert workspace_rows(response)["Studio"][1] == AllocationUse(10_448, 11_000, shared=False)
    assert "Use of its budget" in html
    assert "10,448 of 11,000" in html
    assert 'low="75" high="90" optimum="0"' in html


def test_workspaces_tab_sorts_and_changes_period_with_and_without_htmx(world):
    w = world
    client = logged_in(w.owner)
    assert list(workspace_rows(client.get(workspaces_url(w, "sort=-total")))) == [
        "Studio",
        "Lab",
        "Primary Workspace",
    ]
    assert next(iter(workspace_rows(client.get(workspaces_url(w, "sort=total"))))) == "Primary Workspace"
    march = client.get(workspaces_url(w, "period=last_month&sort=-total"), **HTMX_WORKSPACES)
    html = text(march)
    assert html.lstrip().startswith('<section id="workspaces-table"')
    assert "5,557" in html
    assert next(iter(workspace_rows(march))) == "Lab"
    assert client.get(workspaces_url(w, "period=bogus&sort=bogus")).status_code == 200


def test_a_workspace_admin_sees_figures_of_their_workspaces_only(world):
    w = world
    response = logged_in(w.ws_admin).get(workspaces_url(w))
    html = text(response)
    rows = workspace_rows(response)
    assert rows["Studio"][0] == GroupCredits(7_311, 3_137)
    assert rows["Lab"][0] is None  # a member there: no figures
    assert "10,448" in html
    for figure in ("4,242", "2,468", "20,188", "3,030"):
        assert figure not in html
    assert "Your workspaces" in html
    assert "<meter" not in html  # budgets and the pool are the Owner's and Admins'


@pytest.mark.parametrize("persona", ["member", "viewer", "other"])
def test_members_and_viewers_never_see_anyones_figures(world, persona):
    w = world
    client = logged_in(getattr(w, persona))
    assert client.get(members_url(w)).status_code == 404
    html = text(client.get(workspaces_url(w, "period=last_month")))
    for figure in ("7,311", "8,515", "10,448", "4,242", "5,557", "1,933", "2,468", "20,188"):
        assert figure not in html, figure
    assert "Chatbot" not in html
    assert "sort=" not in html


# --- Overview -----------------------------------------------------------------------------------------------------


def overview_usage(html: str, element_id: str) -> str | None:
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    return match.group(1) if match else None


def test_overview_shows_my_usage_and_the_workspaces_to_those_who_may_see_it(world):
    w = world
    html = text(logged_in(w.ws_admin).get(overview_url(w, w.studio)))
    assert overview_usage(html, "my-usage") == "1,933"
    assert overview_usage(html, "workspace-usage") == "10,448"
    assert "Chatbot <strong>7,311</strong> · Image & Speech <strong>3,137</strong>" in html
    assert "Daily credits in this workspace" in html

    owner_html = text(logged_in(w.owner).get(overview_url(w, w.primary)))
    assert overview_usage(owner_html, "my-usage") == "2,468"
    assert overview_usage(owner_html, "workspace-usage") == "2,468"


@pytest.mark.parametrize("persona", ["member", "viewer"])
def test_overview_shows_a_member_only_their_own_usage(world, persona):
    w = world
    html = text(logged_in(getattr(w, persona)).get(overview_url(w, w.studio)))
    mine = "8,515" if persona == "member" else "0"
    assert overview_usage(html, "my-usage") == mine
    assert overview_usage(html, "workspace-usage") is None
    assert "My daily credits in this workspace" in html
    for figure in ("10,448", "1,933", "3,137"):
        assert figure not in html, figure
    if persona == "viewer":  # nothing spent: said in words, not an empty chart
        assert "You spent nothing in this workspace in the last 30 days." in html
        assert 'class="trend-chart"' not in html
    else:
        assert 'class="trend-chart"' in html


def test_overview_trend_is_an_svg_of_the_last_30_local_days(world):
    w = world
    overview = workspace_usage_overview(workspace=w.studio, user=w.ws_admin, with_workspace=True)
    assert len(overview.trend) == 30
    assert overview.trend[0].day.isoformat() == "2026-03-03"
    assert overview.trend[-1].day.isoformat() == "2026-04-01"
    days = {day.day.isoformat(): day.credits for day in overview.trend if day.credits}
    assert days == {"2026-03-03": 17, "2026-04-01": 7_311 + 1_204 + 1_933}  # 2 March is 31 days ago
    mine = workspace_usage_overview(workspace=w.studio, user=w.member, with_workspace=False)
    assert mine.workspace is None
    assert {day.day.isoformat(): day.credits for day in mine.trend if day.credits} == {
        "2026-03-03": 17,
        "2026-04-01": 8_515,
    }

    html = text(logged_in(w.ws_admin).get(overview_url(w, w.studio)))
    svg = re.search(r"<svg class=\"trend-chart\".*?</svg>", html, re.S)
    assert svg
    assert 'role="img"' in svg.group(0)
    assert svg.group(0).count("<rect") == 30
    assert "<title>Wed 1 Apr: 10,448 credits</title>" in svg.group(0)
    assert "<title>Tue 3 Mar: 17 credits</title>" in svg.group(0)
    assert "10,465 credits from 3 Mar to 1 Apr; the busiest day was 1 Apr with 10,448." in svg.group(0)
    # The busiest day's bar is the full height; the rest are to scale.
    assert re.search(r'<rect class="trend-bar" x="290.0" y="4.0" width="7.0" height="76.0">', svg.group(0))
    # The same figures as a table, for screen readers and without the chart.
    assert re.search(r"<td data-label=\"Day\">Wed 1 Apr</td><td class=\"num\" data-label=\"Credits\">10,448</td>", html)
    assert "as of" in html


# --- query counts -------------------------------------------------------------------------------------------------


def build(size: int) -> dict:
    """An organization (Kolkata) with `size` members and `size` workspaces, each member using each group somewhere."""
    org = make_organization(timezone="Asia/Kolkata")
    spaces = [make_workspace(org) for _ in range(size - 1)]
    ws_admin = make_member(org, workspaces={spaces[0]: WorkspaceRole.ADMIN}).user
    member = make_member(org, workspaces={spaces[0]: WorkspaceRole.MEMBER}).user
    people = [org.created_by, ws_admin, member]
    people += [
        make_member(org, workspaces={spaces[i % len(spaces)]: WorkspaceRole.MEMBER}).user for i in range(size - 3)
    ]
    for i, user in enumerate(people):
        for tool in ("chat", "image"):
            record(spaces[i % len(spaces)], user, tool, 10 + i, NOW - timedelta(days=i % 20))
    return {"org": org, "owner": org.created_by, "ws_admin": ws_admin, "member": member, "workspace": spaces[0]}


PAGES = {
    "members": ("owner", lambda b: reverse("orgs:members", args=[b["org"].slug]), {}),
    "members sorted": ("owner", lambda b: reverse("orgs:members", args=[b["org"].slug]) + "?sort=-total", {}),
    "members htmx": (
        "owner",
        lambda b: reverse("orgs:members", args=[b["org"].slug]) + "?period=last_30_days",
        HTMX_MEMBERS,
    ),
    "workspaces": ("owner", lambda b: reverse("workspaces:list", args=[b["org"].slug]) + "?sort=-total", {}),
    "workspaces htmx": ("owner", lambda b: reverse("workspaces:list", args=[b["org"].slug]), HTMX_WORKSPACES),
    "workspaces as workspace admin": ("ws_admin", lambda b: reverse("workspaces:list", args=[b["org"].slug]), {}),
    "workspaces as member": ("member", lambda b: reverse("workspaces:list", args=[b["org"].slug]), {}),
    "overview as owner": (
        "owner",
        lambda b: reverse("workspaces:overview", args=[b["org"].slug, b["workspace"].slug]),
        {},
    ),
    "overview as member": (
        "member",
        lambda b: reverse("workspaces:overview", args=[b["org"].slug, b["workspace"].slug]),
        {},
    ),
}


def test_usage_pages_cost_the_same_queries_with_3_or_30_members_and_workspaces(travel, django_assert_num_queries):
    small, large = build(3), build(30)
    assert Workspace.objects.live().filter(organization=large["org"]).count() == 30
    counts = {}
    for name, (persona, url, headers) in PAGES.items():
        client = logged_in(small[persona])
        client.get(url(small), **headers)  # the first visit remembers the organization
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(small), **headers).status_code == 200
        counts[name] = len(queries)
        client = logged_in(large[persona])
        client.get(url(large), **headers)
        with django_assert_num_queries(counts[name], info=name):
            response = client.get(url(large), **headers)
        assert response.status_code == 200
    assert max(counts.values()) <= 17, counts
