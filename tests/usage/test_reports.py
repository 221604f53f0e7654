"""A usage report's question (period, granularity, filters) read from the URL, and the scope a role may see."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.http import QueryDict

from orgs.models import OrganizationRole
from tests.factories import make_member, make_organization
from usage.reports import UsageQuery, UsageScope, usage_filters, usage_query_parse, usage_scope_for
from workspaces.models import WorkspaceRole

TODAY = date(2026, 3, 18)


def parse(query_string: str):
    return usage_query_parse(QueryDict(query_string), today=TODAY)


def test_default_is_this_month_by_day():
    parsed = parse("")
    assert parsed.problems == []
    assert (parsed.query.start, parsed.query.end, parsed.query.granularity) == (date(2026, 3, 1), TODAY, "day")


@pytest.mark.parametrize(
    ("range_key", "start", "end"),
    [
        ("last_month", date(2026, 2, 1), date(2026, 2, 28)),
        ("7d", date(2026, 3, 12), TODAY),
        ("30d", date(2026, 2, 17), TODAY),
        ("90d", date(2025, 12, 19), TODAY),
    ],
)
def test_named_ranges(range_key, start, end):
    query = parse(f"range={range_key}").query
    assert (query.start, query.end) == (start, end)
    assert query.days == (end - start).days + 1


def test_custom_range_and_filters_round_trip_through_params():
    parsed = parse(
        "range=custom&start=2026-01-05&end=2026-01-09&granularity=hour&workspace=3,1&member=7&tool=chat&model=gpt-4o"
    )
    query = parsed.query
    assert parsed.problems == []
    assert (query.start, query.end, query.granularity) == (date(2026, 1, 5), date(2026, 1, 9), "hour")
    assert (query.workspace_ids, query.user_ids, query.tools, query.models) == ((1, 3), (7,), ("chat",), ("gpt-4o",))
    again = usage_query_parse(query.params(), today=TODAY).query
    assert again == query


@pytest.mark.parametrize(
    ("query_string", "fragment"),
    [
        ("range=yesterday", "Unknown period"),
        ("range=custom&start=2026-01-05", "needs a start and an end"),
        ("range=custom&start=2026-02-05&end=2026-01-05", "before the start"),
        ("range=custom&start=2024-01-01&end=2026-01-05", "at most 400 days"),
        ("range=30d&granularity=hour", "Hours are shown for periods up to 7 days"),
        ("granularity=second", "Unknown granularity"),
        ("workspace=9223372036854775808000", "Ignored the workspace filter"),
        ("member=abc", "Ignored the member filter"),
        ("tool=telepathy", "Ignored the tool filter"),
    ],
)
def test_bad_parameters_fall_back_and_say_so(query_string, fragment):
    parsed = parse(query_string)
    assert any(fragment in problem for problem in parsed.problems), parsed.problems
    assert parsed.query.days <= 400


def test_previous_period_of_a_month_is_the_whole_previous_month_and_of_days_the_same_length():
    assert parse("range=this_month").query.previous().start == date(2026, 2, 1)
    assert parse("range=this_month").query.previous().end == date(2026, 2, 28)
    week = parse("range=7d").query
    assert (week.previous().start, week.previous().end) == (date(2026, 3, 5), date(2026, 3, 11))


def test_bounds_are_local_midnights_in_the_organization_time_zone():
    query = UsageQuery(start=date(2026, 3, 1), end=date(2026, 3, 31))
    start, end = query.bounds(ZoneInfo("Asia/Kathmandu"))  # +05:45
    assert start == datetime(2026, 2, 28, 18, 15, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 18, 15, tzinfo=UTC)


def test_filters_are_narrowed_to_the_scope():
    query = UsageQuery(start=TODAY, end=TODAY, workspace_ids=(1, 2), user_ids=(5,))
    assert usage_filters(query, UsageScope(workspace_ids=None, user_ids=None)).workspace_ids == [1, 2]
    assert usage_filters(query, UsageScope(workspace_ids=(2, 3), user_ids=None)).workspace_ids == [2]
    own = usage_filters(query, UsageScope(workspace_ids=None, user_ids=(9,)))
    assert own.user_ids == []  # another member's usage: nothing matches
    unfiltered = usage_filters(UsageQuery(start=TODAY, end=TODAY), UsageScope(workspace_ids=(4,), user_ids=None))
    assert unfiltered.as_kwargs() == {"workspace_ids": [4], "user_ids": None, "tools": None, "models": None}


@pytest.mark.django_db
def test_scope_follows_the_roles():
    organization = make_organization()
    owner = organization.memberships.get().user
    primary = organization.workspaces.get()
    admin = make_member(organization, role=OrganizationRole.ADMIN).user
    member = make_member(organization, workspaces={primary: WorkspaceRole.MEMBER}).user
    workspace_admin = make_member(organization, workspaces={primary: WorkspaceRole.ADMIN}).user

    assert usage_scope_for(user=owner, organization=organization).whole_organization
    assert usage_scope_for(user=admin, organization=organization).whole_organization
    assert usage_scope_for(user=workspace_admin, organization=organization) == UsageScope(
        workspace_ids=(primary.pk,), user_ids=None
    )
    assert usage_scope_for(user=member, organization=organization) == UsageScope(
        workspace_ids=None, user_ids=(member.pk,)
    )
