"""Two-factor sign-in in a real browser: set up an authenticator app, sign out, sign in with a code; an organization
that requires two-factor sign-in leads a member without it to set it up."""

from __future__ import annotations

import re
import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from playwright.sync_api import Browser, Page, expect

from orgs.models import Organization
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from workspaces.models import WorkspaceRole


def current_code(secret: str) -> str:
    """What an authenticator app shows now; waits for the next 30-second step if this one is about to end."""
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.2)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def confirm_password_if_asked(page: Page) -> None:
    if "/accounts/reauthenticate/" in page.url:
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Confirm").click()


def set_up_authenticator_app(page: Page, screenshot: Screenshot, label: str) -> str:
    """On the activation page (after the password check allauth asks for): scan the code, type the app's code."""
    confirm_password_if_asked(page)
    expect(page).to_have_url(re.compile(r"/accounts/2fa/totp/activate/"))
    secret = page.locator("#authenticator_secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    expect(page.locator("img.account-img")).to_be_visible()  # the QR code
    screenshot(page, f"{label}-activate")
    page.fill("#id_code", current_code(secret))
    page.get_by_role("button", name="Activate").click()
    expect(page.locator(".flash-stack")).to_contain_text("Authenticator app activated")
    return secret


def test_set_up_totp_sign_out_and_sign_in_with_a_code(live_server, browser: Browser, screenshot: Screenshot):
    base = live_server.url
    owner = UserFactory(email="owner@lantern.test")
    org = make_organization(owner=owner, name="Lantern Studio")
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    log_in(page, base, owner.email, PASSWORD)

    # Account settings → Two-factor sign-in → Activate.
    page.goto(f"{base}/accounts/email/")
    page.get_by_role("link", name="Two-factor sign-in").click()
    screenshot(page, "two-factor-index")
    page.get_by_role("link", name="Activate").click()
    secret = set_up_authenticator_app(page, screenshot, "owner")
    expect(page.locator("#recovery_codes")).to_be_visible()  # recovery codes are shown straight away
    screenshot(page, "recovery-codes")

    # Sign out; the password alone no longer signs in.
    page.get_by_role("button", name="Log out").first.click()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_login", owner.email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/"))
    screenshot(page, "code-asked")
    page.fill("#id_code", current_code(secret))
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(rf"/o/{org.slug}/"))

    # With two-factor on, the Owner can require it of every member.
    page.goto(f"{base}/o/{org.slug}/settings/")
    page.get_by_role("button", name="Require two-factor sign-in").click()
    expect(page.locator(".flash-success")).to_contain_text("Every member now needs two-factor sign-in")
    screenshot(page, "profile-requires-two-factor")
    assert Organization.objects.get(pk=org.pk).require_two_factor


def test_an_organization_that_requires_two_factor_leads_a_member_to_set_it_up(
    live_server, browser: Browser, screenshot: Screenshot
):
    base = live_server.url
    org = make_organization(name="Harbor Agency")
    campaign = make_workspace(org, name="Campaign")
    other = make_organization(name="Open Door")
    member = make_member(org, workspaces={campaign: WorkspaceRole.MEMBER}).user
    make_member(other, user=member)
    Organization.objects.filter(pk=org.pk).update(require_two_factor=True)

    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(page, base, member.email, PASSWORD)
    # Another organization that does not require it opens as before.
    page.goto(f"{base}/o/{other.slug}/workspaces/")
    expect(page.locator("main h1")).to_have_text("Workspaces")

    page.goto(f"{base}/o/{org.slug}/w/{campaign.slug}/")
    expect(page.locator(".flash-stack")).to_contain_text("Harbor Agency requires two-factor sign-in")
    screenshot(page, "led-to-set-up")
    set_up_authenticator_app(page, screenshot, "member")

    page.goto(f"{base}/o/{org.slug}/w/{campaign.slug}/")
    expect(page).to_have_url(re.compile(rf"/o/{org.slug}/w/{campaign.slug}/"))
    expect(page.locator("main h1")).to_contain_text("Campaign")
    screenshot(page, "member-in")
