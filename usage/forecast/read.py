"""Forecasts of the organization's credits: the shared pool, each workspace budget and each monthly limit.

Daily spend is read only through the live read (`usage.rollup.usage_totals`, days cut in the organization's time
zone), so the figures agree with every other usage view; what is left comes from the live balances and the monthly
spend counters. Each function runs a fixed number of queries whatever the organization's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.timezone import now

from billing.ledger import period_bounds
from billing.models import balance_of
from orgs.models import CreditMode, Organization
from usage.forecast.maths import WINDOW_DAYS, Forecast, forecast_compute
from usage.rollup import usage_totals
from workspaces.models import Workspace

_QUARTER = 15 * 60


@dataclass(frozen=True)
class SubjectForecast:
    """The forecast of one thing that can run out: `subject` is named as the credit alerts name it ("pool",
    "budget:<workspace id>", "limit:<workspace id>:<member id or 0>"); `label` reads mid-sentence ("the shared
    credit pool")."""

    subject: str
    label: str
    forecast: Forecast
    is_limit: bool = False

    def _day(self, day: date | None) -> str:
        if day is None:
            return ""
        return f"{day.day} {day:%b}" if day.year == self.forecast.today.year else f"{day.day} {day:%b %Y}"

    @staticmethod
    def _pace(rate: float | None) -> str:
        if not rate:
            return "nothing a day"
        if rate < 0.5:
            return "less than 1 credit a day"
        credits = round(rate)
        return f"about {credits:,} credit{'s' if credits != 1 else ''} a day"

    @property
    def rate_text(self) -> str:
        """The window's pace, as "about 1,240 credits a day"."""
        return self._pace(self.forecast.rate)

    @property
    def rate_7_text(self) -> str:
        return self._pace(self.forecast.rate_7)

    @property
    def run_out_text(self) -> str:
        return self._day(self.forecast.run_out)

    @property
    def earliest_text(self) -> str:
        return self._day(self.forecast.earliest)

    @property
    def latest_text(self) -> str:
        return self._day(self.forecast.latest)

    @property
    def until_text(self) -> str:
        return self._day(self.forecast.until)


@dataclass(frozen=True)
class _Window:
    zone: ZoneInfo
    today: date
    first_day: date  # the first day of the trailing window
    start: datetime  # its first instant (UTC)
    end: datetime  # now, rounded up to the next 15-minute boundary (UTC)


def _window(organization: Organization, at: datetime | None) -> _Window:
    moment = (at or now()).astimezone(UTC)
    zone = ZoneInfo(organization.timezone)
    today = moment.astimezone(zone).date()
    first_day = today - timedelta(days=WINDOW_DAYS)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone).astimezone(UTC)
    seconds = int(moment.timestamp())
    end = datetime.fromtimestamp(-(-seconds // _QUARTER) * _QUARTER, tz=UTC)
    return _Window(zone, today, first_day, start, end)


def _history_start(created_at: datetime, zone: ZoneInfo) -> date:
    """The first whole local day of something created at `created_at`."""
    local = created_at.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date() if local == midnight else local.date() + timedelta(days=1)


def _forecast(
    window: _Window,
    days: Mapping[date, int],
    *,
    created_at: datetime,
    remaining: int,
    until: date | None = None,
) -> Forecast:
    """The forecast of a subject that spent `days` (local day → credits): its history starts on its first whole
    day and never before the window. Usage from before that day (imported or backdated data) means the record is
    younger than the history: the whole window counts then."""
    first_spend = min((day for day, credits in days.items() if credits and day < window.today), default=None)
    begin = _history_start(created_at, window.zone)
    if first_spend is not None and first_spend < created_at.astimezone(window.zone).date():
        begin = window.first_day
    begin = max(begin, window.first_day)
    daily = [days.get(begin + timedelta(days=i), 0) for i in range((window.today - begin).days)]
    return forecast_compute(
        daily=daily, today=window.today, remaining=remaining, spent_today=days.get(window.today, 0), until=until
    )


def _local_day(start: datetime | None, zone: ZoneInfo) -> date:
    assert start is not None  # noqa: S101 (rows of a period="day" read)
    return start.astimezone(zone).date()


def pool_forecast(
    *, organization: Organization, balance: int | None = None, at: datetime | None = None
) -> SubjectForecast | None:
    """The shared pool's forecast (shared mode; None in budget mode): everything the organization spends, against
    the Primary Workspace's balance (read unless given). Two queries, three when the balance is read."""
    if organization.credit_mode != CreditMode.SHARED:
        return None
    window = _window(organization, at)
    totals = usage_totals(organization=organization, start=window.start, end=window.end, period="day")
    days = {_local_day(row.period_start, window.zone): row.credits for row in totals.rows}
    if balance is None:
        balance = (
            Workspace.objects.filter(organization=organization, is_primary=True)
            .annotate(balance=balance_of("credit_account"))
            .values_list("balance", flat=True)
            .first()
        )
    forecast = _forecast(window, days, created_at=organization.created_at, remaining=balance or 0)
    return SubjectForecast("pool", "the shared credit pool", forecast)


def budget_forecasts(
    *, organization: Organization, workspaces: Iterable[Workspace] | None = None, at: datetime | None = None
) -> dict[int, SubjectForecast]:
    """Each workspace budget's forecast (budget mode; empty in shared mode), by workspace id. `workspaces` may
    be given with their `balance` annotated (as the Workspaces tab lists them); otherwise the live workspaces are
    read. Two or three queries."""
    if organization.credit_mode != CreditMode.BUDGET:
        return {}
    if workspaces is None:
        workspaces = (
            Workspace.objects.live()
            .filter(organization=organization)
            .annotate(balance=balance_of("credit_account"))
            .order_by("-is_primary", "name")
        )
    window = _window(organization, at)
    totals = usage_totals(
        organization=organization, start=window.start, end=window.end, group_by=["workspace"], period="day"
    )
    days: dict[int | None, dict[date, int]] = {}
    for row in totals.rows:
        days.setdefault(row.workspace_id, {})[_local_day(row.period_start, window.zone)] = row.credits
    return {
        workspace.pk: SubjectForecast(
            f"budget:{workspace.pk}",
            f"the budget of {workspace.name}",
            _forecast(
                window,
                days.get(workspace.pk, {}),
                created_at=workspace.created_at,
                remaining=workspace.balance,  # type: ignore[attr-defined]
            ),
        )
        for workspace in workspaces
    }


def runway_forecasts(*, organization: Organization, at: datetime | None = None) -> list[SubjectForecast]:
    """What can run out of credits: the pool (shared mode) or each workspace budget (budget mode)."""
    if organization.credit_mode == CreditMode.SHARED:
        pool = pool_forecast(organization=organization, at=at)
        return [pool] if pool is not None else []
    return list(budget_forecasts(organization=organization, at=at).values())


def limit_forecasts(
    *,
    organization: Organization,
    workspace: Workspace,
    limits: Mapping[int | None, int],
    spent: Mapping[int | None, int],
    emails: Mapping[int, str],
    at: datetime | None = None,
) -> dict[int | None, SubjectForecast]:
    """Whether and when each monthly limit of the workspace is reached before it resets, by member id (None: the
    workspace's own limit, counted in shared mode only). `limits` and `spent` are the limits and this period's
    spend counters (as the Limits page reads them), `emails` names the members. Two queries (none without
    limits)."""
    wanted = {
        user_id: limit
        for user_id, limit in limits.items()
        if user_id is not None or organization.credit_mode == CreditMode.SHARED
    }
    if not wanted:
        return {}
    window = _window(organization, at)
    _, resets_at = period_bounds(organization, at)
    until = resets_at.astimezone(window.zone).date()
    totals = usage_totals(
        organization=organization,
        start=window.start,
        end=window.end,
        workspace_ids=[workspace.pk],
        group_by=["user"],
        period="day",
    )
    by_member: dict[int | None, dict[date, int]] = {None: {}}
    for row in totals.rows:
        day = _local_day(row.period_start, window.zone)
        by_member.setdefault(row.user_id, {})[day] = row.credits
        by_member[None][day] = by_member[None].get(day, 0) + row.credits
    forecasts: dict[int | None, SubjectForecast] = {}
    for user_id, limit in wanted.items():
        label = (
            f"the monthly limit of {workspace.name}"
            if user_id is None
            else f"{emails.get(user_id, 'a member')}'s monthly limit in {workspace.name}"
        )
        forecast = _forecast(
            window,
            by_member.get(user_id, {}),
            created_at=workspace.created_at,
            remaining=limit - spent.get(user_id, 0),
            until=until,
        )
        forecasts[user_id] = SubjectForecast(f"limit:{workspace.pk}:{user_id or 0}", label, forecast, is_limit=True)
    return forecasts
