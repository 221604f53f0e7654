"""What the Usage tab shows, as plain values (`UsageDashboard` and its parts), the page's own URL parameters
(`chart`, `sort`) and the periods of its x axis. `usage.dashboard.read` fills them in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from qolaba.tools import ReportGroup
from usage.reports import (
    RANGE_LABELS,
    UsageQuery,
    UsageScope,
)
from usage.rollup import Period, period_start

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
        """The unit, plural where it is a plain word (3 images, 40 seconds); "x 30 seconds" for a counted bundle."""
        if self.unit[:1].isdigit():
            return f"\N{MULTIPLICATION SIGN} {self.unit}"  # 2 x 30 seconds
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
        links = []
        for mode, label in CHART_MODES.items():
            querystring = querystring_of(
                self.query, self.chart_mode, self.sort, chart=None if mode == "group" else mode
            )
            links.append((mode, label, querystring, mode == self.chart_mode))
        return links

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
        return querystring_of(
            self.query, self.chart_mode, self.sort, workspace=None, member=None, tool=None, model=None
        )

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


def querystring_of(query: UsageQuery, chart: ChartMode, order: str, /, **changes: Any) -> str:
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


def options_parse(params: Mapping[str, Any], problems: list[str]) -> tuple[ChartMode, str]:
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
