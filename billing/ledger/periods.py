"""Budget periods: the calendar month, in the organization's time zone, that monthly limits count over."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.timezone import now

from orgs.models import Organization

# time zone -> (instant the period starts, its first day, instant it ends): every charge needs its period.
_periods: dict[str, tuple[datetime, date, datetime]] = {}


def period_bounds(organization: Organization, at: datetime | None = None) -> tuple[date, datetime]:
    """The budget period containing `at`: a calendar month in the organization's time zone.

    Returns (first day of the month, the instant the next month starts there).
    """
    moment = at or now()
    cached = _periods.get(organization.timezone)
    if cached is not None and cached[0] <= moment < cached[2]:
        return cached[1], cached[2]
    tz = ZoneInfo(organization.timezone)
    start = moment.astimezone(tz).date().replace(day=1)
    next_month = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    starts_at = datetime(start.year, start.month, 1, tzinfo=tz)
    resets_at = datetime(next_month.year, next_month.month, 1, tzinfo=tz)
    _periods[organization.timezone] = (starts_at, start, resets_at)
    return start, resets_at
