"""The Usage tab's figures: one function, `usage_dashboard`, reads everything the page shows in a fixed number of
queries, whatever the amount of usage (each `usage_totals` read is two, the names three more).

What the user chose comes from the URL (`usage.reports.usage_query_parse`, plus the page's own `chart` and `sort`);
what they may see from their permission rows (`usage.reports.usage_scope_for`). Every figure is a
`usage.rollup.usage_totals` read of the scope-narrowed filters, so the page agrees with every other view of the
same period, to the last charge:

- totals per report group (Chatbot / Image & Speech) and in all, against the previous period;
- a series per report group or per tool over every period of the range (hours, days, weeks or months in the
  organization's time zone, empty ones included);
- breakdowns by workspace, member, tool and model. Units are counted in the price list's unit of each model, so they
  are shown per model, and per tool only where all its models count the same unit.

Names appear only for what the user may see: workspaces and members of their scope, and those in their own figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils.timezone import now as current_time

from orgs.models import MembershipStatus, Organization, OrganizationRole, User
from qolaba.tools import TOOL_GROUP, ReportGroup, Tool
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
from usage.rollup import Period, UsageTotal, period_start, usage_totals
from workspaces.models import Workspace

ChartMode = Literal["group", "tool"]
CHART_MODES: dict[str, str] = {"group": "By tool group", "tool": "By tool"}
SORT_COLUMNS = ("name", "credits", "generations")
DEFAULT_SORT = "-credits"
GROUP_LABELS = {"chatbot": ReportGroup.CHATBOT.label, "image_speech": ReportGroup.IMAGE_SPEECH.label, "total": "Total"}


@dataclass(frozen=True)
class Change:
    """A figure of this period against the previous one."""

    key: str
    label: str
    current: int
    previous: int

    @property
    def difference(self) -> int:
        return self.current - self.previous

    @property
    def is_new(self) -> bool:
        """Used this period, nothing the period before: no percentage to give."""
        return self.previous == 0 and self.current > 0

    @property
    def percent(self) -> float | None:
        return None if self.previous == 0 else self.difference * 100 / self.previous

    @property
    def direction(self) -> str:
        """ "up", "down", "same" or "new": for the arrow and its words."""
        if self.is_new:
            return "new"
        return "up" if self.difference > 0 else "down" if self.difference < 0 else "same"

    @property
    def magnitude(self) -> int:
        return abs(self.difference)

    @property
    def percent_magnitude(self) -> float | None:
        return None if self.percent is None else abs(self.percent)


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: list[int]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class ChartPoint:
    label: str
    values: list[int]  # one per series

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Chart:
    mode: ChartMode
    granularity: str
    labels: list[str]  # every period of the range, in local time
    series: list[Series]

    @property
    def points(self) -> list[ChartPoint]:
        """The same figures by period, for the table beside the chart."""
        return [
            ChartPoint(label, [series.values[index] for series in self.series])
            for index, label in enumerate(self.labels)
        ]

    def data(self) -> dict[str, Any]:
        """What the chart script draws (passed with json_script)."""
        return {
            "mode": self.mode,
            "labels": self.labels,
            "series": [{"key": s.key, "label": s.label, "values": s.values} for s in self.series],
        }


@dataclass(frozen=True)
class BreakdownRow:
    key: str
    label: str
    detail: str  # a second line: the member's email, the model's tool, "archived"
    credits: int
    generations: int
    units: int | None  # None where units of different kinds would be added up
    unit: str
    share: float  # percent of the breakdown's credits
    querystring: str  # the dashboard filtered to this row

    @property
    def unit_label(self) -> str:
        """The unit, plural where it is a plain word: 3 images, 40 seconds, 12 × 1k characters."""
        if self.unit[:1].isdigit():
            return f"\N{MULTIPLICATION SIGN} {self.unit}"  # 2 × 30 seconds
        plain = self.unit.isalpha() and not self.unit.endswith("s")
        return f"{self.unit}s" if plain and self.units != 1 else self.unit


@dataclass(frozen=True)
class SortLink:
    column: str
    label: str
    querystring: str
    direction: str  # "ascending", "descending" or "" (not sorted on it): for aria-sort


@dataclass(frozen=True)
class Breakdown:
    name: str  # workspace, member, tool, model
    title: str
    rows: list[BreakdownRow]
    sort_links: dict[str, SortLink]
    shows_units: bool = False


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    group: str = ""  # an <optgroup>: the tool of a model


@dataclass(frozen=True)
class ActiveFilter:
    dimension: str
    label: str
    remove_querystring: str


@dataclass(frozen=True)
class UsageDashboard:
    query: UsageQuery
    previous: UsageQuery
    scope: UsageScope
    chart_mode: ChartMode
    sort: str
    problems: list[str]
    as_of: datetime
    rolled_up_at: datetime | None
    timezone: str
    totals: list[Change]  # Chatbot, Image & Speech, Total
    held_credits: int  # credits of generations still running (not in the totals until captured)
    chart: Chart
    breakdowns: list[Breakdown]
    workspace_choices: list[Choice]
    member_choices: list[Choice] | None  # None: the user sees only their own usage, there is nothing to choose
    tool_choices: list[Choice]
    model_choices: list[Choice]
    active_filters: list[ActiveFilter]
    querystring: str  # the whole state, for links that keep it
    range_choices: list[Choice] = field(default_factory=list)
    granularity_choices: list[Choice] = field(default_factory=list)  # the ones this period allows

    @property
    def chart_links(self) -> list[tuple[str, str, str, bool]]:
        """(mode, label, querystring, current) for the chart's toggle."""
        return [
            (mode, label, _qs(self.query, self.chart_mode, self.sort, chart=None if mode == "group" else mode),
             mode == self.chart_mode)
            for mode, label in CHART_MODES.items()
        ]  # fmt: skip

    @property
    def selected(self) -> dict[str, list[str]]:
        """The filters' values as the form's <select>s compare them."""
        query = self.query
        return {
            "workspace": [str(pk) for pk in query.workspace_ids],
            "member": [str(pk) for pk in query.user_ids],
            "tool": list(query.tools),
            "model": list(query.models),
        }

    @property
    def unfiltered_querystring(self) -> str:
        return _qs(self.query, self.chart_mode, self.sort, workspace=None, member=None, tool=None, model=None)

    @property
    def period(self) -> str:
        return period_phrase(self.query)

    @property
    def previous_period(self) -> str:
        return period_phrase(self.previous)

    @property
    def range_label(self) -> str:
        return RANGE_LABELS[self.query.range]

    @property
    def is_empty(self) -> bool:
        return self.totals[-1].current == 0


# --- the page's own parameters -------------------------------------------------------------------------------------


def _qs(query: UsageQuery, chart: ChartMode, order: str, /, **changes: Any) -> str:
    """The URL parameters of the dashboard in this state, with `changes` (None drops one)."""
    state: dict[str, Any] = {
        "chart": None if chart == "group" else chart,
        "sort": None if order == DEFAULT_SORT else order,
    }
    return urlencode(query.params(**(state | changes)), doseq=True)


def _first(params: Mapping[str, Any], name: str) -> str | None:
    getlist = getattr(params, "getlist", None)
    values = getlist(name) if getlist is not None else [params[name]] if name in params else []
    return str(values[0]) if values else None


def _options(params: Mapping[str, Any], problems: list[str]) -> tuple[ChartMode, str]:
    chart = _first(params, "chart") or "group"
    if chart not in CHART_MODES:
        problems.append(f"Unknown chart {chart[:30]!r}: showing it by tool group.")
        chart = "group"
    sort = _first(params, "sort") or DEFAULT_SORT
    if sort.removeprefix("-") not in SORT_COLUMNS:
        problems.append(f"Unknown sort {sort[:30]!r}: sorting by credits.")
        sort = DEFAULT_SORT
    return ("tool" if chart == "tool" else "group"), sort


# --- periods -------------------------------------------------------------------------------------------------------


def period_starts(query: UsageQuery, tz: ZoneInfo) -> list[datetime]:
    """The start (UTC) of every period of the query's granularity that overlaps its range: the chart's x axis."""
    start, end = query.bounds(tz)
    granularity: Period = query.granularity
    starts: list[datetime] = []
    if granularity == "hour":
        at = start
        while at < end:
            starts.append(period_start(at, "hour", tz))
            at += timedelta(hours=1)
        return sorted(set(starts))
    day = query.start
    while day <= query.end:
        starts.append(period_start(datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC), granularity, tz))
        day += timedelta(days=1)
    return sorted(set(starts))


def period_label(at: datetime, granularity: str, tz: ZoneInfo, *, days: int) -> str:
    local = at.astimezone(tz)
    if granularity == "hour":
        return f"{local:%b} {local.day}, {local:%H:%M}" if days > 1 else f"{local:%H:%M}"
    if granularity == "day":
        return f"{local:%a} {local:%b} {local.day}"
    if granularity == "week":
        return f"Week of {local:%b} {local.day}"
    return f"{local:%B %Y}"


def period_phrase(query: UsageQuery) -> str:
    """The local days of a query, for headings: "Mar 1 to Mar 18, 2026"."""
    if query.start == query.end:
        return f"{query.start:%b} {query.start.day}, {query.start.year}"
    same_year = query.start.year == query.end.year
    first = f"{query.start:%b} {query.start.day}" + ("" if same_year else f", {query.start.year}")
    return f"{first}\N{EN DASH}{query.end:%b} {query.end.day}, {query.end.year}"


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
            column, label, _qs(query, chart, sort, sort=None if target == DEFAULT_SORT else target), direction
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
    chart_mode, sort = _options(params, problems)
    scope = usage_scope_for(user=user, organization=organization)
    filters = usage_filters(query, scope).as_kwargs()
    previous = query.previous()
    start, end = query.bounds(tz)
    before_start, before_end = previous.bounds(tz)

    detail = usage_totals(
        organization=organization, start=start, end=end, group_by=("workspace", "user", "tool", "model"), **filters
    )
    series = usage_totals(
        organization=organization, start=start, end=end, group_by=("tool",), period=query.granularity, **filters
    )
    earlier = usage_totals(organization=organization, start=before_start, end=before_end, group_by=("tool",), **filters)

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
        as_of=as_of,
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
        querystring=_qs(query, chart_mode, sort),
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
            querystring=_qs(query, chart, sort, **filter_to),
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
        active.append(ActiveFilter("Workspace", label, _qs(query, chart, sort, workspace=rest)))
    for pk in query.user_ids:
        rest = [str(other) for other in query.user_ids if other != pk]
        member = members.get(pk)
        hidden |= member is None
        label = member.display_name if member is not None else "Unknown member"
        active.append(ActiveFilter("Member", label, _qs(query, chart, sort, member=rest)))
    for tool in query.tools:
        rest = [other for other in query.tools if other != tool]
        active.append(ActiveFilter("Tool", str(Tool(tool).label), _qs(query, chart, sort, tool=rest)))
    for model in query.models:
        rest = [other for other in query.models if other != model]
        active.append(ActiveFilter("Model", model, _qs(query, chart, sort, model=rest)))
    if hidden:
        problems.append("A filter names a workspace or member that is not among those you can see: it matches nothing.")
    return active


def local_today(organization: Organization, at: datetime | None = None) -> date:
    return (at or current_time()).astimezone(ZoneInfo(organization.timezone)).date()
