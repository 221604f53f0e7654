"""The forecast arithmetic (usage.forecast.maths) on fixed daily series: exact runway, run-out date and band."""

from __future__ import annotations

from datetime import date, timedelta

from usage.forecast import forecast_compute, weekday_profile

MONDAY = date(2026, 12, 7)


def test_a_steady_pace_gives_an_exact_run_out_and_no_band():
    f = forecast_compute(daily=[100] * 28, today=MONDAY, remaining=1_000)
    assert (f.rate, f.rate_7, f.window_days, f.history_days) == (100, 100, 28, 28)
    # Today and the next 9 days spend 100 each: the 1,000 credits are gone at the end of the 10th day.
    assert f.run_out == date(2026, 12, 16)
    assert f.runway_days == 9
    assert f.earliest == f.latest == f.run_out  # no spread, no band


def test_the_band_comes_from_the_spread_of_daily_spend():
    # 50 and 150 in turn: 100 a day on average (every weekday too), standard deviation 50. After k days the spend
    # is 100k ± 50 sqrt(k): it reaches 1,000 at the earliest after 9 days (900 + 150), at the latest after 12
    # (1,200 - 173.2; after 11 it is 1,100 - 165.8 = 934).
    f = forecast_compute(daily=[50, 150] * 14, today=MONDAY, remaining=1_000)
    assert f.rate == 100
    assert f.run_out == MONDAY + timedelta(days=9)
    assert f.earliest == MONDAY + timedelta(days=8)
    assert f.latest == MONDAY + timedelta(days=11)
    assert (f.runway_low, f.runway_days, f.runway_high) == (8, 9, 11)


def test_each_weekday_is_projected_at_its_own_average():
    # A team that spends 100 on working days and nothing at weekends (the window starts on a Monday).
    week = [100, 100, 100, 100, 100, 0, 0]
    assert weekday_profile(week * 4, MONDAY - timedelta(days=28)) == [100, 100, 100, 100, 100, 0, 0]
    f = forecast_compute(daily=week * 4, today=MONDAY, remaining=1_000)
    assert round(f.rate or 0, 2) == 71.43  # the plain average would run out on Sunday 20 Dec
    # Ten working days: Monday 7 to Friday 18 December; the weekend in between costs nothing.
    assert f.run_out == date(2026, 12, 18)
    assert f.run_out.weekday() == 4
    # Seen from a Saturday, 500 credits last the weekend and the five working days after it.
    saturday = date(2026, 12, 12)
    f = forecast_compute(daily=week * 4 + week[:5], today=saturday, remaining=500)
    assert f.run_out == date(2026, 12, 18)


def test_what_was_spent_today_counts_against_today():
    f = forecast_compute(daily=[100] * 14, today=MONDAY, remaining=1_000, spent_today=60)
    # Today is expected to cost 40 more, then 100 a day: 40 + 9 * 100 < 1,000 ≤ 40 + 10 * 100.
    assert f.run_out == MONDAY + timedelta(days=10)


def test_under_7_days_of_history_there_is_no_forecast():
    f = forecast_compute(daily=[500] * 6, today=MONDAY, remaining=1_000)
    assert not f.enough_data
    assert (f.rate, f.rate_7, f.run_out, f.earliest, f.latest, f.runway_days) == (None,) * 6
    assert f.history_days == 6
    assert forecast_compute(daily=[500] * 7, today=MONDAY, remaining=1_000).enough_data


def test_nothing_spent_means_no_run_out():
    f = forecast_compute(daily=[0] * 28, today=MONDAY, remaining=1_000)
    assert f.enough_data
    assert f.no_burn
    assert (f.run_out, f.runway_days, f.earliest, f.latest) == (None, None, None, None)


def test_the_window_is_the_last_28_days():
    f = forecast_compute(daily=[1_000] * 30 + [10] * 28, today=MONDAY, remaining=100)
    assert (f.rate, f.window_days, f.history_days) == (10, 28, 58)
    assert f.run_out == MONDAY + timedelta(days=9)
    f = forecast_compute(daily=[10] * 21 + [40] * 7, today=MONDAY, remaining=100)
    assert (f.rate, f.rate_7) == (17.5, 40)


def test_a_monthly_limit_is_reached_only_before_it_resets():
    until = date(2027, 1, 1)
    reached = forecast_compute(daily=[100] * 28, today=date(2026, 12, 20), remaining=500, until=until)
    assert reached.run_out == date(2026, 12, 24)
    not_reached = forecast_compute(daily=[100] * 28, today=date(2026, 12, 28), remaining=500, until=until)
    assert (not_reached.run_out, not_reached.earliest, not_reached.latest) == (None, None, None)


def test_nothing_left_runs_out_today_and_a_slow_pace_lasts_past_the_horizon():
    f = forecast_compute(daily=[100] * 10, today=MONDAY, remaining=0)
    assert (f.run_out, f.runway_days) == (MONDAY, 0)
    slow = forecast_compute(daily=[1] * 28, today=MONDAY, remaining=1_000)
    assert slow.enough_data
    assert not slow.no_burn
    assert slow.run_out is None
