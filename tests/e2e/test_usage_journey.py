"""The Usage tab in a real browser: the Owner opens Usage, changes the period and the granularity, filters to one
workspace and sees the chart and tables follow (the URL too), and the back button brings each earlier view back; a
Member sees only their own usage. Screenshots at laptop (1366 px) and phone (390 px) widths.

The events are charged now and moved back in time (their created_at), so the periods hold known figures whatever the
date the test runs on.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils.timezone import now
from playwright.sync_api import Browser, Page, expect

from billing import ledger
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from usage.catalog import prices_ensure_defaults
from usage.models import Price, UsageEvent
from usage.services import usage_charge
from workspaces.models import WorkspaceRole

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _charge(workspace, user, tool: str, model: str, units: int, days_ago: int) -> None:
    event = usage_charge(
        workspace=workspace,
        user=user,
        price=Price.objects.get(tool=tool, model=model),
        units=units,
        idempotency_key=f"{model}-{days_ago}-{user.pk}",
    ).event
    UsageEvent.objects.filter(pk=event.pk).update(created_at=now() - timedelta(days=days_ago))


def _total(page: Page):
    return page.locator('[data-total="total"] .stat-value')


def _rows(page: Page, breakdown: str):
    return page.locator(f"#breakdown-{breakdown} tbody tr")


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1


def test_owner_explores_usage_and_a_member_sees_only_their_own(live_server, browser: Browser, screenshot: Screenshot):
    prices_ensure_defaults()  # transactional tests start from an empty catalog
    base = live_server.url
    owner = UserFactory(email="owner@harbor.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Harbor Agency")  # UTC
    atlas = make_workspace(org, name="Atlas Launch")
    borealis = make_workspace(org, name="Borealis Pitch")
    mia = UserFactory(email="mia@harbor.test", name="Mia Maker")
    noah = UserFactory(email="noah@harbor.test", name="Noah Nightly")
    make_member(org, user=mia, workspaces={atlas: WorkspaceRole.MEMBER})
    make_member(org, user=noah, workspaces={borealis: WorkspaceRole.MEMBER})
    ledger.credits_grant(organization=org, amount=10_000, actor=owner)
    _charge(atlas, mia, "chat", "gpt-4o", 2, days_ago=2)  # 10
    _charge(atlas, mia, "image", "flux-pro", 1, days_ago=20)  # 12
    _charge(borealis, noah, "video", "kling-1.6", 3, days_ago=3)  # 60
    _charge(borealis, noah, "chat", "gpt-4o-mini", 7, days_ago=12)  # 7
    usage_url = f"{base}/o/{org.slug}/usage/"

    page = browser.new_context(viewport=DESKTOP).new_page()
    log_in(page, base, owner.email, PASSWORD)
    page.get_by_role("link", name="Usage").click()
    expect(page).to_have_url(usage_url)
    expect(page.locator("main h1")).to_have_text("Usage")
    expect(page.locator("[data-chart-box] canvas")).to_be_visible()  # Chart.js drew the chart
    expect(page.locator("details[data-chart-table]")).not_to_have_attribute("open", "")
    screenshot(page, "owner-this-month")

    # The period: the last 30 days hold all four charges.
    page.select_option("#usage-range", "30d")
    expect(page).to_have_url(re.compile(r"[?&]range=30d"))
    expect(_total(page)).to_contain_text("89")
    expect(_rows(page, "workspace")).to_have_count(2)
    expect(page.locator(".usage-series-table tbody tr")).to_have_count(30)  # every day, empty ones included

    # The granularity: weeks.
    page.select_option("#usage-granularity", "week")
    expect(page).to_have_url(re.compile(r"granularity=week"))
    expect(page.locator("#usage-chart-title")).to_contain_text("Credits by week")
    expect(page.locator(".usage-series-table tbody th").first).to_contain_text("Week of")
    screenshot(page, "owner-30-days-by-week")

    # One workspace: the figures, the chart's table and the breakdowns follow.
    page.select_option("#usage-workspace", str(atlas.pk))
    expect(page).to_have_url(re.compile(rf"workspace={atlas.pk}"))
    expect(_total(page)).to_contain_text("22")
    expect(_rows(page, "workspace")).to_have_count(1)
    expect(_rows(page, "member")).to_have_count(1)
    expect(page.locator("#breakdown-member")).to_contain_text("Mia Maker")
    expect(page.locator("#breakdown-member")).not_to_contain_text("Noah Nightly")
    expect(page.locator(".usage-series-table tfoot")).to_contain_text("22")
    expect(page.locator(".filter-chips")).to_contain_text("Atlas Launch")
    export = page.get_by_role("link", name="Export CSV")  # beside the filters, for exactly this view
    exported = rf"export\.csv\?range=30d&granularity=week&workspace={atlas.pk}"
    expect(export).to_have_attribute("href", re.compile(exported))
    screenshot(page, "owner-filtered-to-atlas")

    # The chart by tool, then a table row: each is a URL of its own.
    page.get_by_role("link", name="By tool", exact=True).click()
    expect(page).to_have_url(re.compile(r"chart=tool"))
    expect(page.locator(".usage-series-table thead")).to_contain_text("Image")
    page.locator("#breakdown-tool").get_by_role("link", name="Image").click()
    expect(page).to_have_url(re.compile(r"tool=image"))
    expect(_total(page)).to_contain_text("12")

    # Back, back, back: each earlier view returns, filters and figures included.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"tool=image"))
    expect(_total(page)).to_contain_text("22")
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"chart=tool"))
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"workspace="))
    expect(_total(page)).to_contain_text("89")
    expect(page.locator("#usage-workspace")).to_have_value("")
    expect(_rows(page, "workspace")).to_have_count(2)
    expect(page.locator("[data-chart-box] canvas")).to_be_visible()
    page.wait_for_function("() => !!Chart.getChart(document.getElementById('usage-chart-canvas'))")  # drawn again
    screenshot(page, "owner-back-to-all-workspaces")

    # A shared link opens the same view in a fresh page.
    page.goto(f"{usage_url}?range=7d&granularity=hour&workspace={borealis.pk}")
    expect(_total(page)).to_contain_text("60")
    expect(page.locator("#usage-granularity")).to_have_value("hour")

    # Typing dates makes the period custom; the other choices (Borealis, hours) stay.
    first, last = (now() - timedelta(days=13)).date(), (now() - timedelta(days=11)).date()
    page.fill("#usage-start", first.isoformat())
    page.fill("#usage-end", last.isoformat())
    expect(page).to_have_url(re.compile(rf"range=custom&start={first.isoformat()}&end={last.isoformat()}"))
    expect(page.locator("#usage-range")).to_have_value("custom")
    expect(_total(page)).to_contain_text("7")  # Noah's chat in Borealis, 12 days ago
    expect(page.locator(".notice")).to_have_count(0)

    # A Member: their own usage only, no member filter, nobody else's name.
    member_page = browser.new_context(viewport=PHONE).new_page()
    log_in(member_page, base, mia.email, PASSWORD)
    member_page.goto(f"{usage_url}?range=30d")
    expect(_total(member_page)).to_contain_text("22")
    expect(member_page.locator("#usage-member")).to_have_count(0)
    expect(member_page.locator("#breakdown-member")).to_have_count(0)
    expect(member_page.locator("main")).not_to_contain_text("Noah Nightly")
    expect(member_page.locator("main")).not_to_contain_text("Borealis Pitch")
    _no_horizontal_scroll(member_page)
    screenshot(member_page, "member-phone")
