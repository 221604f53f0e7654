"""The Usage tab (/o/<org>/usage/): what each role sees, filters that combine, figures that equal `usage_totals` and
the raw events (days cut in the organization's time zone), the change against the previous period, the chart's
series, htmx partials, bad parameters, and a query count that does not grow with the data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import ledger
from orgs.models import OrganizationRole
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from tests.usage.test_rollups import rollup_caught_up
from usage.catalog import prices_ensure_defaults
from usage.dashboard import usage_dashboard
from usage.models import Price, UsageEvent, UsageRollup, UsageStatus
from usage.reports import usage_filters, usage_query_parse, usage_scope_for
from usage.rollup import usage_totals
from usage.services import usage_charge, usage_hold_place
from workspaces.models import WorkspaceRole

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)  # a Wednesday
CHATBOT, IMAGE_SPEECH, TOTAL = 0, 1, 2


def charge(world, at: datetime, workspace, user, tool: str, model: str, units: int) -> UsageEvent:
    price = Price.objects.get(tool=tool, model=model)
    with time_machine.travel(at, tick=False):
        return usage_charge(
            workspace=workspace, user=user, price=price, units=units, idempotency_key=f"k-{at.isoformat()}-{model}"
        ).event


def make_world(timezone: str = "UTC") -> SimpleNamespace:
    """An organization with workspaces Atlas and Borealis; Mia (member of Atlas), Noah (member of Atlas and
    Borealis), Wes (admin of Borealis), an Admin; usage this month and last."""
    prices_ensure_defaults()
    with time_machine.travel(datetime(2026, 1, 5, tzinfo=UTC), tick=False):
        owner = UserFactory(name="Olive Owner", email="olive@example.test")
        org = make_organization(owner=owner, name="Usage Org", timezone=timezone)
        atlas = make_workspace(org, name="Atlas Workspace")
        borealis = make_workspace(org, name="Borealis Workspace")
        mia = UserFactory(name="Mia Member", email="mia@example.test")
        noah = UserFactory(name="Noah Neighbour", email="noah@example.test")
        wes = UserFactory(name="Wes Wsadmin", email="wes@example.test")
        admin = UserFactory(name="Ada Admin", email="ada@example.test")
        make_member(org, user=mia, workspaces={atlas: WorkspaceRole.MEMBER})
        make_member(org, user=noah, workspaces={atlas: WorkspaceRole.MEMBER, borealis: WorkspaceRole.MEMBER})
        make_member(org, user=wes, workspaces={borealis: WorkspaceRole.ADMIN})
        make_member(org, user=admin, role=OrganizationRole.ADMIN)
        ledger.credits_grant(organization=org, amount=100_000, actor=owner)
    world = SimpleNamespace(org=org, owner=owner, admin=admin, atlas=atlas, borealis=borealis, mia=mia, noah=noah,
                            wes=wes)  # fmt: skip
    day = lambda d, h=10: datetime(2026, 3, d, h, tzinfo=UTC)  # noqa: E731
    charge(world, datetime(2026, 2, 20, 9, tzinfo=UTC), atlas, mia, "chat", "gpt-4o", 1)  # 5, last month
    charge(world, day(2), atlas, mia, "chat", "gpt-4o", 2)  # 10
    charge(world, day(10), atlas, mia, "image", "flux-pro", 1)  # 12
    charge(world, day(5), borealis, noah, "video", "kling-1.6", 3)  # 60
    charge(world, day(17), borealis, noah, "chat", "gpt-4o-mini", 4)  # 4
    charge(world, day(12), atlas, noah, "speech", "elevenlabs-v2", 2)  # 16
    charge(world, day(16), borealis, wes, "image", "sdxl", 2)  # 12
    return world


@pytest.fixture
def world() -> SimpleNamespace:
    return make_world()


def page(user, org, query: str = "", **headers: str):
    client = Client()
    client.force_login(user)
    url = reverse("usage:dashboard", kwargs={"org_slug": org.slug})
    with time_machine.travel(NOW, tick=False):
        return client.get(f"{url}?{query}" if query else url, **headers)


def totals(response) -> list[int]:
    return [change.current for change in response.context["dashboard"].totals]


def html(response) -> str:
    return response.content.decode()


def raw_credits(org, *, start: datetime, end: datetime, **filters) -> int:
    events = UsageEvent.objects.filter(organization_id=org.pk, status=UsageStatus.CAPTURED)
    return sum(e.credits for e in events.filter(created_at__gte=start, created_at__lt=end, **filters))


# --- who sees what --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_see_the_whole_organization(world, role):
    response = page(getattr(world, role), world.org)
    assert response.status_code == 200
    assert totals(response) == [14, 100, 114]
    text = html(response)
    for name in ("Mia Member", "Noah Neighbour", "Wes Wsadmin", "Atlas Workspace", "Borealis Workspace"):
        assert name in text
    assert 'id="usage-member"' in text  # the member filter


def test_a_member_sees_only_their_own_usage(world):
    response = page(world.mia, world.org)
    assert totals(response) == [10, 12, 22]
    text = html(response)
    for other in ("Noah Neighbour", "noah@example.test", "Wes Wsadmin", "wes@example.test", "Borealis Workspace"):
        assert other not in text
    # Noah's and Wes's figures are nowhere either: no 60 (video), 16 (speech), 4 (chat mini) or 114 (the org's total)
    figures = set(re.findall(r">\s*([\d,]+)\s*<", text))
    assert not {"60", "16", "114", "100"} & figures
    assert 'id="usage-member"' not in text  # no member filter
    assert [b.name for b in response.context["dashboard"].breakdowns] == ["workspace", "tool", "model"]


def test_a_member_naming_another_member_or_workspace_gets_zeros(world):
    for query in (f"member={world.noah.pk}", f"workspace={world.borealis.pk}&member={world.noah.pk}"):
        response = page(world.mia, world.org, query)
        assert totals(response) == [0, 0, 0], query
        assert "Noah Neighbour" not in html(response)
        assert "not among those you can see" in html(response)


def test_a_workspace_admin_sees_their_workspaces_only(world):
    response = page(world.wes, world.org)
    assert totals(response) == [4, 72, 76]  # Borealis: Noah's video 60 and chat 4, Wes's image 12
    text = html(response)
    assert "Atlas Workspace" not in text
    assert "Mia Member" not in text
    assert "Noah Neighbour" in text  # a member of their workspace
    dashboard = response.context["dashboard"]
    assert [choice.label for choice in dashboard.workspace_choices] == ["Borealis Workspace"]
    assert "Mia Member" not in {choice.label for choice in dashboard.member_choices}


def test_a_workspace_outside_the_scope_gives_zeros_never_data(world):
    response = page(world.wes, world.org, f"workspace={world.atlas.pk}")
    assert response.status_code == 200
    assert totals(response) == [0, 0, 0]
    assert "Atlas Workspace" not in html(response)
    assert "Unknown workspace" in html(response)
    other = make_organization()
    foreign = other.workspaces.get()
    assert totals(page(world.owner, world.org, f"workspace={foreign.pk}")) == [0, 0, 0]


def test_strangers_get_404(world, client):
    stranger = UserFactory()
    assert page(stranger, world.org).status_code == 404


# --- filters combine, and every figure is the same read -------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("workspace={atlas}", [10, 28, 38]),
        ("workspace={atlas}&tool=chat", [10, 0, 10]),
        ("member={noah}&tool=video", [0, 60, 60]),
        ("workspace={atlas}&member={noah}", [0, 16, 16]),
        ("model=gpt-4o-mini", [4, 0, 4]),
        ("workspace={atlas}&workspace={borealis}&tool=image", [0, 24, 24]),
        ("range=custom&start=2026-03-05&end=2026-03-12", [0, 88, 88]),
    ],
)
def test_filters_combine(world, query, expected):
    filled = query.format(atlas=world.atlas.pk, borealis=world.borealis.pk, noah=world.noah.pk)
    response = page(world.owner, world.org, filled)
    assert totals(response) == expected
    assert response.context["dashboard"].problems == []


@pytest.mark.parametrize("role", ["owner", "wes", "mia"])
@pytest.mark.parametrize("query", ["", "range=30d&tool=chat,image", "range=last_month", "granularity=week"])
def test_every_figure_equals_usage_totals_and_the_raw_events(world, role, query):
    user = getattr(world, role)
    response = page(user, world.org, query)
    dashboard = response.context["dashboard"]
    parsed = usage_query_parse(dict(item.split("=") for item in query.split("&") if item), today=NOW.date())
    assert parsed.query == dashboard.query
    scope = usage_scope_for(user=user, organization=world.org)
    start, end = dashboard.query.bounds(ZoneInfo("UTC"))
    filters = usage_filters(dashboard.query, scope).as_kwargs()
    read = usage_totals(organization=world.org, start=start, end=end, **filters).rows[0]
    assert totals(response)[TOTAL] == read.credits
    raw_filters = {f"{name}__in": values for name, values in
                   (("workspace_id", filters["workspace_ids"]), ("user_id", filters["user_ids"]),
                    ("tool", filters["tools"]), ("model", filters["models"])) if values is not None}  # fmt: skip
    assert read.credits == raw_credits(world.org, start=start, end=end, **raw_filters)
    # every panel adds up to the same total
    assert sum(series.total for series in dashboard.chart.series) == read.credits
    for breakdown in dashboard.breakdowns:
        assert sum(row.credits for row in breakdown.rows) == read.credits, breakdown.name
        assert sum(row.generations for row in breakdown.rows) == read.generations, breakdown.name


def test_days_are_cut_in_the_organization_time_zone():
    """Asia/Kolkata (+05:30): a charge at 20:00 UTC on the 17th is on the 18th there."""
    world = make_world("Asia/Kolkata")
    late = charge(world, datetime(2026, 3, 17, 20, 0, tzinfo=UTC), world.atlas, world.mia, "image", "dall-e-3", 1)
    assert late.credits == 16
    on_18th = page(world.owner, world.org, "range=custom&start=2026-03-18&end=2026-03-18")
    on_17th = page(world.owner, world.org, "range=custom&start=2026-03-17&end=2026-03-17")
    assert totals(on_18th) == [0, 16, 16]
    assert totals(on_17th) == [4, 0, 4]  # Noah's chat at 10:00 UTC = 15:30 IST on the 17th
    zone = ZoneInfo("Asia/Kolkata")
    for response, day in ((on_18th, date(2026, 3, 18)), (on_17th, date(2026, 3, 17))):
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        assert totals(response)[TOTAL] == raw_credits(world.org, start=start, end=start + timedelta(days=1))
        chart = response.context["dashboard"].chart
        assert len(chart.labels) == 24  # a day is shown by the hour: every local hour, empty ones included
        assert chart.labels[0] == "00:00"
    hour = on_18th.context["dashboard"].chart.points[1]  # 01:00-02:00 IST holds 20:00 UTC + 5:30 = 01:30
    assert (hour.label, hour.total) == ("01:00", 16)
    week = page(world.owner, world.org, "range=7d").context["dashboard"].chart
    assert week.labels[-1] == "Wed Mar 18"
    assert [p.total for p in week.points][-2:] == [4, 16]


@pytest.mark.parametrize(
    ("query", "labels"),
    [
        ("range=7d", ["Thu Mar 12", "Fri Mar 13", "Sat Mar 14", "Sun Mar 15", "Mon Mar 16", "Tue Mar 17",
                      "Wed Mar 18"]),
        ("granularity=week", ["Week of Feb 23", "Week of Mar 2", "Week of Mar 9", "Week of Mar 16"]),
        ("range=90d&granularity=month", ["December 2025", "January 2026", "February 2026", "March 2026"]),
    ],
)  # fmt: skip
def test_the_x_axis_shows_every_period_of_the_range(world, query, labels):
    assert page(world.owner, world.org, query).context["dashboard"].chart.labels == labels


@pytest.mark.parametrize("chart", ["group", "tool"])
def test_the_chart_series_add_up_to_the_totals(world, chart):
    response = page(world.owner, world.org, f"chart={chart}")
    dashboard = response.context["dashboard"]
    assert sum(series.total for series in dashboard.chart.series) == totals(response)[TOTAL]
    by_key = {series.key: series.total for series in dashboard.chart.series}
    if chart == "group":
        assert by_key == {"chatbot": 14, "image_speech": 100}
    else:
        assert by_key == {"chat": 14, "image": 24, "video": 60, "speech": 16}
    assert len(dashboard.chart.labels) == 18  # Mar 1-18, by day
    # the chart's data travels as JSON beside the table holding the same figures
    assert 'id="usage-chart-data" type="application/json"' in html(response)
    assert "Table of the chart" in html(response)


def test_the_change_against_the_previous_period(world):
    changes = page(world.owner, world.org).context["dashboard"].totals
    chatbot, image_speech, total = changes
    assert (chatbot.current, chatbot.previous, chatbot.difference, chatbot.percent) == (14, 5, 9, 180.0)
    assert image_speech.is_new
    assert image_speech.percent is None
    assert (total.previous, total.difference) == (5, 109)
    text = html(page(world.owner, world.org))
    assert "180.0%" in text
    assert "New" in text
    fell = page(world.owner, world.org, "range=custom&start=2026-03-02&end=2026-03-02").context["dashboard"].totals
    assert (fell[TOTAL].previous, fell[TOTAL].current, fell[TOTAL].direction) == (0, 10, "new")
    after = page(world.owner, world.org, "range=custom&start=2026-03-03&end=2026-03-03").context["dashboard"]
    assert after.totals[TOTAL].direction == "down"
    assert after.totals[TOTAL].percent == -100.0


# --- breakdowns -------------------------------------------------------------------------------------------------------


def test_breakdowns_show_units_per_model_and_never_add_different_units(world):
    extra = charge(world, datetime(2026, 3, 14, 10, tzinfo=UTC), world.atlas, world.mia, "speech", "whisper", 5)
    assert extra.credits == 15
    dashboard = page(world.owner, world.org).context["dashboard"]
    by_name = {breakdown.name: breakdown for breakdown in dashboard.breakdowns}
    models = {row.label: (row.units, row.unit_label) for row in by_name["model"].rows}
    assert models["elevenlabs-v2"] == (2, "\N{MULTIPLICATION SIGN} 1k characters")
    assert models["whisper"] == (5, "minutes")
    assert models["kling-1.6"] == (3, "seconds")
    tools = {row.label: (row.units, row.unit) for row in by_name["tool"].rows}
    assert tools["Speech"] == (None, "")  # 1k characters and minutes are not added up
    assert tools["Video"] == (3, "second")
    assert "mixed units" in html(page(world.owner, world.org))
    workspaces = {row.label: (row.credits, row.generations, round(row.share, 1)) for row in by_name["workspace"].rows}
    assert workspaces == {"Atlas Workspace": (53, 4, 41.1), "Borealis Workspace": (76, 3, 58.9)}


def test_breakdowns_sort_by_links_in_the_url(world):
    def order(query: str) -> list[str]:
        breakdown = page(world.owner, world.org, query).context["dashboard"].breakdowns[1]
        return [row.label for row in breakdown.rows]

    assert order("") == ["Noah Neighbour", "Mia Member", "Wes Wsadmin"]  # 80, 22, 12 credits
    assert order("sort=name") == ["Mia Member", "Noah Neighbour", "Wes Wsadmin"]
    assert order("sort=-name") == ["Wes Wsadmin", "Noah Neighbour", "Mia Member"]
    assert order("sort=credits") == ["Wes Wsadmin", "Mia Member", "Noah Neighbour"]
    links = page(world.owner, world.org).context["dashboard"].breakdowns[0].sort_links
    assert links["credits"].direction == "descending"
    assert "sort=credits" in links["credits"].querystring
    assert links["name"].direction == ""
    assert "sort=name" in links["name"].querystring


def test_each_row_links_to_the_view_filtered_to_it(world):
    dashboard = page(world.owner, world.org, "range=30d").context["dashboard"]
    for breakdown in dashboard.breakdowns:
        for row in breakdown.rows:
            assert "range=30d" in row.querystring
            filtered = page(world.owner, world.org, row.querystring)
            assert totals(filtered)[TOTAL] == row.credits, (breakdown.name, row.label)
    assert f'href="/o/{world.org.slug}/usage/?range=30d&amp;granularity=day&amp;workspace={world.atlas.pk}"' in html(
        page(world.owner, world.org, "range=30d")
    )


# --- the page: partials, bad parameters, "as of", queries ------------------------------------------------------------


@pytest.mark.parametrize("target", ["usage-totals", "usage-chart", "usage-breakdowns", "usage-report"])
def test_an_htmx_request_for_a_panel_gets_just_that_partial(world, target):
    response = page(world.owner, world.org, "range=7d", HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)
    text = html(response)
    assert text.lstrip().startswith(
        f'<{"section" if target in ("usage-totals", "usage-chart") else "div"} id="{target}"'
    )
    assert "<html" not in text
    assert "side-nav" not in text
    assert "HX-Target" in response["Vary"]
    full = page(world.owner, world.org, "range=7d", HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target,
                HTTP_HX_HISTORY_RESTORE_REQUEST="true")  # fmt: skip
    assert "<html" in html(full)


def test_without_htmx_the_whole_page_with_a_get_form_and_the_chart_script(world):
    text = html(page(world.owner, world.org))
    assert '<form id="usage-filters" class="usage-filters" method="get"' in text
    assert 'hx-push-url="true"' in text
    assert "vendor/chartjs/chart.umd.min.js" in text
    assert "js/usage.js" in text
    assert re.search(r'<a href="/o/[^"]+/usage/" class="side-link active"', text)  # the tab in the navigation
    workspace_page = Client()
    workspace_page.force_login(world.owner)
    assert "chart.umd.min.js" not in workspace_page.get(reverse("orgs:members", args=[world.org.slug])).content.decode()


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("member=9223372036854775808", "Ignored the member filter"),
        ("range=custom&start=garbage&end=2026-03-01", "needs a start and an end"),
        ("start=garbage", None),
        ("workspace=-1", "Ignored the workspace filter"),
        ("workspace=999999999", "not among those you can see"),
        ("granularity=century", "Unknown granularity"),
        ("range=7d&granularity=hour&chart=pie", "Unknown chart"),
        ("sort=password", "Unknown sort"),
        ("tool=%00", "Ignored the tool filter"),
        ("model=" + "x" * 500, None),
    ],
)
def test_bad_parameters_give_a_notice_never_a_500(world, query, fragment):
    response = page(world.owner, world.org, query)
    assert response.status_code == 200
    if fragment:
        assert fragment in html(response)
        assert 'class="notice"' in html(response)


def test_the_page_says_as_of_when(world):
    text = html(page(world.owner, world.org))
    assert "As of 18 Mar 2026, 12:00 (UTC), exact to the last charge" in text


def test_credits_still_held_are_not_in_the_totals_and_are_said(world):
    with time_machine.travel(datetime(2026, 3, 18, 11, tzinfo=UTC), tick=False):
        usage_hold_place(
            workspace=world.atlas, user=world.mia, price=Price.objects.get(tool="video", model="runway-gen3"), units=2,
            ttl=timedelta(hours=2), idempotency_key="held",
        )  # fmt: skip
    response = page(world.owner, world.org)
    assert totals(response) == [14, 100, 114]
    assert "50 more credits held by generations still running" in html(response)


def _grow(world, *, members: int, events_per_member: int) -> None:
    """Many more members and events (straight rows: the read does not care how they were written)."""
    prices = list(Price.objects.all())
    for index in range(members):
        user = make_member(world.org, workspaces={world.atlas: WorkspaceRole.MEMBER}).user
        UsageEvent.objects.bulk_create(
            UsageEvent(
                organization_id=world.org.pk, workspace=world.atlas, user=user, tool=price.tool, model=price.model,
                units=2, credits=2 * price.credits_per_unit, status=UsageStatus.CAPTURED,
                idempotency_key=f"bulk-{index}-{n}", ledger_transaction_id=1,
                created_at=NOW - timedelta(hours=n * 7), settled_at=NOW,
            )
            for n, price in ((n, prices[n % len(prices)]) for n in range(events_per_member))
        )  # fmt: skip


USAGE_QUERIES = 18  # session, user, organization and permissions, navigation, the dashboard's reads, statements


@pytest.mark.parametrize("role", ["owner", "wes", "mia"])
def test_the_query_count_does_not_grow_with_the_data(world, role, django_assert_num_queries):
    user = getattr(world, role)
    client = Client()
    client.force_login(user)
    url = reverse("usage:dashboard", kwargs={"org_slug": world.org.slug})
    queries = "range=90d&" + urlencode({"workspace": world.atlas.pk, "tool": "chat"})
    with time_machine.travel(NOW, tick=False):
        client.get(url)  # the session remembers the organization once
    counts = []
    for grow in (False, True):
        if grow:
            _grow(world, members=12, events_per_member=60)
        for query in ("", queries):
            with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
                assert client.get(f"{url}?{query}").status_code == 200
            counts.append(len(captured))
    assert counts[0] == counts[2]
    assert counts[1] == counts[3], counts
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(counts[0]):
        client.get(url)
    assert max(counts) <= USAGE_QUERIES, counts


def test_the_dashboard_function_reads_in_a_fixed_number_of_queries(world, django_assert_num_queries):
    """The reads alone: the scope (1 or 2), three usage_totals reads (2 each), prices, workspaces, people."""
    with django_assert_num_queries(10):
        usage_dashboard(user=world.owner, organization=world.org, params={}, at=NOW)
    with django_assert_num_queries(11):  # a member's scope: two queries, and their workspaces
        usage_dashboard(user=world.mia, organization=world.org, params={}, at=NOW)


def test_the_filter_form_pushes_the_canonical_url_of_the_view(world):
    """The form sends every field (empty choices, the dates of a named period); the address bar gets the view's URL."""
    query = f"range=30d&start=2026-01-01&end=2026-01-02&granularity=week&workspace={world.atlas.pk}&member=&tool="
    response = page(world.owner, world.org, query, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="usage-report")
    url = f"/o/{world.org.slug}/usage/?range=30d&granularity=week&workspace={world.atlas.pk}"
    assert response["HX-Push-Url"] == url
    with_problem = page(
        world.owner, world.org, "range=yesterday", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="usage-report"
    )
    assert "HX-Push-Url" not in with_problem  # the address keeps what was asked, the notice says what was shown
    assert "HX-Push-Url" not in page(world.owner, world.org, query)  # a plain page load has its own URL


@pytest.mark.django_db(transaction=True)
def test_figures_are_exact_from_the_roll_up_plus_the_newer_events():
    """Once the roll-up has run, the page reads its rows plus the events charged since: still the raw events."""
    world = make_world("Asia/Kolkata")
    run = rollup_caught_up()
    assert run.ran
    assert run.added > 0
    assert UsageRollup.objects.filter(organization_id=world.org.pk).exists()
    charge(world, datetime(2026, 3, 17, 20, 0, tzinfo=UTC), world.borealis, world.wes, "image", "dall-e-3", 1)  # 16
    response = page(world.owner, world.org)
    zone = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 3, 1, tzinfo=zone)
    assert totals(response)[TOTAL] == raw_credits(world.org, start=start, end=start + timedelta(days=18)) == 130
    by_workspace = {row.label: row.credits for row in response.context["dashboard"].breakdowns[0].rows}
    assert by_workspace == {"Atlas Workspace": 38, "Borealis Workspace": 92}


def test_the_page_links_to_the_client_statements_of_the_workspaces_one_may_see(world):
    def links(user) -> list[str]:
        return [workspace.name for workspace in page(user, world.org).context.get("statement_workspaces") or []]

    assert links(world.owner) == ["Atlas Workspace", "Borealis Workspace", "Primary Workspace"]
    assert links(world.admin) == ["Atlas Workspace", "Borealis Workspace", "Primary Workspace"]
    assert links(world.wes) == ["Borealis Workspace"]  # the workspace he administers
    assert links(world.mia) == []
    text = html(page(world.wes, world.org))
    statements = reverse("usage:statements", kwargs={"org_slug": world.org.slug, "ws_slug": world.borealis.slug})
    assert f'<a href="{statements}">Borealis Workspace</a>' in text
    assert "Client statements" not in html(page(world.mia, world.org))
    # A panel refresh (htmx) answers the panel only.
    partial = page(world.owner, world.org, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="usage-totals")
    assert "Client statements" not in partial.content.decode()
