"""Credit forecasts: burn rate, runway and run-out date of the pool, each workspace budget and each monthly limit.

- `maths`: the arithmetic, on a series of daily spend (no database);
- `read`: the forecasts of an organization, from the live usage read and the balances;
- `alerts`: the runway alert (Owners and Admins are told when the runway drops under the organization's number of
  days).
"""

from usage.forecast.alerts import RUNWAY_KIND, runway_alerts_evaluate, runway_alerts_evaluate_all
from usage.forecast.maths import MIN_HISTORY_DAYS, WINDOW_DAYS, Forecast, forecast_compute, weekday_profile
from usage.forecast.read import (
    SubjectForecast,
    budget_forecasts,
    limit_forecasts,
    pool_forecast,
    runway_forecasts,
)

__all__ = [
    "MIN_HISTORY_DAYS",
    "RUNWAY_KIND",
    "WINDOW_DAYS",
    "Forecast",
    "SubjectForecast",
    "budget_forecasts",
    "forecast_compute",
    "limit_forecasts",
    "pool_forecast",
    "runway_alerts_evaluate",
    "runway_alerts_evaluate_all",
    "runway_forecasts",
    "weekday_profile",
]
