"""Changing plan in a real browser: the Owner on Teams opens "Switch to Pro…", reads in the dialog what happens
(and what the downgrade loses), cancels (nothing changed), then confirms with the demo gateway; without
JavaScript the same confirmation is a page of its own."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from billing.catalog import plans_ensure_defaults
from billing.models import Invoice, Plan, Subscription
from billing.services import invoice_mark_paid, plan_subscribe
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization


def test_owner_switches_plan_only_after_confirming(live_server, browser: Browser, screenshot: Screenshot, settings):
    settings.DEBUG = True  # the demo gateway is offered only in development
    plans_ensure_defaults()
    base = live_server.url
    owner = UserFactory(email="owner@lantern.test")
    org = make_organization(owner=owner, name="Lantern Studio")
    teams, pro = Plan.objects.get(code="teams"), Plan.objects.get(code="pro")
    invoice_mark_paid(
        invoice=plan_subscribe(organization=org, plan=teams, actor=owner, gateway_code="manual"), actor=None
    )

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    log_in(page, base, owner.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/billing/")
    current = page.locator(".plan-card.plan-current")
    expect(current).to_have_count(1)
    expect(current).to_contain_text("Teams")
    expect(current).to_contain_text("Current plan")
    screenshot(page, "plans")

    page.get_by_role("link", name="Switch to Pro…").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-title")).to_have_text("Switch from Teams to Pro?")
    expect(dialog).to_contain_text("No proration")
    expect(dialog).to_contain_text("40,000 fewer credits")
    screenshot(page, "confirmation")
    dialog.get_by_role("link", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Invoice.objects.filter(organization=org).count() == 1

    page.get_by_role("link", name="Switch to Pro…").click()
    dialog.locator("#id_gateway").select_option("demo")
    dialog.get_by_role("button", name="Switch to Pro").click()
    expect(page.locator(".flash-success")).to_contain_text("10,000 credits were added")
    expect(page.locator(".plan-card.plan-current")).to_contain_text("Pro")
    assert Subscription.objects.get(organization=org).plan == pro
    screenshot(page, "switched")
    context.close()

    # Without JavaScript: the link opens the confirmation as a page.
    nojs = browser.new_context(viewport={"width": 390, "height": 900}, java_script_enabled=False)
    page = nojs.new_page()
    log_in(page, base, owner.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/billing/")
    page.get_by_role("link", name="Switch to Teams…").click()
    expect(page).to_have_url(f"{base}/o/{org.slug}/billing/plan/?plan={teams.pk}")
    expect(page.locator("h1")).to_have_text("Change plan")
    expect(page.locator(".confirm-title")).to_have_text("Switch from Pro to Teams?")
    screenshot(page, "confirmation-without-javascript")
    nojs.close()
