"""The usage columns in a real browser: the Owner sorts the Members and Workspaces tables by their Total column
and changes the period; htmx replaces only the table (the page stays), the URL follows, and the sort survives the
change of period (the filter form carries it through an input the table holds)."""

from __future__ import annotations

from datetime import timedelta

from django.utils.timezone import now
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from usage.models import UsageEvent, UsageStatus
from workspaces.models import WorkspaceRole


def test_owner_sorts_and_changes_the_period_in_place(live_server, browser: Browser, screenshot: Screenshot):
    base = live_server.url
    owner = UserFactory(email="owner@harbor.test")
    org = make_organization(owner=owner, name="Harbor Agency")
    nike = make_workspace(org, name="Nike Launch")
    adidas = make_workspace(org, name="Adidas Pitch")
    nina = make_member(org, user=UserFactory(email="nina@harbor.test"), workspaces={nike: WorkspaceRole.MEMBER}).user
    omar = make_member(org, user=UserFactory(email="omar@harbor.test"), workspaces={adidas: WorkspaceRole.MEMBER}).user
    month_start = now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for index, (workspace, user, tool, credits, at) in enumerate(
        [
            (nike, nina, "chat", 1_234, now()),
            (adidas, omar, "image", 4_321, now()),
            (nike, nina, "video", 7_777, month_start - timedelta(days=3)),  # last month
        ]
    ):
        UsageEvent.objects.create(
            organization_id=org.pk, workspace=workspace, user=user, tool=tool, model="m", units=1, credits=credits,
            status=UsageStatus.CAPTURED, idempotency_key=f"e2e-{index}", ledger_transaction_id=1, created_at=at,
        )  # fmt: skip

    page = browser.new_context(viewport={"width": 1366, "height": 860}).new_page()
    log_in(page, base, owner.email, PASSWORD)
    for path, table, first, last_month_first in (
        (f"/o/{org.slug}/members/", "#members-table", "omar@harbor.test", "nina@harbor.test"),
        (f"/o/{org.slug}/workspaces/", "#workspaces-table", "Adidas Pitch", "Nike Launch"),
    ):
        page.goto(base + path)
        page.evaluate("window.samePage = true")
        page.locator(f"{table} th").get_by_role("link", name="Total").click()
        expect(page).to_have_url(f"{base}{path}?sort=-total")
        expect(page.locator(f"{table} th[aria-sort=descending]")).to_contain_text("Total")
        expect(page.locator(f"{table} tbody tr").first).to_contain_text(first)
        page.locator("select[name=period]").select_option("last_month")
        expect(page.locator(f"{table} .usage-note")).to_contain_text("last month")
        expect(page).to_have_url(
            f"{base}{path}?" + ("q=&status=&" if "members" in path else "") + "period=last_month&sort=-total"
        )
        expect(page.locator(f"{table} tbody tr").first).to_contain_text(last_month_first)
        expect(page.locator(f"{table} tfoot")).to_contain_text("7,777")
        assert page.evaluate("window.samePage") is True  # htmx swapped the table; the page was not reloaded
        screenshot(page, f"{table[1:]}-last-month-by-total")
