"""Credit alerts (billing.alerts): a workspace budget, a monthly limit or the shared pool crossing one of the
organization's thresholds (default 80% and 100% used) notifies its Owners and Admins — in the app (the bell) and by
email, sent when the transaction commits — once per subject, threshold and budget period.

Charges made while the clock is frozen in another month go through a hold and its capture: the single-statement
charge stamps its transaction with the database clock, which time-machine does not move.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from billing import tasks
from billing.alerts import alerts_evaluate
from billing.ledger import charge, credits_grant, credits_transfer, hold_capture, hold_place, period_bounds
from billing.models import AlertState
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, workspace_limit_set
from orgs.models import CreditMode, Notification, OrganizationRole
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole

pytestmark = pytest.mark.django_db


def build(*, mode: str, grant: int, budget: int = 0, name: str = "Lumen") -> SimpleNamespace:
    """An organization with an Owner, an Admin and a Member who spends in the workspace "Studio"."""
    owner = UserFactory(email=f"owner@{name.lower()}.test")
    org = make_organization(owner=owner, name=name)
    admin = make_member(org, role=OrganizationRole.ADMIN, user=UserFactory(email=f"admin@{name.lower()}.test")).user
    studio = make_workspace(org, name="Studio")
    member = make_member(
        org, user=UserFactory(email=f"member@{name.lower()}.test"), workspaces={studio: WorkspaceRole.MEMBER}
    ).user
    primary = Workspace.objects.get(organization=org, is_primary=True)
    credits_grant(organization=org, amount=grant, actor=owner)
    if mode == CreditMode.BUDGET:
        org = credit_mode_switch(organization=org, mode=CreditMode.BUDGET, actor=owner)
        if budget:
            credits_transfer(organization=org, source=primary, target=studio, amount=budget, actor=owner)
    return SimpleNamespace(org=org, owner=owner, admin=admin, member=member, studio=studio, primary=primary)


def spend(w: SimpleNamespace, amount: int) -> None:
    charge(organization=w.org, workspace=w.studio, user=w.member, amount=amount)


def spend_through_a_hold(w: SimpleNamespace, amount: int) -> None:
    held = hold_place(organization=w.org, workspace=w.studio, user=w.member, amount=amount)
    hold_capture(hold=held.hold, amount=amount)


def notes(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("title", flat=True))


def evaluate(w: SimpleNamespace, capture) -> int:
    with capture(execute=True):
        return alerts_evaluate(organization=w.org)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bell_count(html: str) -> int:
    match = re.search(r'<span class="bell-count[^"]*">(\d+)</span>', html)
    assert match, "no bell in the page"
    return int(match.group(1))


# --- a workspace budget ---------------------------------------------------------------------------------------------


def test_a_budget_crossing_80_percent_alerts_owners_and_admins_once(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    spend(w, 790)
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    spend(w, 10)  # 800 of 1,000

    assert evaluate(w, django_capture_on_commit_callbacks) == 1

    title = "The budget of Studio is 80% used"
    assert notes(w.owner) == [title]
    assert notes(w.admin) == [title]
    assert notes(w.member) == []
    note = Notification.objects.get(user=w.owner)
    assert (note.kind, note.organization, note.read_at) == ("credits.alert", w.org, None)
    assert note.body == "800 of 1,000 credits used this period in Lumen."
    assert note.url == reverse("workspaces:list", args=[w.org.slug])
    assert sorted(m.to[0] for m in mailoutbox) == ["admin@lumen.test", "owner@lumen.test"]
    assert {m.subject for m in mailoutbox} == {f"[Qolaba] {title}"}
    assert settings.SITE_URL + note.url in mailoutbox[0].body

    # Evaluating again (the beat runs every minute) fires nothing more.
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    spend(w, 50)
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert Notification.objects.filter(organization=w.org).count() == 2
    assert len(mailoutbox) == 2
    assert reconcile() == []


def test_the_emails_leave_only_when_the_transaction_commits(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    spend(w, 900)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert alerts_evaluate(organization=w.org) == 1
    assert mailoutbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(mailoutbox) == 2
    assert reconcile() == []


def test_crossing_100_percent_later_fires_once_more_and_the_next_month_fires_again(
    django_capture_on_commit_callbacks, mailoutbox
):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    spend(w, 850)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    spend(w, 150)  # the budget is used up
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert notes(w.owner) == ["The budget of Studio is 80% used", "The budget of Studio is used up"]
    assert len(mailoutbox) == 4

    _, next_month = period_bounds(w.org)
    with time_machine.travel(next_month + timedelta(days=2, hours=3)):
        # A new month: nothing spent in it yet, so nothing to say.
        assert evaluate(w, django_capture_on_commit_callbacks) == 0
        credits_grant(organization=w.org, amount=1_000, actor=w.owner)
        credits_transfer(organization=w.org, source=w.primary, target=w.studio, amount=1_000, actor=w.owner)
        spend_through_a_hold(w, 820)
        assert evaluate(w, django_capture_on_commit_callbacks) == 1
        assert evaluate(w, django_capture_on_commit_callbacks) == 0

    assert notes(w.admin)[-1] == "The budget of Studio is 80% used"
    assert Notification.objects.get(user=w.owner, title__endswith="80% used", created_at__gte=next_month).body == (
        "820 of 1,000 credits used this period in Lumen."
    )
    assert len(mailoutbox) == 6
    periods = sorted(set(AlertState.objects.filter(organization=w.org).values_list("period_start", flat=True)))
    assert len(periods) == 2
    assert reconcile() == []


# --- the shared pool and monthly limits -----------------------------------------------------------------------------


def test_the_shared_pool_crossing_a_threshold_alerts(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.SHARED, grant=1_000)
    spend(w, 850)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert notes(w.owner) == ["The shared credit pool is 80% used"]
    assert Notification.objects.get(user=w.admin).url == reverse("billing:page", args=[w.org.slug])
    assert notes(w.member) == []
    assert len(mailoutbox) == 2
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert reconcile() == []


def test_a_member_monthly_limit_alerts(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.SHARED, grant=100_000)
    workspace_limit_set(workspace=w.studio, user=w.member, monthly_limit=100, actor=w.owner)
    spend(w, 80)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1  # the pool is at 0.08%: only the limit
    assert notes(w.owner) == ["member@lumen.test's monthly limit in Studio is 80% used"]
    note = Notification.objects.get(user=w.owner)
    assert note.body == "80 of 100 credits used this period in Lumen."
    assert note.url == reverse("billing:workspace_limit_set", args=[w.org.slug, w.studio.slug])
    spend(w, 20)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert notes(w.admin)[-1] == "member@lumen.test's monthly limit in Studio is used up"
    assert notes(w.member) == []
    assert len(mailoutbox) == 4
    assert reconcile() == []


def test_a_workspace_monthly_limit_alerts_in_shared_mode_only(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.SHARED, grant=100_000)
    workspace_limit_set(workspace=w.studio, user=None, monthly_limit=500, actor=w.owner)
    spend(w, 400)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert notes(w.owner) == ["The monthly limit in Studio is 80% used"]

    # In budget mode the workspace's own balance is its limit: the workspace limit raises nothing.
    b = build(mode=CreditMode.BUDGET, grant=10_000, budget=10_000, name="Quartz")
    workspace_limit_set(workspace=b.studio, user=None, monthly_limit=500, actor=b.owner)
    spend(b, 450)
    assert evaluate(b, django_capture_on_commit_callbacks) == 0
    assert notes(b.owner) == []
    assert reconcile() == []


# --- thresholds -----------------------------------------------------------------------------------------------------


def test_custom_thresholds_of_the_organization(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    w.org.alert_thresholds = [50]
    w.org.save(update_fields=["alert_thresholds"])
    spend(w, 490)
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    spend(w, 10)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert notes(w.owner) == ["The budget of Studio is 50% used"]
    spend(w, 500)  # used up, but 100% is not one of this organization's thresholds
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert len(mailoutbox) == 2
    assert reconcile() == []


def test_thresholds_crossed_at_once_raise_one_alert_for_the_highest(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    w.org.alert_thresholds = [90, 50]
    w.org.save(update_fields=["alert_thresholds"])
    spend(w, 950)
    assert evaluate(w, django_capture_on_commit_callbacks) == 1
    assert notes(w.owner) == ["The budget of Studio is 90% used"]
    assert sorted(AlertState.objects.filter(organization=w.org).values_list("threshold", flat=True)) == [50, 90]
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert len(mailoutbox) == 2
    assert reconcile() == []


def test_no_thresholds_no_alerts(django_capture_on_commit_callbacks, mailoutbox):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    w.org.alert_thresholds = []
    w.org.save(update_fields=["alert_thresholds"])
    spend(w, 1_000)
    assert evaluate(w, django_capture_on_commit_callbacks) == 0
    assert mailoutbox == []
    assert reconcile() == []


# --- the bell and the notifications page ----------------------------------------------------------------------------


def test_the_bell_counts_unread_alerts_and_mark_all_read_clears_it(django_capture_on_commit_callbacks):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    owner = logged_in(w.owner)
    overview = reverse("workspaces:overview", args=[w.org.slug, w.primary.slug])
    assert bell_count(owner.get(overview).content.decode()) == 0

    spend(w, 850)
    evaluate(w, django_capture_on_commit_callbacks)
    spend(w, 150)
    evaluate(w, django_capture_on_commit_callbacks)

    for url in (overview, reverse("workspaces:list", args=[w.org.slug]), reverse("billing:page", args=[w.org.slug])):
        html = owner.get(url).content.decode()
        assert bell_count(html) == 2, url
        assert 'aria-label="Notifications (2 unread)"' in html
    member_page = logged_in(w.member).get(reverse("workspaces:overview", args=[w.org.slug, w.studio.slug]))
    assert bell_count(member_page.content.decode()) == 0

    notifications_url = reverse("orgs:notifications", args=[w.org.slug])
    page = owner.get(notifications_url).content.decode()
    assert "The budget of Studio is 80% used" in page
    assert "The budget of Studio is used up" in page
    assert page.count('class="notification-row unread"') == 2
    assert "Mark all as read" in page

    menu = owner.get(notifications_url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="notification-menu")
    assert menu.status_code == 200
    fragment = menu.content.decode()
    assert "<html" not in fragment
    assert fragment.count("notification unread") == 2
    assert "The budget of Studio is used up" in fragment

    response = owner.post(reverse("orgs:notifications_read", args=[w.org.slug]), follow=True)
    assert response.redirect_chain[-1][0] == notifications_url
    html = response.content.decode()
    assert "All notifications marked as read." in html
    assert bell_count(html) == 0
    assert 'class="bell-count is-zero"' in html
    assert "Mark all as read" not in html
    assert bell_count(owner.get(overview).content.decode()) == 0
    assert Notification.objects.filter(user=w.owner, read_at__isnull=True).count() == 0
    assert Notification.objects.filter(user=w.admin, read_at__isnull=True).count() == 2  # only the Owner's
    assert reconcile() == []


def test_notifications_of_another_organization_stay_there(django_capture_on_commit_callbacks):
    w = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000)
    other = make_organization(owner=w.owner, name="Elsewhere")
    spend(w, 900)
    evaluate(w, django_capture_on_commit_callbacks)
    other_primary = Workspace.objects.get(organization=other, is_primary=True)
    html = logged_in(w.owner).get(reverse("workspaces:overview", args=[other.slug, other_primary.slug]))
    assert bell_count(html.content.decode()) == 0
    page = logged_in(w.owner).get(reverse("orgs:notifications", args=[other.slug])).content.decode()
    assert "% used" not in page  # the alert's title ("… is 90% used"); "Studio" is also the name of a tab now
    assert Notification.objects.filter(organization=other).count() == 0


# --- the scheduled task ---------------------------------------------------------------------------------------------


def test_the_beat_task_evaluates_every_live_organization(django_capture_on_commit_callbacks, mailoutbox):
    assert settings.CELERY_BEAT_SCHEDULE["credit-alerts"]["task"] == "billing.tasks.alerts_evaluate_run"
    one = build(mode=CreditMode.BUDGET, grant=1_000, budget=1_000, name="Alpha")
    two = build(mode=CreditMode.SHARED, grant=1_000, name="Beta")
    gone = build(mode=CreditMode.SHARED, grant=1_000, name="Gamma")
    spend(one, 900)
    spend(two, 900)
    spend(gone, 900)
    gone.org.deleted_at = gone.org.created_at
    gone.org.save(update_fields=["deleted_at"])

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.alerts_evaluate_run() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.alerts_evaluate_run() == 0

    assert notes(one.owner) == ["The budget of Studio is 80% used"]
    assert notes(two.owner) == ["The shared credit pool is 80% used"]
    assert notes(gone.owner) == []
    assert sorted(m.to[0] for m in mailoutbox) == [
        "admin@alpha.test",
        "admin@beta.test",
        "owner@alpha.test",
        "owner@beta.test",
    ]
    assert reconcile() == []
