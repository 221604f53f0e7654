"""The runway alert: when the pool (shared mode) or a workspace budget (budget mode) is forecast to run out in
fewer days than the organization's `runway_alert_days` (default 7), its Owners and Admins are told in the app and
by email — once per subject and budget period, like the other credit alerts (`billing.alerts`), whose
`AlertState` and notification path it shares. Never without 7 days of history, nor when nothing is being spent.
A beat task runs it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.timezone import now

from billing.alerts import admins_notify
from billing.ledger import period_bounds
from billing.models import AlertState
from orgs.models import Organization
from usage.forecast.read import SubjectForecast, runway_forecasts

RUNWAY_KIND = "credits.runway"


def _url(organization: Organization, item: SubjectForecast) -> str:
    page = "billing:page" if item.subject == "pool" else "workspaces:list"
    return reverse(page, args=[organization.slug])


def _message(organization: Organization, item: SubjectForecast) -> tuple[str, str]:
    forecast = item.forecast
    days = forecast.runway_days
    if forecast.remaining <= 0:
        title = f"No credits are left in {item.label}"
    elif days == 0:
        title = f"{item.label[0].upper()}{item.label[1:]} runs out today"
    else:
        title = f"{item.label[0].upper()}{item.label[1:]} runs out in about {days} day{'s' if days != 1 else ''}"
    pace = f"At the last {forecast.window_days} days' pace ({item.rate_text})"
    if forecast.remaining <= 0:
        return title, f"{pace}, {organization.name} needs more credits in {item.label}."
    body = f"{pace}, {forecast.remaining:,} credits left in {organization.name} last until around {item.run_out_text}"
    if forecast.earliest and forecast.latest and forecast.earliest != forecast.latest:
        body += f" (between {item.earliest_text} and {item.latest_text})"
    return title, body + "."


def runway_alerts_evaluate(*, organization: Organization, at: datetime | None = None) -> int:
    """Raise the runway alerts newly due in the organization. Returns how many fired."""
    period_start, _ = period_bounds(organization, at)
    days = organization.runway_alert_days
    fired = 0
    for item in runway_forecasts(organization=organization, at=at):
        runway = item.forecast.runway_days
        # Nothing spent: nothing is running out, even at zero (the usage alerts speak of spent credits).
        if not item.forecast.enough_data or item.forecast.no_burn or runway is None or runway >= days:
            continue
        title, body = _message(organization, item)
        try:
            with transaction.atomic():
                # The threshold is the number of days: raising it past the runway alerts again in the same period.
                AlertState.objects.create(
                    organization=organization,
                    subject=f"runway:{item.subject}",
                    threshold=days,
                    period_start=period_start,
                )
                admins_notify(
                    organization=organization, kind=RUNWAY_KIND, title=title, body=body, url=_url(organization, item)
                )
        except IntegrityError:
            continue  # already alerted this period
        fired += 1
    return fired


def runway_alerts_evaluate_all(*, at: datetime | None = None) -> int:
    fired = 0
    for organization in Organization.objects.alive().iterator():
        fired += runway_alerts_evaluate(organization=organization, at=at or now())
    return fired
