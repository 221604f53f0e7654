"""The forecast arithmetic, free of the database: daily spend in, burn rate, runway and run-out date out.

The pace is the trailing window's (up to the last 28 complete days), split by weekday: each day ahead is expected
to cost what that weekday cost on average in the window, so a team that never works at weekends gets no weekend
burn. The band comes from the spread of daily spend (its standard deviation s): after k days the spend ahead is
expected within ± s * sqrt(k) of the projection, and the earliest and latest days at which the remaining credits can be
used up at that edge are the low and high runway. Under 7 days of history there is no forecast, never a made-up
number; with nothing spent in the window there is no run-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from math import sqrt
from statistics import pstdev

MIN_HISTORY_DAYS = 7
WINDOW_DAYS = 28
HORIZON_DAYS = 365  # a run-out further away than this is reported as "more than a year"


@dataclass(frozen=True)
class Forecast:
    """When `remaining` credits run out at the trailing pace. Dates are local days of the organization.

    `run_out`, `earliest` and `latest` are None when that day falls on or after `until` (a monthly limit's reset
    day) or past the horizon; `latest` may be None while `run_out` is not (the slow edge never gets there)."""

    today: date
    remaining: int
    history_days: int  # complete days of history before today the forecast could use
    window_days: int  # days the pace uses (7 to 28); 0 without enough data
    rate: float | None  # credits a day over the window (None: not enough data)
    rate_7: float | None  # credits a day over the last 7 days
    run_out: date | None
    earliest: date | None  # fast edge of the band: the low runway
    latest: date | None  # slow edge of the band: the high runway
    until: date | None  # a monthly limit's reset day: the projection stops there

    @property
    def enough_data(self) -> bool:
        return self.history_days >= MIN_HISTORY_DAYS

    @property
    def no_burn(self) -> bool:
        return self.enough_data and not self.rate

    @property
    def runway_days(self) -> int | None:
        return None if self.run_out is None else (self.run_out - self.today).days

    @property
    def runway_low(self) -> int | None:
        return None if self.earliest is None else (self.earliest - self.today).days

    @property
    def runway_high(self) -> int | None:
        return None if self.latest is None else (self.latest - self.today).days


def weekday_profile(window: Sequence[int], first_day: date) -> list[float]:
    """The average spend of each weekday (Monday = 0) over `window`, whose first day is `first_day`."""
    sums, counts = [0] * 7, [0] * 7
    for offset, spent in enumerate(window):
        weekday = (first_day + timedelta(days=offset)).weekday()
        sums[weekday] += spent
        counts[weekday] += 1
    return [sums[w] / counts[w] if counts[w] else 0.0 for w in range(7)]


def forecast_compute(
    *,
    daily: Sequence[int],
    today: date,
    remaining: int,
    spent_today: int = 0,
    until: date | None = None,
    horizon_days: int = HORIZON_DAYS,
) -> Forecast:
    """Forecast from `daily`: the spend of each complete day up to yesterday, oldest first (only days of history:
    a day before the subject existed is not a zero). `remaining` is what is left now, `spent_today` what was already
    spent today (the rest of today is expected to cost that weekday's average less it). With `until`, the projection
    stops before that day (a monthly limit resets then)."""
    history = len(daily)
    if history < MIN_HISTORY_DAYS:
        return Forecast(today, remaining, history, 0, None, None, None, None, None, until)
    window = list(daily[-WINDOW_DAYS:])
    days = len(window)
    rate = sum(window) / days
    rate_7 = sum(window[-7:]) / 7
    end = until if until is not None else today + timedelta(days=horizon_days)
    if remaining <= 0:
        return Forecast(today, remaining, history, days, rate, rate_7, today, today, today, until)
    if rate == 0:
        return Forecast(today, remaining, history, days, rate, rate_7, None, None, None, until)
    profile = weekday_profile(window, today - timedelta(days=days))
    sigma = pstdev(window)
    run_out = earliest = latest = None
    spent = 0.0
    day, counted = today, 0
    while day < end:
        expected = profile[day.weekday()]
        if day == today:
            expected = max(0.0, expected - spent_today)
        spent += expected
        counted += 1
        spread = sigma * sqrt(counted)
        if earliest is None and spent + spread >= remaining:
            earliest = day
        if run_out is None and spent >= remaining:
            run_out = day
        if spent - spread >= remaining:
            latest = day
            break
        day += timedelta(days=1)
    return Forecast(today, remaining, history, days, rate, rate_7, run_out, earliest, latest, until)
