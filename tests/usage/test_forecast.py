"""Forecasts of an organization (usage.forecast): daily spend read through the live usage read in the
organization's time zone, the pool / budget / limit forecasts, the pages that show them and the runway alert."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from billing.ledger import credits_grant, credits_transfer
from billing.models import AlertState
from billing.services import credit_mode_switch, workspace_limit_set
from orgs.models import CreditMode, Notification, Organization, OrganizationRole
from orgs.services import organization_update
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage import tasks
from usage.forecast import (
    RUNWAY_KIND,
    SubjectForecast,
    budget_forecasts,
    forecast_compute,
    limit_forecasts,
    pool_forecast,
    runway_alerts_evaluate,
)
from usage.models import UsageEvent, UsageStatus
from workspaces.models import Workspace, WorkspaceRole

pytestmark = pytest.mark.django_db

_keys = itertools.count()
LA = ZoneInfo("America/Los_Angeles")


def build(
    *, mode: str = CreditMode.SHARED, grant: int = 1_000, budget: int = 0, tz: str = "UTC", age_days: int = 60
) -> SimpleNamespace:
    """An organization with an Owner, an Admin and a Member who spends in the workspace "Studio", created
    `age_days` ago (it and its workspaces)."""
    owner = UserFactory()
    org = make_organization(owner=owner, name=f"Forecast {next(_keys)}", timezone=tz)
    admin = make_member(org, role=OrganizationRole.ADMIN).user
    studio = make_workspace(org, name="Studio")
    member = make_member(org, workspaces={studio: WorkspaceRole.MEMBER}).user
    created = now() - timedelta(days=age_days)
    Organization.objects.filter(pk=org.pk).update(created_at=created)
    Workspace.objects.filter(organization=org).update(created_at=created)
    org.refresh_from_db()
    studio.refresh_from_db()
    primary = Workspace.objects.get(organization=org, is_primary=True)
    if grant:
        credits_grant(organization=org, amount=grant, actor=owner)
    if mode == CreditMode.BUDGET:
        org = credit_mode_switch(organization=org, mode=CreditMode.BUDGET, actor=owner)
        if budget:
            credits_transfer(organization=org, source=primary, target=studio, amount=budget, actor=owner)
    return SimpleNamespace(org=org, owner=owner, admin=admin, member=member, studio=studio, primary=primary)


def used(w: SimpleNamespace, at: datetime, credits: int, *, workspace: Workspace | None = None, user=None) -> None:
    """A captured generation at `at`, as the metering services record it (the forecast reads usage, not the ledger)."""
    UsageEvent.objects.create(
        organization_id=w.org.pk,
        workspace_id=(workspace or w.studio).pk,
        user_id=(user or w.member).pk,
        tool="image",
        model="test-model",
        units=1,
        credits=credits,
        status=UsageStatus.CAPTURED,
        idempotency_key=f"forecast-{next(_keys)}",
        ledger_transaction_id=1,
        created_at=at,
    )


def daily(w: SimpleNamespace, days: int, credits: int, **kwargs) -> None:
    """`credits` a day on each of the last `days` days (at this time of day), nothing today."""
    for k in range(1, days + 1):
        used(w, now() - timedelta(days=k), credits, **kwargs)


# --- reading the daily spend ----------------------------------------------------------------------------------------


def test_days_are_cut_in_the_organizations_time_zone():
    # Los Angeles, Monday 30 November 2026 at noon. Four weeks of 100 credits at 22:00 on each working day: in UTC
    # those land on Tuesday to Saturday, so a forecast cut in UTC would spend on Saturday and run out a day later.
    w = build(tz="America/Los_Angeles", grant=1_000)
    at = datetime(2026, 11, 30, 12, tzinfo=LA)
    for k in range(1, 29):
        day = at - timedelta(days=k)
        if day.weekday() < 5:
            used(w, day.replace(hour=22), 100)
    item = pool_forecast(organization=w.org, at=at)
    assert item is not None
    f = item.forecast
    assert (f.history_days, f.window_days, round(f.rate, 2)) == (28, 28, 71.43)
    # 1,000 credits: ten working days, Monday 30 November to Friday 11 December.
    assert f.run_out == date(2026, 12, 11)
    assert item.run_out_text == "11 Dec"


def test_under_7_days_of_history_gives_no_number():
    w = build(grant=1_000, age_days=4)
    daily(w, 3, 100)
    f = pool_forecast(organization=w.org).forecast
    assert not f.enough_data
    assert f.history_days == 3
    assert (f.rate, f.run_out) == (None, None)


def test_usage_older_than_its_record_means_the_whole_window_counts():
    # Imported or backdated usage from before the organization's creation: its history is the whole window.
    w = build(grant=1_000, age_days=4)
    used(w, now() - timedelta(days=10), 280)
    f = pool_forecast(organization=w.org).forecast
    assert (f.history_days, f.rate) == (28, 10)


def test_the_pool_counts_every_workspace_and_the_live_balance():
    w = build(grant=2_000, age_days=15)
    daily(w, 14, 60)
    daily(w, 14, 40, workspace=w.primary, user=w.owner)
    f = pool_forecast(organization=w.org).forecast
    assert (f.rate, f.rate_7, f.remaining, f.history_days) == (100, 100, 2_000, 14)
    assert f.runway_days == 19  # today and 19 more days at 100 a day
    assert budget_forecasts(organization=w.org) == {}


def test_each_budget_has_its_own_forecast():
    w = build(mode=CreditMode.BUDGET, grant=3_000, budget=1_000, age_days=15)
    daily(w, 14, 100)
    assert pool_forecast(organization=w.org) is None
    forecasts = budget_forecasts(organization=w.org)
    studio, primary = forecasts[w.studio.pk], forecasts[w.primary.pk]
    assert (studio.subject, studio.label) == (f"budget:{w.studio.pk}", "the budget of Studio")
    assert (studio.forecast.remaining, studio.forecast.runway_days) == (1_000, 9)
    # The Primary Workspace has spent nothing in its 14 days: it has no run-out date.
    assert primary.forecast.remaining == 2_000
    assert primary.forecast.history_days == 14
    assert primary.forecast.no_burn
    assert primary.forecast.run_out is None
    # A workspace created today has no history yet, so no forecast; its first whole day is tomorrow.
    fresh = make_workspace(w.org, name="Fresh")
    assert budget_forecasts(organization=w.org)[fresh.pk].forecast.history_days == 0
    Workspace.objects.filter(pk=fresh.pk).update(created_at=now() - timedelta(days=10))
    assert budget_forecasts(organization=w.org)[fresh.pk].forecast.history_days == 9


def test_a_monthly_limit_is_forecast_until_it_resets():
    w = build(grant=100_000, age_days=15)
    daily(w, 14, 100)
    daily(w, 14, 7, workspace=w.studio, user=w.owner)
    at = now()
    forecasts = limit_forecasts(
        organization=w.org,
        workspace=w.studio,
        limits={None: 50_000, w.member.pk: 300},
        spent={w.member.pk: 0},
        emails={w.member.pk: w.member.email},
        at=at,
    )
    member = forecasts[w.member.pk]
    assert member.is_limit
    assert member.label == f"{w.member.email}'s monthly limit in Studio"
    assert member.forecast.rate == 100
    assert member.forecast.until == (at.date().replace(day=28) + timedelta(days=4)).replace(day=1)
    if (member.forecast.until - at.date()).days > 2:
        assert member.forecast.run_out == at.date() + timedelta(days=2)
    workspace = forecasts[None]
    assert workspace.forecast.rate == 107  # the workspace's limit counts everyone in it
    assert workspace.forecast.run_out is None  # 50,000 is not reached this month at 107 a day


# --- the pages ------------------------------------------------------------------------------------------------------


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def words(response) -> str:
    """The page's text with its whitespace collapsed and its apostrophes unescaped, as a reader sees it."""
    return " ".join(response.content.decode().replace("&#x27;", "'").split())


def test_the_billing_page_says_when_the_pool_runs_out(django_assert_num_queries):
    w = build(grant=2_000)
    daily(w, 28, 100)
    client = logged_in(w.owner)
    page = reverse("billing:page", args=[w.org.slug])
    text = words(client.get(page))
    assert "At the last 28 days' pace (about 100 credits a day) the shared credit pool runs out around" in text
    with django_assert_num_queries(QUERIES_BILLING) as small:
        client.get(page)
    # More history, more workspaces, more members: the same queries.
    for i in range(3):
        extra = make_workspace(w.org, name=f"Extra {i}")
        daily(w, 28, 5, workspace=extra, user=make_member(w.org, workspaces={extra: WorkspaceRole.MEMBER}).user)
    with django_assert_num_queries(len(small.captured_queries)):
        assert "runs out around" in client.get(page).content.decode()


def test_the_billing_page_says_when_there_is_not_enough_data():
    w = build(grant=2_000, age_days=3)
    daily(w, 2, 100)
    text = words(logged_in(w.owner).get(reverse("billing:page", args=[w.org.slug])))
    assert "Not enough data yet to forecast the shared credit pool" in text
    assert "runs out around" not in text


def test_the_workspaces_tab_shows_each_budget(django_assert_num_queries):
    w = build(mode=CreditMode.BUDGET, grant=3_000, budget=1_000, age_days=15)
    daily(w, 14, 100)
    client = logged_in(w.admin)
    page = reverse("workspaces:list", args=[w.org.slug])
    text = words(client.get(page))
    assert "the budget of Studio runs out around" in text
    assert "Nothing was spent in the last 14 days, so the budget of Primary Workspace has no run-out date" in text
    with django_assert_num_queries(QUERIES_WORKSPACES) as small:
        client.get(page)
    for i in range(3):
        extra = make_workspace(w.org, name=f"Extra {i}")
        daily(w, 10, 5, workspace=extra)
    with django_assert_num_queries(len(small.captured_queries)):
        assert "the budget of Extra 2" in client.get(page).content.decode()


def test_the_limits_page_says_whether_a_limit_is_reached_before_it_resets(django_assert_num_queries):
    w = build(grant=100_000)
    daily(w, 14, 100)
    workspace_limit_set(workspace=w.studio, user=w.member, monthly_limit=1_000_000, actor=w.owner)
    client = logged_in(w.owner)
    page = reverse("billing:workspace_limit_set", args=[w.org.slug, w.studio.slug])
    text = words(client.get(page))
    assert f"{w.member.email}'s monthly limit in Studio is not expected to be reached before it resets" in text
    with django_assert_num_queries(QUERIES_LIMITS) as small:
        client.get(page)
    workspace_limit_set(workspace=w.studio, user=None, monthly_limit=500, actor=w.owner)
    for _ in range(3):
        other = make_member(w.org, workspaces={w.studio: WorkspaceRole.MEMBER}).user
        workspace_limit_set(workspace=w.studio, user=other, monthly_limit=100, actor=w.owner)
        daily(w, 14, 10, user=other)
    with django_assert_num_queries(len(small.captured_queries)):
        text = words(client.get(page))
    assert "the monthly limit of Studio" in text


# Measured (PostgreSQL): the forecast adds the roll-up watermark and the day totals to each page, and the pool's
# balance on the Billing page (the Workspaces tab has it already): Billing 12 + 3 (its plan cards read the plans and
# the subscription once), Workspaces tab 9 + 2 (budget mode; the same in shared mode) + 2 for its usage columns,
# Limits page 11 (the whole month's spending per member and workspace) + 2.
QUERIES_BILLING = 15
QUERIES_WORKSPACES = 13
QUERIES_LIMITS = 13


# --- the runway alert -----------------------------------------------------------------------------------------------


def evaluate(w: SimpleNamespace, capture, at: datetime | None = None) -> int:
    with capture(execute=True):
        return runway_alerts_evaluate(organization=w.org, at=at)


def test_the_runway_alert_fires_once_per_period_in_the_app_and_by_email(django_capture_on_commit_callbacks):
    w = build(grant=500, age_days=15)
    daily(w, 14, 100)  # 500 credits at 100 a day: gone in 4 days, under the default 7
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    notes = Notification.objects.filter(organization=w.org, kind=RUNWAY_KIND)
    assert sorted(n.user_id for n in notes) == sorted([w.owner.pk, w.admin.pk])  # not the Member
    note = notes.first()
    assert note.title == "The shared credit pool runs out in about 4 days"
    assert "At the last 14 days' pace (about 100 credits a day), 500 credits left" in note.body
    assert note.url == reverse("billing:page", args=[w.org.slug])
    assert sorted(m.to[0] for m in mail.outbox) == sorted([w.owner.email, w.admin.email])
    assert mail.outbox[0].subject == "[Qolaba] The shared credit pool runs out in about 4 days"
    assert settings.SITE_URL + note.url in mail.outbox[0].body
    assert AlertState.objects.filter(organization=w.org, subject="runway:pool", threshold=7).count() == 1
    # Not again in the same period.
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert len(mail.outbox) == 2
    assert notes.count() == 2
    # An alert of an earlier period does not count for this one.
    state = AlertState.objects.get(organization=w.org, subject="runway:pool")
    AlertState.objects.filter(pk=state.pk).update(period_start=state.period_start - timedelta(days=31))
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert len(mail.outbox) == 4


def test_no_runway_alert_under_7_days_of_data_or_with_a_long_runway(django_capture_on_commit_callbacks):
    short = build(grant=500, age_days=6)
    daily(short, 5, 100)
    assert evaluate(short, django_capture_on_commit_callbacks) == 0
    long = build(grant=5_000, age_days=15)
    daily(long, 14, 100)
    assert evaluate(long, django_capture_on_commit_callbacks) == 0
    idle = build(grant=10)
    assert evaluate(idle, django_capture_on_commit_callbacks) == 0
    empty = build(grant=0)  # no credits, but nothing spent either: nothing is running out
    assert pool_forecast(organization=empty.org).forecast.runway_days == 0
    assert evaluate(empty, django_capture_on_commit_callbacks) == 0
    assert not Notification.objects.filter(kind=RUNWAY_KIND).exists()
    assert mail.outbox == []


def test_the_runway_alert_follows_the_organizations_number_of_days(django_capture_on_commit_callbacks):
    w = build(grant=5_000, age_days=15)
    daily(w, 14, 100)  # about 49 days
    organization_update(organization=w.org, actor=w.owner, name=w.org.name, timezone="UTC", runway_alert_days=60)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert AlertState.objects.get(organization=w.org).threshold == 60


def test_a_budget_workspace_gets_its_own_runway_alert(django_capture_on_commit_callbacks):
    w = build(mode=CreditMode.BUDGET, grant=3_000, budget=300, age_days=15)
    daily(w, 14, 100)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1  # Studio; the Primary spends nothing
    note = Notification.objects.filter(kind=RUNWAY_KIND).first()
    assert note.title == "The budget of Studio runs out in about 2 days"
    assert note.url == reverse("workspaces:list", args=[w.org.slug])
    assert AlertState.objects.filter(subject=f"runway:budget:{w.studio.pk}").exists()


def test_the_task_evaluates_every_organization_and_beat_runs_it():
    w = build(grant=500, age_days=15)
    daily(w, 14, 100)
    assert tasks.runway_alerts_evaluate_run.delay().get() == 1
    schedule = settings.CELERY_BEAT_SCHEDULE["runway-alerts"]
    assert schedule["task"] == "usage.tasks.runway_alerts_evaluate_run"


# --- the setting ----------------------------------------------------------------------------------------------------


def test_the_runway_days_are_set_on_the_profile_and_validated():
    w = build()
    client = logged_in(w.admin)
    page = reverse("orgs:profile", args=[w.org.slug])
    data = {"name": w.org.name, "timezone": w.org.timezone, "alert_thresholds": "80, 100"}
    assert client.post(page, {**data, "runway_alert_days": "14"}).status_code == 302
    w.org.refresh_from_db()
    assert w.org.runway_alert_days == 14
    for bad in ("0", "91", "abc", "-3"):
        response = client.post(page, {**data, "runway_alert_days": bad})
        assert response.status_code == 400
        w.org.refresh_from_db()
        assert w.org.runway_alert_days == 14
    assert client.post(page, data).status_code == 302  # left empty: kept
    w.org.refresh_from_db()
    assert w.org.runway_alert_days == 14
    with pytest.raises(ValidationError):
        organization_update(organization=w.org, actor=w.owner, name="X", timezone="UTC", runway_alert_days=91)
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=w.org.pk).update(runway_alert_days=0)
    assert Organization.objects.get(pk=w.org.pk).runway_alert_days == 14


def test_a_member_cannot_change_the_runway_days():
    w = build()
    response = logged_in(w.member).post(
        reverse("orgs:profile", args=[w.org.slug]), {"name": "X", "timezone": "UTC", "runway_alert_days": "3"}
    )
    assert response.status_code == 404
    w.org.refresh_from_db()
    assert w.org.runway_alert_days == 7


def test_the_pace_and_the_days_read_as_words():
    def item(rate, run_out=None):
        forecast = forecast_compute(daily=[0] * 28, today=date(2026, 12, 7), remaining=1)
        forecast = replace(forecast, rate=rate, run_out=run_out)
        return SubjectForecast("pool", "the shared credit pool", forecast)

    assert item(1_240.4).rate_text == "about 1,240 credits a day"
    assert item(1.2).rate_text == "about 1 credit a day"
    assert item(0.2).rate_text == "less than 1 credit a day"
    assert item(0.0).rate_text == "nothing a day"
    assert item(5, date(2026, 12, 14)).run_out_text == "14 Dec"
    assert item(5, date(2027, 1, 3)).run_out_text == "3 Jan 2027"


def test_the_runway_alert_says_when_nothing_is_left(django_capture_on_commit_callbacks):
    w = build(grant=0, age_days=15)
    daily(w, 14, 100)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    note = Notification.objects.filter(organization=w.org, kind=RUNWAY_KIND).first()
    assert note.title == "No credits are left in the shared credit pool"
    assert note.body == (
        f"At the last 14 days' pace (about 100 credits a day), {w.org.name} needs more credits "
        "in the shared credit pool."
    )
