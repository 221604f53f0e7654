"""The foundation journey in a real browser: sign up, create an organization, switch workspace and organization.

The live server runs in a thread of this process against the same (committed, `transactional_db`) database,
so what the test creates through services is what the browser sees.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, ViewportSize, expect

from orgs.models import Organization, User
from qolaba.lifecycle import workspace_create
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization
from workspaces.models import Workspace

SIGNUP_PASSWORD = "violet-otter-harbour-42"


def _log_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    log_in(page, base_url, email, password)


def _overview_url(base_url: str, workspace: Workspace) -> str:
    return f"{base_url}/o/{workspace.organization.slug}/w/{workspace.slug}/"


def _expect_on_workspace(page: Page, base_url: str, workspace: Workspace) -> None:
    expect(page).to_have_url(_overview_url(base_url, workspace))
    expect(page.locator(".switcher-current")).to_have_text(workspace.name)
    expect(page.locator("main h1")).to_contain_text(workspace.name)
    expect(page.locator(".sidebar-org-name")).to_have_text(workspace.organization.name)


def test_sign_up_create_organization_and_switch(live_server, page: Page, screenshot: Screenshot):
    base = live_server.url
    email = "ada@example.com"

    # Sign up: a brand-new user has no organization and is offered to create one.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_email", email)
    page.fill("#id_password1", SIGNUP_PASSWORD)
    page.fill("#id_password2", SIGNUP_PASSWORD)
    screenshot(page, "signup-form")
    page.get_by_role("button", name="Sign Up").click()
    expect(page).to_have_url(f"{base}/orgs/new/")
    expect(page.locator("main h1")).to_have_text("Create your organization")
    screenshot(page, "offered-to-create-organization")

    # Create the organization: it opens on its Primary Workspace with a welcome flash.
    page.fill("#id_name", "Acme Studio")
    page.select_option("#id_timezone", "Europe/Berlin")
    page.get_by_role("button", name="Create organization").click()
    acme = Organization.objects.get(name="Acme Studio")
    primary = acme.workspaces.get(is_primary=True)
    _expect_on_workspace(page, base, primary)
    expect(page.locator(".flash-success")).to_contain_text("Acme Studio is ready. This is its Primary Workspace.")
    expect(page.locator(".details-list")).to_contain_text("Europe/Berlin")
    user = User.objects.get(email=email)
    assert acme.created_by == user
    screenshot(page, "primary-workspace-overview")

    # A second workspace (created by a service for now; no UI yet), then switch to it with the switcher.
    clients = workspace_create(organization=acme, name="Client Work", created_by=user)
    page.reload()
    page.locator(".switcher-button").click()
    menu = page.locator("#workspace-menu")
    expect(menu.locator(".menu-list")).to_be_visible()  # the htmx fragment replaced the fallback link
    expect(menu.locator(".menu-item-text")).to_have_text(["Primary Workspace", "Client Work"])
    expect(menu.locator(".menu-item.current")).to_contain_text("Primary Workspace")
    screenshot(page, "workspace-switcher-open")
    menu.get_by_role("link", name=re.compile("Client Work")).click()
    _expect_on_workspace(page, base, clients)
    screenshot(page, "switched-to-client-work")

    # A second organization, created from the profile menu.
    page.locator(".avatar-button").click()
    page.get_by_role("link", name="+ New organization").click()
    expect(page).to_have_url(f"{base}/orgs/new/")
    expect(page.locator("main h1")).to_have_text("Create another organization")
    page.fill("#id_name", "Zenith Labs")
    screenshot(page, "create-second-organization")
    page.get_by_role("button", name="Create organization").click()
    zenith = Organization.objects.get(name="Zenith Labs")
    _expect_on_workspace(page, base, zenith.workspaces.get(is_primary=True))
    screenshot(page, "second-organization-overview")

    # Switch back through the profile menu: Acme opens on the workspace last used there, not its Primary.
    page.locator(".avatar-button").click()
    org_menu = page.locator("#organization-menu")
    expect(org_menu.locator(".menu-item-text")).to_have_text(["Acme Studio", "Zenith Labs"])
    expect(org_menu.locator(".menu-item.current")).to_contain_text("Zenith Labs")
    screenshot(page, "organization-menu-open")
    org_menu.locator(".menu-item").first.click()
    _expect_on_workspace(page, base, clients)
    page.locator(".switcher-button").click()
    expect(page.locator("#workspace-menu .menu-item.current")).to_contain_text("Client Work")
    screenshot(page, "back-in-first-organization")
    page.keyboard.press("Escape")

    # And the other way round: Zenith reopens on its own remembered workspace.
    page.locator(".avatar-button").click()
    page.locator("#organization-menu").get_by_role("link", name=re.compile("Zenith Labs")).click()
    _expect_on_workspace(page, base, zenith.workspaces.get(is_primary=True))


def test_switching_works_without_javascript(live_server, browser: Browser, screenshot: Screenshot):
    base = live_server.url
    user = UserFactory(email="nojs@example.com")
    acme = make_organization(owner=user, name="Acme Studio")
    primary = acme.workspaces.get(is_primary=True)
    design = workspace_create(organization=acme, name="Design", created_by=user)
    zenith = make_organization(owner=user, name="Zenith Labs")

    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        _log_in(page, base, user.email)
        # Home opens the first organization by name on its Primary Workspace.
        _expect_on_workspace(page, base, primary)
        screenshot(page, "overview-without-js")

        # The switcher is a plain <details>: it opens natively and offers the fallback link.
        page.locator(".switcher-button").click()
        expect(page.locator("details.switcher")).to_have_attribute("open", "")
        fallback = page.locator("#workspace-menu").get_by_role("link", name="All workspaces…")
        expect(fallback).to_be_visible()
        screenshot(page, "switcher-fallback-link")
        fallback.click()
        expect(page).to_have_url(f"{base}/o/{acme.slug}/workspaces/")
        expect(page.locator("main h1")).to_have_text("Workspaces")
        screenshot(page, "workspace-list-page")
        page.locator("table").get_by_role("link", name="Design", exact=True).click()
        _expect_on_workspace(page, base, design)
        screenshot(page, "switched-to-design")

        # The profile menu falls back to the organization list page.
        page.locator(".avatar-button").click()
        page.locator("#organization-menu").get_by_role("link", name="Switch organization…").click()
        expect(page).to_have_url(f"{base}/orgs/")
        screenshot(page, "organization-list-page")
        page.locator(".choice-list").get_by_role("link", name=re.compile("Zenith Labs")).click()
        _expect_on_workspace(page, base, zenith.workspaces.get(is_primary=True))
        page.goto(f"{base}/orgs/")
        page.locator(".choice-list").get_by_role("link", name=re.compile("Acme Studio")).click()
        _expect_on_workspace(page, base, design)  # remembered per organization
        screenshot(page, "back-in-acme-on-design")
    finally:
        context.close()


def test_phone_layout_hides_the_sidebar_behind_a_toggle(live_server, browser: Browser, screenshot: Screenshot):
    base = live_server.url
    viewport: ViewportSize = {"width": 390, "height": 800}
    user = UserFactory(email="phone@example.com")
    acme = make_organization(owner=user, name="Acme Studio")
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        _log_in(page, base, user.email)
        _expect_on_workspace(page, base, acme.workspaces.get(is_primary=True))
        sidebar = page.locator("#sidebar")
        toggle = page.locator("[data-nav-toggle]")
        expect(toggle).to_be_visible()
        expect(sidebar).not_to_be_in_viewport()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        # Nothing overflows sideways on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, "phone-overview")

        toggle.click()
        expect(sidebar).to_have_class(re.compile(r"\bopen\b"))
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(sidebar).to_be_in_viewport(ratio=1)
        expect(sidebar.locator(".switcher-current")).to_be_visible()
        screenshot(page, "phone-sidebar-open")
    finally:
        context.close()


# --- Layout details found while looking at the screenshots ---


def test_desktop_layout_has_no_menu_toggle(live_server, page: Page):
    user = UserFactory(email="desk@example.com")
    acme = make_organization(owner=user, name="Acme Studio")
    page.set_viewport_size({"width": 1280, "height": 720})
    _log_in(page, live_server.url, user.email)
    _expect_on_workspace(page, live_server.url, acme.workspaces.get(is_primary=True))
    # The panel spans the whole page; what it holds (the navigation) is on screen, not behind a menu button.
    expect(page.locator("#sidebar .sidebar-inner")).to_be_in_viewport(ratio=1)
    expect(page.locator("[data-nav-toggle]")).to_be_hidden(timeout=1000)


def test_phone_sidebar_closes_on_escape_and_outside_click(live_server, browser: Browser):
    user = UserFactory(email="stuck@example.com")
    make_organization(owner=user, name="Acme Studio")
    context = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        page = context.new_page()
        _log_in(page, live_server.url, user.email)
        sidebar = page.locator("#sidebar")
        toggle = page.locator("[data-nav-toggle]")
        toggle.click()
        expect(sidebar).to_have_class(re.compile(r"\bopen\b"))
        page.keyboard.press("Escape")
        expect(sidebar).not_to_have_class(re.compile(r"\bopen\b"), timeout=1000)
        toggle.click()
        expect(sidebar).to_have_class(re.compile(r"\bopen\b"))
        page.mouse.click(370, 400)  # on the page, beside the sidebar
        expect(sidebar).not_to_have_class(re.compile(r"\bopen\b"), timeout=1000)
        expect(toggle).to_have_attribute("aria-expanded", "false")
    finally:
        context.close()


TABS = ["Overview", "Studio", "History", "Members", "Workspaces", "Usage", "Billing", "Audit", "Profile"]


def test_every_tab_is_reachable_on_a_phone_without_javascript(live_server, browser: Browser, screenshot: Screenshot):
    """The menu button was a JavaScript-only toggle: without JavaScript a phone could not reach any other tab."""
    user = UserFactory(email="phone-nojs@example.com")
    make_organization(owner=user, name="Acme Studio")
    context = browser.new_context(viewport={"width": 390, "height": 800}, java_script_enabled=False)
    try:
        page = context.new_page()
        _log_in(page, live_server.url, user.email)
        sidebar = page.locator("#sidebar")
        expect(sidebar).not_to_be_in_viewport()
        for tab in TABS:
            page.locator("[data-nav-toggle]").click()
            expect(sidebar).to_be_in_viewport(ratio=1)
            sidebar.locator(".side-nav").get_by_role("link", name=tab, exact=True).click()
            expect(page.locator(".side-nav [aria-current='page']")).to_have_text(re.compile(tab))
            expect(sidebar).not_to_be_in_viewport()  # the new page opens with the menu closed
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            screenshot(page, f"phone-nojs-{tab}")
        # The close link shuts the menu without JavaScript too.
        page.locator("[data-nav-toggle]").click()
        expect(sidebar).to_be_in_viewport(ratio=1)
        sidebar.locator("[data-nav-close]").click()
        expect(sidebar).not_to_be_in_viewport()
    finally:
        context.close()
