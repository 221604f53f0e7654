"""Credits in a real browser: the Owner switches to workspace budgets, moves 2,000 credits to a workspace through
the Manage credits dialog (live preview), buys a pack with the demo gateway, and is told by the bell when the
workspace's budget crosses 80%.

The live server runs in a thread of this process against the same committed database: what the test does through
services (grants, a member's charges, the alert job) is what the browser sees.
"""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from billing.alerts import alerts_evaluate
from billing.catalog import plans_ensure_defaults
from billing.ledger import charge
from billing.models import Account, Plan
from billing.reconcile import reconcile
from billing.services import credits_grant_by_staff
from orgs.models import CreditMode, Notification, Organization, User
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole


def _balance_cell(page: Page, workspace: str):
    # Name, then Balance (with the credit columns, the description sits under the name).
    return page.locator("tbody tr", has=page.get_by_role("link", name=workspace, exact=True)).locator("td").nth(1)


def _stat(page: Page, label: str):
    return page.locator(".stat-card", has=page.locator(".stat-label", has_text=label)).locator(".stat-value")


def test_owner_budgets_moves_buys_and_is_alerted(live_server, browser: Browser, screenshot: Screenshot, settings):
    settings.DEBUG = True  # the demo gateway is offered only in development
    plans_ensure_defaults()  # transactional tests start from an empty catalog
    base = live_server.url
    owner = UserFactory(email="owner@harbor.test")
    org = make_organization(owner=owner, name="Harbor Agency")
    nike = make_workspace(org, name="Nike Launch")
    make_workspace(org, name="Adidas Pitch")
    member = make_member(org, user=UserFactory(email="nina@harbor.test"), workspaces={nike: WorkspaceRole.MEMBER}).user
    primary = Workspace.objects.get(organization=org, is_primary=True)
    staff = User.objects.create_superuser("support@qolaba.test", "support-password-1")
    credits_grant_by_staff(organization=org, amount=10_000, actor=staff, reason="Launch allowance")

    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    log_in(page, base, owner.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/w/{primary.slug}/")
    expect(page.locator("#available-credits")).to_have_text("10,000")
    screenshot(page, "overview-shared-pool")

    # The Owner switches to workspace budgets on the credit mode page.
    page.goto(f"{base}/o/{org.slug}/workspaces/")
    expect(page.locator(".mode-bar")).to_contain_text("Shared pool")
    page.locator(".mode-bar").get_by_role("link", name="Change").click()
    expect(page.locator("main h1")).to_have_text("Credit mode")
    page.get_by_label("Workspace budgets").check()
    screenshot(page, "credit-mode-page")
    page.get_by_role("button", name="Switch credit mode").click()
    expect(page).to_have_url(f"{base}/o/{org.slug}/workspaces/")
    expect(page.locator(".flash-success")).to_contain_text("Credit mode is now: Workspace budgets.")
    expect(page.locator(".mode-bar")).to_contain_text("Workspace budgets")
    expect(_balance_cell(page, "Primary Workspace")).to_have_text("10,000")
    expect(_balance_cell(page, "Nike Launch")).to_have_text("0")
    screenshot(page, "workspaces-in-budget-mode")

    # Manage credits: the dialog opens over the table, the preview follows the typing.
    page.get_by_role("link", name="Manage credits").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-title")).to_have_text("Manage credits")
    dialog.locator("#id_source").select_option(str(primary.pk))
    dialog.locator("#id_target").select_option(str(nike.pk))
    dialog.locator("#id_amount").fill("2000")
    preview = dialog.locator("#transfer-preview")
    expect(preview).to_contain_text("After the transfer")
    expect(preview.locator("div", has_text="Primary Workspace").locator("dd")).to_have_text("8,000 credits")
    expect(preview.locator("div", has_text="Nike Launch").locator("dd")).to_have_text("2,000 credits")
    screenshot(page, "manage-credits-preview")

    # Too much is refused inline, before anything is sent.
    dialog.locator("#id_amount").fill("20000")
    expect(preview).to_contain_text("Primary Workspace has only 10,000 credits.")
    screenshot(page, "manage-credits-too-much")
    dialog.locator("#id_amount").fill("2000")
    expect(preview).to_contain_text("8,000 credits")

    dialog.get_by_role("button", name="Transfer").click()
    expect(page.locator(".flash-success")).to_contain_text("Moved 2,000 credits from Primary Workspace to Nike Launch.")
    expect(_balance_cell(page, "Primary Workspace")).to_have_text("8,000")
    expect(_balance_cell(page, "Nike Launch")).to_have_text("2,000")
    expect(_balance_cell(page, "Adidas Pitch")).to_have_text("0")
    screenshot(page, "balances-after-transfer")
    assert Account.objects.get(workspace=nike).balance == 2_000

    # Buy a pack with the demo gateway on the Billing page: the organization's credits grow.
    page.get_by_role("link", name="Billing").click()
    expect(page.locator("main h1")).to_have_text("Billing")
    expect(_stat(page, "Credits in the organization")).to_have_text("10,000")
    pack = Plan.objects.get(code="pack-5k")
    buy_form = page.locator("form", has=page.get_by_role("button", name="Buy credits"))
    buy_form.locator("select[name=plan]").select_option(str(pack.pk))
    expect(buy_form.locator("select[name=gateway]")).to_have_value("demo")
    screenshot(page, "billing-before-purchase")
    buy_form.get_by_role("button", name="Buy credits").click()
    expect(page.locator(".flash-success")).to_contain_text(
        "5,000 credits: 5,000 credits were added to the Primary Workspace."
    )
    expect(_stat(page, "Credits in the organization")).to_have_text("15,000")
    expect(page.locator("table").last).to_contain_text("Paid")
    screenshot(page, "billing-after-demo-purchase")
    page.goto(f"{base}/o/{org.slug}/workspaces/")
    expect(_balance_cell(page, "Primary Workspace")).to_have_text("13,000")

    # Nina spends 1,700 of Nike Launch's 2,000; the alert job runs; the Owner's bell lights up.
    organization = Organization.objects.get(pk=org.pk)
    assert organization.credit_mode == CreditMode.BUDGET
    for _ in range(17):
        charge(organization=organization, workspace=nike, user=member, amount=100)
    assert alerts_evaluate(organization=organization) == 1
    assert Notification.objects.filter(user=owner).count() == 1
    assert not Notification.objects.filter(user=member).exists()

    page.reload()
    expect(page.locator(".bell-count")).to_have_text("1")
    expect(_balance_cell(page, "Nike Launch")).to_have_text("300")
    page.locator(".bell-button").click()
    menu = page.locator("#notification-menu")
    expect(menu).to_contain_text("The budget of Nike Launch is 80% used")
    expect(menu).to_contain_text("1,700 of 2,000 credits used this period in Harbor Agency.")
    screenshot(page, "bell-with-budget-alert")

    menu.get_by_role("link", name="All notifications").click()
    expect(page.locator("main h1")).to_have_text("Notifications")
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.locator(".flash-success")).to_contain_text("All notifications marked as read.")
    expect(page.locator(".bell-count")).to_have_text("0")
    expect(page.locator(".notification-row")).to_have_count(1)
    screenshot(page, "notifications-read")
    assert reconcile() == []
