"""Sessions in a real browser: a person signed in on two browsers sees both on the Sessions page, signs the other
one out, and that browser is back at the sign-in page on its next click; changing the password does the same."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization, make_workspace

PHONE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_signing_out_the_other_sessions_and_changing_the_password(
    live_server, browser: Browser, screenshot: Screenshot
):
    user = UserFactory(email="dana@sessions.test")
    organization = make_organization(owner=user, name="Sessions Co")
    make_workspace(organization, name="Launch")
    base = live_server.url

    laptop = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    phone = browser.new_context(viewport={"width": 390, "height": 800}, user_agent=PHONE_AGENT).new_page()
    log_in(laptop, base, user.email, PASSWORD)
    log_in(phone, base, user.email, PASSWORD)

    laptop.goto(f"{base}/accounts/sessions/")
    rows = laptop.locator(".sessions-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="This browser")).to_have_count(1)
    expect(rows.filter(has_text="iPhone")).to_have_count(1)  # the phone, as a person reads it
    screenshot(laptop, "two-sessions")

    laptop.get_by_role("button", name="Sign out the other sessions").click()
    expect(laptop.locator(".sessions-table tbody tr")).to_have_count(1)
    expect(laptop.get_by_role("button", name="Sign out the other sessions")).to_have_count(0)

    phone.goto(f"{base}/o/{organization.slug}/")
    expect(phone).to_have_url(re.compile(r"/accounts/login/"))
    screenshot(phone, "phone-signed-out")

    # Signed in on the phone again, then the password changes on the laptop: the phone is signed out once more.
    log_in(phone, base, user.email, PASSWORD)
    laptop.goto(f"{base}/accounts/password/change/")
    laptop.fill("#id_oldpassword", PASSWORD)
    laptop.fill("#id_password1", "a-new-long-passphrase-2026")
    laptop.fill("#id_password2", "a-new-long-passphrase-2026")
    laptop.get_by_role("button", name="Change Password").click()
    expect(laptop.locator(".flash-stack")).to_contain_text("Password successfully changed")
    laptop.goto(f"{base}/o/{organization.slug}/")
    expect(laptop).not_to_have_url(re.compile(r"/accounts/login/"))  # this browser stays signed in
    phone.goto(f"{base}/o/{organization.slug}/")
    expect(phone).to_have_url(re.compile(r"/accounts/login/"))
