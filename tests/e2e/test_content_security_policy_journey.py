"""The Content-Security-Policy in a real browser: the Owner opens the Usage tab (Chart.js draws), a confirmation
dialog (htmx loads it into the <dialog>), chats in the Studio (htmx polls the reply), and the browser reports no
violation of the policy on any of them (every script a file of this origin, no inline style or handler, htmx
without eval or its injected <style>)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from billing.ledger import credits_grant
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization, make_workspace
from usage.catalog import prices_ensure_defaults
from usage.models import Price
from usage.services import usage_charge

# Every violation the page sees (the event fires for blocked scripts, styles, images, frames and eval alike).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI + " " + event.sourceFile + ":" +
    event.lineNumber);
});
"""


def _violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def test_pages_run_under_the_policy_without_violations(live_server, browser: Browser, screenshot: Screenshot):
    prices_ensure_defaults()
    base = live_server.url
    owner = UserFactory(email="owner@csp.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Strict Studio")
    research = make_workspace(org, name="Research")
    credits_grant(organization=org, amount=5_000, actor=None)
    usage_charge(
        workspace=research,
        user=owner,
        price=Price.objects.get(tool="chat", model="gpt-4o"),
        units=2,
        idempotency_key="csp-journey",
    )

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))
    seen: list[str] = []

    def check(step: str) -> None:
        violations = _violations(page)
        seen.extend(f"{step}: {violation}" for violation in violations)

    log_in(page, base, owner.email, PASSWORD)
    policy = page.request.get(f"{base}/o/{org.slug}/usage/").headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]

    # The Usage tab: Chart.js draws its chart.
    page.goto(f"{base}/o/{org.slug}/usage/")
    expect(page.locator("[data-chart-box] canvas")).to_be_visible()
    page.wait_for_function("() => !!Chart.getChart(document.getElementById('usage-chart-canvas'))")
    page.select_option("#usage-range", "30d")  # htmx swaps the figures and the chart is drawn again
    expect(page).to_have_url(re.compile(r"range=30d"))
    page.wait_for_function("() => !!Chart.getChart(document.getElementById('usage-chart-canvas'))")
    check("usage")
    screenshot(page, "usage-chart")

    # A dialog: htmx loads the confirmation into the <dialog> and app.js opens it.
    page.goto(f"{base}/o/{org.slug}/w/{research.slug}/settings/")
    page.get_by_role("link", name="Delete workspace").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-title")).to_contain_text("Research")
    check("dialog")
    screenshot(page, "delete-workspace-dialog")
    page.keyboard.press("Escape")

    # The Studio: the price follows the message, the reply arrives by htmx polling.
    page.goto(f"{base}/o/{org.slug}/w/{research.slug}/studio/")
    page.fill("#id_prompt", "Three names for a tea shop")
    page.select_option("#id_price", "gpt-4o")
    expect(page.locator("#chat-price")).to_contain_text("gpt-4o,")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/studio/chat/\d+/"))
    expect(page.locator(".chat-reply").last).to_contain_text("Three names for a tea shop")
    check("studio")
    screenshot(page, "studio-chat")

    # The account's two-factor page (allauth's templates under the same policy).
    page.goto(f"{base}/accounts/2fa/")
    expect(page.locator("main")).to_be_visible()
    check("two-factor")

    blocked = [line for line in console if "Content Security Policy" in line or line.startswith("page error")]
    assert not seen, "\n".join(seen)
    assert not blocked, "\n".join(blocked)
    context.close()
