"""What a usage report is about: the period, the granularity and the filters a user chose, and the part of the
organization that user may see. The Usage tab, its exports and anything that reads "usage of a filter" share these,
so that one URL means the same figures everywhere.

- `UsageQuery` — a period of local calendar days (inclusive, in the organization's time zone), a granularity and
  filters (workspaces, members, tools, models). `usage_query_parse` reads one from URL parameters and never
  fails: a value it cannot use falls back to the default and is named in `problems`, so a page can say so.
- `UsageScope` — what a user may see: Owners and Admins (`view_all_usage`) the whole organization, a workspace
  admin (`view_workspace_usage`) their workspaces, anyone else only their own usage. `usage_scope_for` reads it
  from the user's permission rows (the one permission mechanism).
- `usage_filters` — the query's filters narrowed to the scope, in the shape `usage.rollup.usage_totals` takes.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from orgs.models import Organization, OrganizationUserObjectPermission, User
from qolaba.tools import Tool
from workspaces.models import WorkspaceUserObjectPermission

RangeKey = Literal["this_month", "last_month", "7d", "30d", "90d", "custom"]
Granularity = Literal["hour", "day", "week", "month"]
RANGES: tuple[RangeKey, ...] = get_args(RangeKey)
GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)
RANGE_LABELS: dict[RangeKey, str] = {
    "this_month": "This month",
    "last_month": "Last month",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "custom": "Custom",
}
GRANULARITY_LABELS: dict[Granularity, str] = {"hour": "Hour", "day": "Day", "week": "Week", "month": "Month"}
DEFAULT_RANGE: RangeKey = "this_month"
MAX_DAYS = 400  # the longest period a report covers (the usage API's limit too)
MAX_HOURLY_DAYS = 7  # hourly granularity only for periods up to a week: at most 168 points on a chart
_LAST_DAYS: dict[str, int] = {"7d": 7, "30d": 30, "90d": 90}
_MAX_IDS = 100  # a filter names at most this many workspaces or members


@dataclass(frozen=True)
class UsageQuery:
    """A usage report's question. `start` and `end` are local calendar days, both included."""

    start: date
    end: date
    range: RangeKey = DEFAULT_RANGE
    granularity: Granularity = "day"
    workspace_ids: tuple[int, ...] = ()
    user_ids: tuple[int, ...] = ()
    tools: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def is_filtered(self) -> bool:
        return bool(self.workspace_ids or self.user_ids or self.tools or self.models)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """`[start, end)` in UTC: local midnight of the first day to local midnight after the last day."""
        return local_midnight(self.start, tz), local_midnight(self.end + timedelta(days=1), tz)

    def previous(self) -> UsageQuery:
        """The period just before, for "change against the previous period": the previous calendar month for a
        month range, else the same number of days right before."""
        if self.range in ("this_month", "last_month"):
            first = (self.start - timedelta(days=1)).replace(day=1)
            return replace(self, start=first, end=month_end(first), range="custom")
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query as URL parameters (only what differs from the defaults), with `changes` applied; a change to
        None drops that parameter. Lists are lists, for `urlencode(..., doseq=True)`."""
        values: dict[str, Any] = {"range": self.range}
        if self.range == "custom":
            values |= {"start": self.start.isoformat(), "end": self.end.isoformat()}
        values["granularity"] = self.granularity
        values |= {
            "workspace": [str(pk) for pk in self.workspace_ids],
            "member": [str(pk) for pk in self.user_ids],
            "tool": list(self.tools),
            "model": list(self.models),
        }
        values |= changes
        return {key: value for key, value in values.items() if value not in (None, [], ())}


@dataclass(frozen=True)
class ParsedUsageQuery:
    query: UsageQuery
    problems: list[str] = field(default_factory=list)  # what was ignored, as sentences for the page


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def range_dates(key: RangeKey, today: date) -> tuple[date, date]:
    """The local days of a named range, `today` included where the range reaches today."""
    if key == "this_month":
        return today.replace(day=1), today
    if key == "last_month":
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return first, month_end(first)
    days = _LAST_DAYS.get(key, 30)
    return today - timedelta(days=days - 1), today


def default_granularity(days: int) -> Granularity:
    if days <= 2:
        return "hour"
    if days <= 92:
        return "day"
    return "week"


def granularities_for(days: int) -> tuple[Granularity, ...]:
    return GRANULARITIES if days <= MAX_HOURLY_DAYS else GRANULARITIES[1:]


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(params, "getlist", None)
    raw = getlist(name) if getlist is not None else params.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    # "a,b" and repeated parameters both work; blanks (an empty <select> choice) are ignored
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _ids(params: Mapping[str, Any], name: str, label: str, problems: list[str]) -> tuple[int, ...]:
    ids: list[int] = []
    for value in _values(params, name):
        if value.isdigit() and len(value) <= 18:  # fits a bigint: never an out-of-range id
            ids.append(int(value))
        else:
            problems.append(f"Ignored the {label} filter {value[:30]!r}: it is not one of the choices.")
    if len(ids) > _MAX_IDS:
        problems.append(f"Only the first {_MAX_IDS} {label}s of the filter were used.")
    return tuple(sorted(set(ids[:_MAX_IDS])))


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def usage_query_parse(params: Mapping[str, Any], *, today: date) -> ParsedUsageQuery:
    """A query from URL parameters (`range`, `start`, `end`, `granularity`, `workspace`, `member`, `tool`, `model`).

    `today` is the local date in the organization's time zone. Never raises: what cannot be used is replaced by the
    default and described in `problems`.
    """
    problems: list[str] = []
    key = next(iter(_values(params, "range")), DEFAULT_RANGE)
    if key not in RANGES:
        problems.append(f"Unknown period {key[:30]!r}: showing this month.")
        key = DEFAULT_RANGE
    range_key: RangeKey = key
    start, end = range_dates(DEFAULT_RANGE, today)
    if range_key == "custom":
        asked_start = _date(next(iter(_values(params, "start")), ""))
        asked_end = _date(next(iter(_values(params, "end")), ""))
        if asked_start is None or asked_end is None:
            problems.append("A custom period needs a start and an end date (YYYY-MM-DD): showing this month.")
            range_key = DEFAULT_RANGE
        elif asked_end < asked_start:
            problems.append("The end date is before the start date: showing this month.")
            range_key = DEFAULT_RANGE
        elif (asked_end - asked_start).days + 1 > MAX_DAYS:
            problems.append(f"A period covers at most {MAX_DAYS} days: showing this month.")
            range_key = DEFAULT_RANGE
        else:
            start, end = asked_start, asked_end
    else:
        start, end = range_dates(range_key, today)
    days = (end - start).days + 1

    granularity: Granularity = default_granularity(days)
    asked = next(iter(_values(params, "granularity")), None)
    if asked is not None:
        if asked not in GRANULARITIES:
            problems.append(f"Unknown granularity {asked[:30]!r}: showing {GRANULARITY_LABELS[granularity].lower()}s.")
        elif asked not in granularities_for(days):
            problems.append(
                f"Hours are shown for periods up to {MAX_HOURLY_DAYS} days: showing "
                f"{GRANULARITY_LABELS[granularity].lower()}s."
            )
        else:
            granularity = asked

    tools = []
    for value in _values(params, "tool"):
        if value in Tool.values:
            tools.append(value)
        else:
            problems.append(f"Ignored the tool filter {value[:30]!r}: it is not one of the tools.")
    models = _values(params, "model")[:_MAX_IDS]
    query = UsageQuery(
        start=start,
        end=end,
        range=range_key,
        granularity=granularity,
        workspace_ids=_ids(params, "workspace", "workspace", problems),
        user_ids=_ids(params, "member", "member", problems),
        tools=tuple(sorted(set(tools))),
        models=tuple(sorted({model[:100] for model in models})),
    )
    return ParsedUsageQuery(query, problems)


@dataclass(frozen=True)
class UsageScope:
    """The part of an organization's usage a user may see. None: no restriction on that dimension."""

    workspace_ids: tuple[int, ...] | None
    user_ids: tuple[int, ...] | None

    @property
    def whole_organization(self) -> bool:
        return self.workspace_ids is None and self.user_ids is None

    @property
    def own_usage_only(self) -> bool:
        return self.user_ids is not None


def usage_scope_for(*, user: User, organization: Organization) -> UsageScope:
    """Owners and Admins see the whole organization; a workspace admin the workspaces they administer (everyone's
    usage there); anyone else their own usage. Read from the user's permission rows."""
    permissions = OrganizationUserObjectPermission.objects.filter(user=user, content_object=organization)
    if permissions.filter(permission__codename="view_all_usage").exists():
        return UsageScope(workspace_ids=None, user_ids=None)
    administered = WorkspaceUserObjectPermission.objects.filter(
        user=user,
        permission__codename="view_workspace_usage",
        content_object__organization=organization,
        content_object__archived_at__isnull=True,
    ).values_list("content_object_id", flat=True)
    workspace_ids = tuple(sorted(administered))
    if workspace_ids:
        return UsageScope(workspace_ids=workspace_ids, user_ids=None)
    return UsageScope(workspace_ids=None, user_ids=(user.pk,))


def _narrow(chosen: tuple[Any, ...], allowed: tuple[Any, ...] | None) -> list[Any] | None:
    if allowed is None:
        return list(chosen) if chosen else None
    if not chosen:
        return list(allowed)
    return [value for value in chosen if value in allowed]


@dataclass(frozen=True)
class UsageFilters:
    """Keyword arguments for `usage.rollup.usage_totals` (None: no filter; an empty list: nothing matches)."""

    workspace_ids: list[int] | None
    user_ids: list[int] | None
    tools: list[str] | None
    models: list[str] | None

    def as_kwargs(self) -> dict[str, Sequence[Any] | None]:
        return {
            "workspace_ids": self.workspace_ids,
            "user_ids": self.user_ids,
            "tools": self.tools,
            "models": self.models,
        }


def usage_filters(query: UsageQuery, scope: UsageScope) -> UsageFilters:
    """The query's filters, narrowed to what the scope allows: a workspace or member outside it matches nothing."""
    return UsageFilters(
        workspace_ids=_narrow(query.workspace_ids, scope.workspace_ids),
        user_ids=_narrow(query.user_ids, scope.user_ids),
        tools=list(query.tools) or None,
        models=list(query.models) or None,
    )
