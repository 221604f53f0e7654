"""The usage API's reports (`GET /api/v1/usage`, `GET /api/v1/organization/usage`): the query parameters, checked
all at once (every problem named in `fields`), and the answer built from the live read `usage.rollup.usage_totals`
— the roll-up plus the events newer than its watermark, so captured credits are exact to the last committed charge.

Dates are the organization's days: `start` and `end` (both included) become the UTC instants of their local
midnights, which fall on the roll-up's 15-minute boundaries in every time zone in use. Every period of the range
(local hours, days or months, cut by `usage_totals` in the organization's time zone) is a bucket of the answer, used
or not, so a client can chart it as it comes; the first and last months are cut to the range.

Strict where the Usage tab's query (`usage.reports.UsageQuery`) is lenient: a page falls back to a default and says
so, an API client gets a 400 naming the problem.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.http import QueryDict
from django.utils.timezone import now

from orgs.models import Organization
from qolaba.routers import replica_alias
from qolaba.tools import TOOL_GROUP, ReportGroup
from usage.api.errors import ApiError
from usage.rollup import Group, Period, usage_totals
from usage.selectors import member_emails, workspace_names

Bucket = Literal["hour", "day", "month", "none"]
BUCKETS: tuple[Bucket, ...] = ("hour", "day", "month", "none")
DEFAULT_BUCKET: Bucket = "day"
MAX_DAYS = 400  # a range covers at most this many days, start and end included
MAX_HOURLY_DAYS = 31  # and at most this many with hourly buckets
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2999, 12, 31)
WORKSPACE_GROUPS = ("tool", "model", "member")  # what `group_by` may hold on /usage
ORGANIZATION_GROUPS = ("workspace", "tool", "model", "member")  # and on /organization/usage
PARAMETERS = ("start", "end", "bucket", "group_by")

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PERIOD: dict[Bucket, Period | None] = {"hour": "hour", "day": "day", "month": "month", "none": None}
_ROLLUP_GROUP: dict[str, Group] = {"workspace": "workspace", "member": "user", "tool": "tool", "model": "model"}
_ORDER = ("workspace", "member", "tool", "model")  # the order of a result's keys, and of the results


@dataclass(frozen=True)
class ApiUsageQuery:
    start: date
    end: date  # included
    bucket: Bucket
    group_by: tuple[str, ...]  # in `_ORDER`


def _date(raw: str | None, fields: dict[str, str], name: str) -> date | None:
    if raw is None:
        fields[name] = "Required: a date, YYYY-MM-DD (in the organization's time zone)."
        return None
    try:
        value = date.fromisoformat(raw) if _DATE.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None:
        fields[name] = "A date, YYYY-MM-DD."
    elif not FIRST_DATE <= value <= LAST_DATE:
        fields[name] = f"A date from {FIRST_DATE} to {LAST_DATE}."
        value = None
    return value


def _group_by(raw: str | None, allowed: Sequence[str], fields: dict[str, str]) -> tuple[str, ...]:
    if not raw:
        return ()
    names = raw.split(",")
    if any(name not in allowed for name in names) or len(set(names)) != len(names):
        fields["group_by"] = f"Comma-separated, each at most once, any of: {', '.join(allowed)}."
        return ()
    return tuple(name for name in _ORDER if name in names)


def api_usage_query_parse(params: QueryDict, *, groups: Sequence[str]) -> ApiUsageQuery:
    """The report's parameters, or a 400 `invalid_request` naming every problem in `fields`."""
    fields: dict[str, str] = {}
    for name, values in params.lists():
        if name not in PARAMETERS:
            fields[name] = f"Unknown parameter; the parameters are {', '.join(PARAMETERS)}."
        elif len(values) > 1:
            fields[name] = "Give this parameter once."
    start = _date(params.get("start"), fields, "start")
    end = _date(params.get("end"), fields, "end")
    bucket = params.get("bucket", DEFAULT_BUCKET)
    if bucket not in BUCKETS:
        fields["bucket"] = f"One of: {', '.join(BUCKETS)}."
    group_by = _group_by(params.get("group_by"), groups, fields)
    if start is not None and end is not None and "end" not in fields:
        days = (end - start).days + 1
        if days < 1:
            fields["end"] = "On or after start."
        elif days > MAX_DAYS:
            fields["end"] = f"A range covers at most {MAX_DAYS} days (start and end included)."
        elif bucket == "hour" and days > MAX_HOURLY_DAYS:
            fields["bucket"] = f"Hourly buckets cover at most {MAX_HOURLY_DAYS} days: use day or month."
    if fields or start is None or end is None:
        raise ApiError(400, "invalid_request", "The request is not valid: see fields.", fields=fields)
    return ApiUsageQuery(start=start, end=end, bucket=bucket, group_by=group_by)  # type: ignore[arg-type]


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def bucket_starts(query: ApiUsageQuery, zone: ZoneInfo) -> tuple[list[datetime], datetime]:
    """The UTC start of every bucket of the range, and the range's end (the local midnight after `end`)."""
    start, end = _midnight(query.start, zone), _midnight(query.end + timedelta(days=1), zone)
    if query.bucket == "hour":
        hours = int((end - start) / timedelta(hours=1))
        return [start + timedelta(hours=n) for n in range(hours)], end
    if query.bucket == "day":
        return [
            _midnight(query.start + timedelta(days=n), zone) for n in range((query.end - query.start).days + 1)
        ], end
    if query.bucket == "month":
        starts, month = [start], query.start.replace(day=1)
        while True:
            month = (month + timedelta(days=32)).replace(day=1)
            if month > query.end:
                return starts, end
            starts.append(_midnight(month, zone))
    return [start], end


def _labels(organization: Organization, rows: Sequence[Any], group_by: tuple[str, ...]) -> dict[str, dict[int, Any]]:
    labels: dict[str, dict[int, Any]] = {}
    if "member" in group_by:
        labels["member"] = member_emails(user_ids=sorted({row.user_id for row in rows}))
    if "workspace" in group_by:
        workspace_ids = sorted({row.workspace_id for row in rows})
        labels["workspace"] = workspace_names(organization_id=organization.pk, workspace_ids=workspace_ids)
    return labels


def _result(key: tuple[Any, ...], group_by: tuple[str, ...], labels: dict[str, dict[int, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in zip(group_by, key, strict=True):
        if name == "member":
            result["member"] = {"id": value, "email": labels["member"].get(value)}
        elif name == "workspace":
            result["workspace"] = {"id": value, "name": labels["workspace"].get(value)}
        else:
            result[name] = value
    return result


def _iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat()


def usage_report(
    *, organization: Organization, query: ApiUsageQuery, workspace_ids: Sequence[int] | None = None
) -> dict[str, Any]:
    """The answer's body less its owner (`workspace` or `organization`): the range, the buckets with their results
    (captured generations, units and credits per group) and the totals with the Chatbot / Image & Speech split."""
    zone = ZoneInfo(organization.timezone)
    starts, range_end = bucket_starts(query, zone)
    # Grouped by tool too, whatever was asked: the totals split credits by the tool's report group.
    grouped = tuple(_ROLLUP_GROUP[name] for name in query.group_by)
    read_by = grouped if "tool" in grouped else (*grouped, "tool")
    as_of = now()  # every charge committed before this instant is counted (and any committed during the read)
    totals = usage_totals(
        organization=organization,
        start=starts[0],
        end=range_end,
        workspace_ids=workspace_ids,
        group_by=read_by,
        period=_PERIOD[query.bucket],
        using=replica_alias(),
    )
    rows = [row for row in totals.rows if row.generations or row.units or row.credits]  # holds not yet captured
    labels = _labels(organization, rows, query.group_by)
    sums: list[dict[tuple[Any, ...], list[int]]] = [{} for _ in starts]
    total = {"generations": 0, "units": 0, "credits": 0, ReportGroup.CHATBOT: 0, ReportGroup.IMAGE_SPEECH: 0}
    for row in rows:
        # A period that starts before the range (the first month) belongs to the first bucket.
        index = max(bisect_right(starts, row.period_start) - 1, 0) if row.period_start is not None else 0
        values = {"workspace": row.workspace_id, "member": row.user_id, "tool": row.tool, "model": row.model}
        figures = sums[index].setdefault(tuple(values[name] for name in query.group_by), [0, 0, 0])
        for position, amount in enumerate((row.generations, row.units, row.credits)):
            figures[position] += amount
        total["generations"] += row.generations
        total["units"] += row.units
        total["credits"] += row.credits
        group = TOOL_GROUP.get(row.tool or "")
        if group is not None:
            total[group] += row.credits
    ends = [*starts[1:], range_end]
    buckets = [
        {
            "start": _iso(bucket_start, zone),
            "end": _iso(bucket_end, zone),
            "results": [
                {**_result(key, query.group_by, labels), "generations": g, "units": u, "credits": c}
                for key, (g, u, c) in sorted(bucket_sums.items(), key=lambda item: _sort_key(item[0]))
            ],
        }
        for bucket_start, bucket_end, bucket_sums in zip(starts, ends, sums, strict=True)
    ]
    return {
        "timezone": organization.timezone,
        "start": query.start.isoformat(),
        "end": query.end.isoformat(),
        "bucket": query.bucket,
        "as_of": _iso(as_of, zone),
        "buckets": buckets,
        "totals": {
            "generations": total["generations"],
            "units": total["units"],
            "credits": total["credits"],
            "chatbot_credits": total[ReportGroup.CHATBOT],
            "image_speech_credits": total[ReportGroup.IMAGE_SPEECH],
        },
    }


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((value is None, value) for value in key)
