"""`usage_dashboard`: every figure of the Usage tab in a fixed number of queries (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils.timezone import now as current_time

from orgs.models import MembershipStatus, Organization, OrganizationRole, User
from qolaba.routers import replica_alias, replica_as_of
from qolaba.tools import TOOL_GROUP, ReportGroup, Tool
from usage.dashboard.figures import (
    DEFAULT_SORT,
    GROUP_LABELS,
    ActiveFilter,
    Breakdown,
    BreakdownRow,
    Change,
    Chart,
    ChartMode,
    Choice,
    Series,
    SortLink,
    UsageDashboard,
    options_parse,
    period_label,
    period_starts,
    querystring_of,
)
from usage.models import Price
from usage.reports import (
    GRANULARITY_LABELS,
    RANGE_LABELS,
    UsageQuery,
    UsageScope,
    granularities_for,
    usage_filters,
    usage_query_parse,
    usage_scope_for,
)
from usage.rollup import UsageTotal, UsageTotals, usage_totals
from workspaces.models import Workspace

# --- reading -------------------------------------------------------------------------------------------------------


def _group_sums(rows: Sequence[UsageTotal]) -> dict[str, int]:
    sums = {"chatbot": 0, "image_speech": 0, "total": 0}
    for row in rows:
        group = TOOL_GROUP.get(row.tool or "", ReportGroup.IMAGE_SPEECH)
        sums[str(group.value)] += row.credits
        sums["total"] += row.credits
    return sums


def _chart(
    rows: Sequence[UsageTotal], starts: list[datetime], query: UsageQuery, tz: ZoneInfo, mode: ChartMode
) -> Chart:
    index = {at: position for position, at in enumerate(starts)}
    keys: list[tuple[str, str]]
    if mode == "group":
        keys = [(str(group.value), str(group.label)) for group in ReportGroup]
    else:
        used = {row.tool for row in rows}
        keys = [(str(tool.value), str(tool.label)) for tool in Tool if tool.value in used] or [("chat", "Chat")]
    values = {key: [0] * len(starts) for key, _ in keys}
    for row in rows:
        position = index.get(row.period_start)  # type: ignore[arg-type]
        if position is None:  # cannot happen: every row's period is one of the range's
            continue
        key = str(TOOL_GROUP[row.tool].value) if mode == "group" and row.tool in TOOL_GROUP else str(row.tool)
        if key in values:
            values[key][position] += row.credits
    labels = [period_label(at, query.granularity, tz, days=query.days) for at in starts]
    return Chart(mode, query.granularity, labels, [Series(key, label, values[key]) for key, label in keys])


@dataclass
class _Sum:
    credits: int = 0
    generations: int = 0
    units: int = 0
    units_of: set[str] = field(default_factory=set)


def _sort_rows(rows: list[BreakdownRow], sort: str) -> list[BreakdownRow]:
    column = sort.removeprefix("-")
    descending = sort.startswith("-")
    rows = sorted(rows, key=lambda row: (row.label.lower(), row.key))  # ties keep a stable, readable order
    if column == "name":
        return list(reversed(rows)) if descending else rows
    return sorted(rows, key=lambda row: getattr(row, column), reverse=descending)


def _sort_links(query: UsageQuery, chart: ChartMode, sort: str) -> dict[str, SortLink]:
    links = {}
    for column, label in (("name", "Name"), ("credits", "Credits"), ("generations", "Generations")):
        if sort.removeprefix("-") == column:
            direction = "descending" if sort.startswith("-") else "ascending"
            target = column if sort.startswith("-") else f"-{column}"
        else:
            direction = ""
            target = column if column == "name" else f"-{column}"
        links[column] = SortLink(
            column,
            label,
            querystring_of(query, chart, sort, sort=None if target == DEFAULT_SORT else target),
            direction,
        )
    return links


def usage_dashboard(
    *, user: User, organization: Organization, params: Mapping[str, Any], at: datetime | None = None
) -> UsageDashboard:
    """Everything the Usage tab shows for this user and these URL parameters. Never fails on bad parameters: they are
    replaced by defaults and named in `problems`."""
    tz = ZoneInfo(organization.timezone)
    as_of = at or current_time()
    parsed = usage_query_parse(params, today=as_of.astimezone(tz).date())
    query, problems = parsed.query, list(parsed.problems)
    chart_mode, sort = options_parse(params, problems)
    scope = usage_scope_for(user=user, organization=organization)
    narrowed = usage_filters(query, scope)
    previous = query.previous()
    alias = replica_alias()

    def read(of: UsageQuery, **grouping: Any) -> UsageTotals:
        start, end = of.bounds(tz)
        return usage_totals(
            organization=organization,
            start=start,
            end=end,
            workspace_ids=narrowed.workspace_ids,
            user_ids=narrowed.user_ids,
            tools=narrowed.tools,
            models=narrowed.models,
            using=alias,
            **grouping,
        )

    detail = read(query, group_by=("workspace", "user", "tool", "model"))
    series = read(query, group_by=("tool",), period=query.granularity)
    earlier = read(previous, group_by=("tool",))

    units_of = {(tool, model): unit for tool, model, unit in Price.objects.values_list("tool", "model", "unit")}
    workspaces = {
        workspace.pk: workspace
        for workspace in Workspace.objects.filter(organization=organization).only(
            "pk", "name", "archived_at", "is_primary"
        )
    }
    visible_workspaces = _visible_workspaces(user, organization, scope, workspaces)
    used_workspaces = {row.workspace_id for row in detail.rows}
    used_users = {row.user_id for row in detail.rows if row.user_id is not None}
    members = _members(organization, scope, used_users) if not scope.own_usage_only else {user.pk: user}

    current_sums = _group_sums(detail.rows)
    previous_sums = _group_sums(earlier.rows)
    totals = [Change(key, label, current_sums[key], previous_sums[key]) for key, label in GROUP_LABELS.items()]
    held = sum(row.held_credits for row in detail.rows)
    chart = _chart(series.rows, period_starts(query, tz), query, tz, chart_mode)

    named_workspaces = {pk: workspaces[pk] for pk in visible_workspaces | used_workspaces if pk in workspaces}
    breakdowns = _breakdowns(
        detail.rows, query=query, chart=chart_mode, sort=sort, workspaces=named_workspaces, members=members,
        units_of=units_of, own_only=scope.own_usage_only,
    )  # fmt: skip

    workspace_choices = [
        Choice(str(pk), named_workspaces[pk].name)
        for pk in sorted(
            visible_workspaces, key=lambda pk: (not workspaces[pk].is_primary, workspaces[pk].name.lower())
        )
    ]
    member_choices = (
        None
        if scope.own_usage_only
        else [
            Choice(str(pk), _member_label(member))
            for pk, member in sorted(members.items(), key=lambda m: _member_label(m[1]).lower())
        ]
    )
    tool_choices = [Choice(str(tool.value), str(tool.label)) for tool in Tool]
    model_choices = sorted(
        {Choice(model, model, str(Tool(tool).label)) for tool, model in units_of if tool in Tool.values}
        | {
            Choice(row.model, row.model, str(Tool(row.tool).label))
            for row in detail.rows
            if row.model and row.tool in Tool.values
        },
        key=lambda choice: ([t.label for t in Tool].index(choice.group), choice.value),
    )
    active = _active_filters(query, chart_mode, sort, named_workspaces, members, problems)
    return UsageDashboard(
        query=query,
        previous=previous,
        scope=scope,
        chart_mode=chart_mode,
        sort=sort,
        problems=problems,
        as_of=replica_as_of(alias, as_of),
        rolled_up_at=detail.rolled_up_at,
        timezone=organization.timezone,
        totals=totals,
        held_credits=held,
        chart=chart,
        breakdowns=breakdowns,
        workspace_choices=workspace_choices,
        member_choices=member_choices,
        tool_choices=tool_choices,
        model_choices=model_choices,
        active_filters=active,
        querystring=querystring_of(query, chart_mode, sort),
        range_choices=[Choice(key, label) for key, label in RANGE_LABELS.items()],
        granularity_choices=[Choice(key, GRANULARITY_LABELS[key]) for key in granularities_for(query.days)],
    )


def _visible_workspaces(
    user: User, organization: Organization, scope: UsageScope, workspaces: Mapping[int, Workspace]
) -> set[int]:
    """The live workspaces the user may pick in the filter."""
    if scope.workspace_ids is not None:
        allowed: set[int] = set(scope.workspace_ids)
    elif scope.own_usage_only:
        allowed = set(Workspace.objects.for_user(user).filter(organization=organization).values_list("pk", flat=True))
    else:
        allowed = set(workspaces)
    return {pk for pk in allowed if pk in workspaces and workspaces[pk].archived_at is None}


def _members(organization: Organization, scope: UsageScope, used: set[int]) -> dict[int, User]:
    """The people the user may pick in the member filter (the organization's members, or those of the workspaces
    they administer) and everyone in their figures, by id."""
    if scope.workspace_ids is None:
        around = Q(memberships__organization=organization, memberships__status=MembershipStatus.ACTIVE)
    else:
        around = Q(
            workspace_memberships__workspace_id__in=scope.workspace_ids,
            memberships__organization=organization,
            memberships__status=MembershipStatus.ACTIVE,
        ) | Q(
            memberships__organization=organization,
            memberships__status=MembershipStatus.ACTIVE,
            memberships__role__gte=OrganizationRole.ADMIN,
        )
    people = User.objects.filter(Q(pk__in=sorted(used)) | around).distinct().only("pk", "email", "name")
    return {person.pk: person for person in people}


def _member_label(member: User) -> str:
    return member.display_name if member.display_name == member.email else f"{member.display_name} ({member.email})"


def _breakdowns(
    rows: Sequence[UsageTotal],
    *,
    query: UsageQuery,
    chart: ChartMode,
    sort: str,
    workspaces: Mapping[int, Workspace],
    members: Mapping[int, User],
    units_of: Mapping[tuple[str, str], str],
    own_only: bool,
) -> list[Breakdown]:
    sums: dict[str, dict[Any, _Sum]] = {"workspace": {}, "member": {}, "tool": {}, "model": {}}
    total = 0
    for row in rows:
        if not row.generations and not row.credits:
            continue  # held only: shown once captured
        total += row.credits
        unit = units_of.get((row.tool or "", row.model or ""), "unit")
        for name, key in (
            ("workspace", row.workspace_id),
            ("member", row.user_id),
            ("tool", row.tool),
            ("model", (row.tool, row.model)),
        ):
            entry = sums[name].setdefault(key, _Sum())
            entry.credits += row.credits
            entry.generations += row.generations
            entry.units += row.units
            entry.units_of.add(unit)

    def share(credits: int) -> float:
        return credits * 100 / total if total else 0.0

    def row_of(name: str, key: Any, entry: _Sum, label: str, detail: str, **filter_to: Any) -> BreakdownRow:
        single_unit = len(entry.units_of) == 1
        return BreakdownRow(
            key=str(key),
            label=label,
            detail=detail,
            credits=entry.credits,
            generations=entry.generations,
            units=entry.units if single_unit else None,
            unit=next(iter(entry.units_of)) if single_unit else "",
            share=share(entry.credits),
            querystring=querystring_of(query, chart, sort, **filter_to),
        )

    built: list[tuple[str, str, list[BreakdownRow], bool]] = []
    workspace_rows = []
    for pk, entry in sums["workspace"].items():
        workspace = workspaces.get(pk)
        label = workspace.name if workspace is not None else "Deleted workspace"
        detail = "Archived" if workspace is not None and workspace.archived_at else ""
        workspace_rows.append(row_of("workspace", pk, entry, label, detail, workspace=[str(pk)]))
    built.append(("workspace", "By workspace", workspace_rows, False))
    if not own_only:
        member_rows = []
        for pk, entry in sums["member"].items():
            member = members.get(pk)
            label = member.display_name if member is not None else "Former member"
            member_rows.append(row_of("member", pk, entry, label, member.email if member else "", member=[str(pk)]))
        built.append(("member", "By member", member_rows, False))
    tool_rows = [
        row_of("tool", tool, entry, str(Tool(tool).label) if tool in Tool.values else str(tool), "", tool=[tool])
        for tool, entry in sums["tool"].items()
    ]
    built.append(("tool", "By tool", tool_rows, True))
    model_rows = [
        row_of("model", f"{tool}:{model}", entry, str(model), str(Tool(tool).label) if tool in Tool.values else "",
               model=[model])
        for (tool, model), entry in sums["model"].items()
    ]  # fmt: skip
    built.append(("model", "By model", model_rows, True))
    links = _sort_links(query, chart, sort)
    return [Breakdown(name, title, _sort_rows(items, sort), links, units) for name, title, items, units in built]


def _active_filters(
    query: UsageQuery,
    chart: ChartMode,
    sort: str,
    workspaces: Mapping[int, Workspace],
    members: Mapping[int, User],
    problems: list[str],
) -> list[ActiveFilter]:
    """The filters in force, each with a link that drops it. An id the user may not see is not named (nor told
    apart from one that does not exist): it matches nothing, and the page says so."""
    active = []
    hidden = False
    for pk in query.workspace_ids:
        rest = [str(other) for other in query.workspace_ids if other != pk]
        workspace = workspaces.get(pk)
        hidden |= workspace is None
        label = workspace.name if workspace is not None else "Unknown workspace"
        active.append(ActiveFilter("Workspace", label, querystring_of(query, chart, sort, workspace=rest)))
    for pk in query.user_ids:
        rest = [str(other) for other in query.user_ids if other != pk]
        member = members.get(pk)
        hidden |= member is None
        label = member.display_name if member is not None else "Unknown member"
        active.append(ActiveFilter("Member", label, querystring_of(query, chart, sort, member=rest)))
    for tool in query.tools:
        rest = [other for other in query.tools if other != tool]
        active.append(ActiveFilter("Tool", str(Tool(tool).label), querystring_of(query, chart, sort, tool=rest)))
    for model in query.models:
        rest = [other for other in query.models if other != model]
        active.append(ActiveFilter("Model", model, querystring_of(query, chart, sort, model=rest)))
    if hidden:
        problems.append("A filter names a workspace or member that is not among those you can see: it matches nothing.")
    return active
