"""Rate limits in a real browser: an Owner whose organization has sent its invitations for the hour is told so on the
invite form (how many are left and when to try again), and nothing is sent; the metering API answers a key that
went past its limit with a 429, Retry-After and the API's JSON error. Screenshots at 1366 px and 390 px."""

from __future__ import annotations

from django.core import mail
from playwright.sync_api import Browser, expect

from orgs.models import Invitation
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization, make_workspace
from usage.catalog import prices_ensure_defaults
from workspaces.services import api_key_create

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def test_invitations_and_api_calls_past_their_limits(live_server, browser: Browser, screenshot: Screenshot, settings):
    settings.INVITATIONS_PER_HOUR = 2
    settings.API_RATE_LIMIT = "2/m"
    prices_ensure_defaults()
    base = live_server.url
    owner = UserFactory(email="owner@limits.test")
    org = make_organization(owner=owner, name="Harbor Agency")
    make_workspace(org, name="Nike Launch")
    mail.outbox.clear()

    page = browser.new_context(viewport=DESKTOP).new_page()
    log_in(page, base, owner.email, PASSWORD)

    def invite(emails: str) -> None:
        page.goto(f"{base}/o/{org.slug}/members/")
        page.get_by_role("link", name="Invite people").click()
        page.fill("#id_emails", emails)
        page.get_by_label("Nike Launch").check()
        page.get_by_role("button", name="Send invitations").click()

    invite("nina@example.com, omar@example.com")
    expect(page.locator(".flash-success")).to_contain_text("Sent 2 invitations.")

    invite("pia@example.com")
    error = page.locator(".field.has-error p.error").filter(has_text="invitations an hour")
    expect(error.first).to_contain_text("Harbor Agency can send 2 invitations an hour and has 0 left now")
    expect(error.first).to_contain_text("try again in 60 minutes")
    expect(page.locator("#id_emails")).to_have_value("pia@example.com")  # what was typed is kept
    screenshot(page, "invite-refused-desktop")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    screenshot(page, "invite-refused-phone")
    assert Invitation.objects.filter(organization=org).count() == 2
    assert sorted(message.to[0] for message in mail.outbox) == ["nina@example.com", "omar@example.com"]

    # The metering API: the third call of the minute with the same key is refused.
    _, key = api_key_create(workspace=make_workspace(org, name="API"), actor=owner, name="Service")
    answers = [
        page.request.get(f"{base}/api/v1/workspace", headers={"Authorization": f"Bearer {key}"}) for _ in range(3)
    ]
    assert [answer.status for answer in answers] == [200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["ratelimit-remaining"] == "0"
