"""Usage where people already look: the credit columns of the Members and Workspaces tabs and the usage panels of a
workspace's Overview.

Every figure is read through the live read `usage.rollup.usage_totals` (the roll-up plus the events newer than its
watermark: exact to the last committed charge) and folded into the report groups of `qolaba.tools.TOOL_GROUP`
(Chatbot, Image & Speech). A period is a choice among a few (`ColumnsPeriodChoice`) cut in the organization's time
zone; an unknown choice is this month.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.db import models
from django.utils.timezone import now

from orgs.models import CreditMode, Organization, User
from qolaba.routers import replica_alias, replica_as_of
from qolaba.tools import TOOL_GROUP, ReportGroup
from usage.rollup import Group, UsageTotal, usage_totals
from workspaces.models import Workspace

T = TypeVar("T")

TREND_DAYS = 30


class ColumnsPeriodChoice(models.TextChoices):
    THIS_MONTH = "this_month", "This month"
    LAST_MONTH = "last_month", "Last month"
    LAST_7_DAYS = "last_7_days", "Last 7 days"
    LAST_30_DAYS = "last_30_days", "Last 30 days"


@dataclass(frozen=True)
class ColumnsPeriod:
    """A period of the usage columns: `[start, end)` in UTC, cut at local midnights of the organization's zone."""

    choice: str
    label: str
    start: datetime
    end: datetime
    first_day: date  # local, inclusive
    last_day: date  # local, inclusive


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight of `day` in UTC, on the 15-minute boundary `usage_totals` reads on (every zone in use is)."""
    at = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def columns_period(*, organization: Organization, choice: str | None, at: datetime | None = None) -> ColumnsPeriod:
    """The period `choice` names, as of `at` (default: now) in the organization's time zone; anything else (missing,
    misspelt, hostile) is this month."""
    if choice not in ColumnsPeriodChoice.values:
        choice = ColumnsPeriodChoice.THIS_MONTH
    zone = ZoneInfo(organization.timezone)
    today = (at or now()).astimezone(zone).date()
    if choice == ColumnsPeriodChoice.LAST_MONTH:
        end_day = _month_start(today)
        first = _month_start(end_day - timedelta(days=1))
    elif choice == ColumnsPeriodChoice.LAST_7_DAYS:
        first, end_day = today - timedelta(days=6), today + timedelta(days=1)
    elif choice == ColumnsPeriodChoice.LAST_30_DAYS:
        first, end_day = today - timedelta(days=29), today + timedelta(days=1)
    else:
        first, end_day = _month_start(today), _next_month(today)
    return ColumnsPeriod(
        choice=str(choice),
        label=str(ColumnsPeriodChoice(choice).label),
        start=_local_midnight_utc(first, zone),
        end=_local_midnight_utc(end_day, zone),
        first_day=first,
        last_day=end_day - timedelta(days=1),
    )


@dataclass(frozen=True)
class GroupCredits:
    """Credits used, by report group."""

    chatbot: int = 0
    image_speech: int = 0

    @property
    def total(self) -> int:
        return self.chatbot + self.image_speech

    def column(self, name: str) -> int:
        return self.total if name == "total" else int(getattr(self, name))


def _fold_groups(rows: Iterable[UsageTotal], key: Callable[[UsageTotal], T]) -> dict[T, GroupCredits]:
    sums: dict[T, dict[str, int]] = {}
    for row in rows:
        group: ReportGroup = TOOL_GROUP[str(row.tool)]
        per_group = sums.setdefault(key(row), {})
        per_group[group.value] = per_group.get(group.value, 0) + row.credits
    return {k: GroupCredits(**groups) for k, groups in sums.items()}


@dataclass(frozen=True)
class UsageColumns:
    """Credits by report group of each member (user id) or workspace (id) in a period, and of the whole
    organization; exact as of `as_of`."""

    period: ColumnsPeriod
    by_id: dict[int, GroupCredits]
    organization_total: GroupCredits
    as_of: datetime

    def of(self, key: int) -> GroupCredits:
        return self.by_id.get(key, GroupCredits())

    def others(self, keys: Iterable[int]) -> GroupCredits:
        """What every id but `keys` used (on the Workspaces tab: the deleted workspaces)."""
        listed = set(keys)
        rest = [credits for key, credits in self.by_id.items() if key not in listed]
        return GroupCredits(sum(c.chatbot for c in rest), sum(c.image_speech for c in rest))


def _usage_columns(
    *, organization: Organization, period: ColumnsPeriod, by: str, workspace_ids: Sequence[int] | None
) -> UsageColumns:
    alias = replica_alias()
    as_of = replica_as_of(alias, now())
    dimension: Group = "user" if by == "user" else "workspace"
    totals = usage_totals(
        organization=organization,
        start=period.start,
        end=period.end,
        workspace_ids=workspace_ids,
        group_by=(dimension, "tool"),
        using=alias,
    )
    attribute = f"{dimension}_id"
    by_id = _fold_groups(totals.rows, key=lambda row: int(getattr(row, attribute)))
    everything = _fold_groups(totals.rows, key=lambda row: 0).get(0, GroupCredits())
    return UsageColumns(period=period, by_id=by_id, organization_total=everything, as_of=as_of)


def usage_columns_by_member(*, organization: Organization, period: ColumnsPeriod) -> UsageColumns:
    """The Members tab's columns: each member's credits in the period, over every workspace of the organization."""
    return _usage_columns(organization=organization, period=period, by="user", workspace_ids=None)


def usage_columns_by_workspace(
    *, organization: Organization, period: ColumnsPeriod, workspace_ids: Sequence[int] | None = None
) -> UsageColumns:
    """The Workspaces tab's columns: each workspace's credits in the period (only `workspace_ids`, if given: the
    ones the viewer may see; `organization_total` then adds only those)."""
    return _usage_columns(organization=organization, period=period, by="workspace", workspace_ids=workspace_ids)


# --- sorting -------------------------------------------------------------------------------------------------------

SORT_COLUMNS = ("chatbot", "image_speech", "total")


@dataclass(frozen=True)
class ColumnsSort:
    """A sort on a credit column (`?sort=total` ascending, `?sort=-total` descending), or none (`column` empty)."""

    column: str = ""
    descending: bool = True

    @property
    def value(self) -> str:
        return f"{'-' if self.descending else ''}{self.column}" if self.column else ""

    def toggled(self, column: str) -> str:
        """The sort a click on `column`'s header asks for: most used first, then the other way round."""
        return column if column == self.column and self.descending else f"-{column}"

    def aria(self, column: str) -> str:
        if column != self.column:
            return "none"
        return "descending" if self.descending else "ascending"


def columns_sort(value: str | None) -> ColumnsSort:
    """The sort named by the `sort` parameter; anything unknown is no sort (the table's own order)."""
    value = (value or "").strip()
    column = value.removeprefix("-")
    if column not in SORT_COLUMNS:
        return ColumnsSort()
    return ColumnsSort(column=column, descending=value.startswith("-"))


def columns_sorted(items: Iterable[T], *, usage: Callable[[T], GroupCredits], sort: ColumnsSort) -> list[T]:
    """`items` in the order of `sort` (stable: equal figures keep the table's own order)."""
    listed = list(items)
    if not sort.column:
        return listed
    sign = -1 if sort.descending else 1
    return sorted(listed, key=lambda item: sign * usage(item).column(sort.column))


# --- the Workspaces tab's bars ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationUse:
    """What a workspace used in the period out of what it could use: its budget (budget mode: what it used plus what
    it has left) or the pool (shared mode: what every workspace used plus what the pool has left)."""

    used: int
    available: int
    shared: bool

    @property
    def percent(self) -> int:
        if self.available <= 0:
            return 100 if self.used > 0 else 0
        return min(100, round(100 * self.used / self.available))


def allocation_uses(
    *, organization: Organization, columns: UsageColumns, workspaces: Iterable[Workspace], balances: dict[int, int]
) -> dict[int, AllocationUse]:
    """Each workspace's use of its allocation (budget mode) or its share of the pool (shared mode) in the columns'
    period; `balances` are the live balances by workspace id (the Primary's is the pool)."""
    listed = list(workspaces)
    if organization.credit_mode == CreditMode.SHARED:
        pool_left = sum(balances.get(ws.pk, 0) for ws in listed if ws.is_primary)
        pool = columns.organization_total.total + pool_left
        return {ws.pk: AllocationUse(columns.of(ws.pk).total, pool, shared=True) for ws in listed}
    uses = {}
    for ws in listed:
        used = columns.of(ws.pk).total
        uses[ws.pk] = AllocationUse(used, used + balances.get(ws.pk, 0), shared=False)
    return uses


# --- the Overview ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendDay:
    day: date
    credits: int


@dataclass(frozen=True)
class UsageOverview:
    """The Overview's usage: the user's own credits this month in the workspace, the workspace's (None unless asked
    for), and the daily credits of the last 30 days (the workspace's when asked for, else the user's own)."""

    period: ColumnsPeriod
    mine: GroupCredits
    workspace: GroupCredits | None
    trend: list[TrendDay]
    trend_of_workspace: bool
    as_of: datetime


def _by_day(
    organization: Organization,
    workspace: Workspace,
    start: datetime,
    end: datetime,
    user: User | None,
) -> list[UsageTotal]:
    return usage_totals(
        organization=organization,
        start=start,
        end=end,
        workspace_ids=[workspace.pk],
        user_ids=None if user is None else [user.pk],
        group_by=("tool",),
        period="day",
        using=replica_alias(),
    ).rows


def workspace_usage_overview(
    *, workspace: Workspace, user: User, with_workspace: bool, at: datetime | None = None
) -> UsageOverview:
    """The usage panels of the workspace Overview. `with_workspace`: also the whole workspace's figures (only for
    those who may see everyone's usage there); its trend then shows the workspace, else the user's own days."""
    organization = workspace.organization
    as_of = at or now()
    zone = ZoneInfo(organization.timezone)
    month = columns_period(organization=organization, choice=ColumnsPeriodChoice.THIS_MONTH, at=as_of)
    today = as_of.astimezone(zone).date()
    trend_first = today - timedelta(days=TREND_DAYS - 1)
    start = min(month.start, _local_midnight_utc(trend_first, zone))
    end = max(month.end, _local_midnight_utc(today + timedelta(days=1), zone))

    def this_month(rows: list[UsageTotal]) -> GroupCredits:
        inside = [row for row in rows if row.period_start is not None and row.period_start >= month.start]
        return _fold_groups(inside, key=lambda row: 0).get(0, GroupCredits())

    def days(rows: list[UsageTotal]) -> list[TrendDay]:
        credits: dict[date, int] = {}
        for row in rows:
            if row.period_start is not None:
                day = row.period_start.astimezone(zone).date()
                credits[day] = credits.get(day, 0) + row.credits
        return [
            TrendDay(day, credits.get(day, 0)) for day in (trend_first + timedelta(days=n) for n in range(TREND_DAYS))
        ]

    mine_rows = _by_day(organization, workspace, start, end, user)
    workspace_rows = _by_day(organization, workspace, start, end, None) if with_workspace else None
    return UsageOverview(
        period=month,
        mine=this_month(mine_rows),
        workspace=None if workspace_rows is None else this_month(workspace_rows),
        trend=days(workspace_rows if workspace_rows is not None else mine_rows),
        trend_of_workspace=workspace_rows is not None,
        as_of=as_of,
    )
