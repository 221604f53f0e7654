"""The Studio's Chat in a real browser: a member opens Chat in her workspace, sees the estimated price follow the
message, sends it, sees the demo model's reply in the thread and the balance drop by the price shown; the thread is
in History; a viewer sees the Studio read-only with the reason. Screenshots at 1366 px and 390 px, and without
JavaScript (the form still sends, the price is the server's)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from billing.ledger import credits_grant
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from usage.catalog import prices_ensure_defaults
from workspaces.models import WorkspaceRole

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _credits(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1


def test_member_chats_and_viewer_reads(live_server, browser: Browser, screenshot: Screenshot):
    prices_ensure_defaults()
    base = live_server.url
    owner = UserFactory(email="owner@lumen.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Lumen Studio")
    research = make_workspace(org, name="Research")
    member = make_member(
        org, user=UserFactory(email="mia@lumen.test", name="Mia Member"), workspaces={research: WorkspaceRole.MEMBER}
    ).user
    viewer = make_member(
        org, user=UserFactory(email="vic@lumen.test", name="Vic Viewer"), workspaces={research: WorkspaceRole.VIEWER}
    ).user
    credits_grant(organization=org, amount=500, actor=None)
    studio_url = f"{base}/o/{org.slug}/w/{research.slug}/studio/"

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, base, member.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/w/{research.slug}/")
    page.get_by_role("link", name="Studio").first.click()
    expect(page).to_have_url(studio_url)
    expect(page.get_by_role("heading", name="Studio")).to_be_visible()
    before = _credits(page.locator("#studio-balance").inner_text())

    page.select_option("#id_price", "gpt-4o")
    page.fill("#id_prompt", "Plan the launch of our spring skincare line")
    price = page.locator("#chat-price")
    expect(price).to_contain_text("up to 5 credits")
    expect(price).to_contain_text("gpt-4o")
    screenshot(page, "desktop-price-before-sending")
    shown = int(re.search(r"up to (\d+) credit", price.inner_text()).group(1))

    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/studio/chat/\d+/"))
    reply = page.locator(".chat-reply").last
    expect(reply).to_contain_text("Plan the launch of our spring skincare line")
    expect(page.locator(".chat-demo").last).to_have_text("Demo output")
    expect(page.locator(".chat-meta").last).to_contain_text(f"{shown} credit")
    after = _credits(page.locator("#studio-balance").inner_text())
    assert before - after == shown
    expect(page.locator(".thread-link.active")).to_contain_text("Plan the launch")
    screenshot(page, "desktop-reply")

    # The follow-up carries the thread.
    page.fill("#id_prompt", "Make it shorter")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".chat-turn")).to_have_count(2)

    page.goto(f"{base}/o/{org.slug}/w/{research.slug}/history/")
    page.locator(".history-link").first.click()
    expect(page.get_by_role("link", name="Open the chat thread in the Studio")).to_be_visible()
    page.get_by_role("link", name="Open the chat thread in the Studio").click()
    expect(page.locator(".chat-turn")).to_have_count(2)

    page.set_viewport_size(PHONE)
    page.reload()
    _no_horizontal_scroll(page)
    screenshot(page, "phone-thread")
    context.close()

    # Without JavaScript: the same form sends; the reply is there after the redirect.
    nojs = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = nojs.new_page()
    log_in(page, base, member.email, PASSWORD)
    page.goto(studio_url)
    page.fill("#id_prompt", "A list of three blog ideas")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".chat-reply").last).to_contain_text("A list of three blog ideas")
    _no_horizontal_scroll(page)
    screenshot(page, "phone-nojs-reply")
    nojs.close()

    viewer_context = browser.new_context(viewport=DESKTOP)
    page = viewer_context.new_page()
    log_in(page, base, viewer.email, PASSWORD)
    page.goto(studio_url)
    expect(page.locator(".studio-readonly")).to_contain_text("cannot run its tools")
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    page.locator(".thread-link").first.click()
    expect(page.locator(".chat-turn").first).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    screenshot(page, "desktop-viewer-read-only")
    viewer_context.close()
