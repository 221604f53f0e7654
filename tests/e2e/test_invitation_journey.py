"""Inviting people in a real browser: the emailed link, email-matched acceptance, scoped access, promotion."""

from __future__ import annotations

import re

from django.core import mail
from playwright.sync_api import Browser, Page, expect

from orgs.models import Invitation, InvitationStatus, Membership, OrganizationRole
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization, make_workspace

INVITEE_PASSWORD = "amber-falcon-river-77"


def _log_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    log_in(page, base_url, email, password)


def _invitation_link(base_url: str, email: str) -> str:
    message = next(m for m in mail.outbox if m.to == [email])
    match = re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", message.body)
    assert match, message.body
    return base_url + match.group(1)


def test_owner_invites_and_the_invitee_joins_only_their_workspace(
    live_server, browser: Browser, screenshot: Screenshot
):
    base = live_server.url
    owner = UserFactory(email="owner@harbor.test")
    org = make_organization(owner=owner, name="Harbor Agency")
    campaign = make_workspace(org, name="Nike Launch")
    secret = make_workspace(org, name="Secret Audit")
    mail.outbox.clear()

    # The Owner invites two addresses as Members of one workspace.
    owner_page = browser.new_context().new_page()
    _log_in(owner_page, base, owner.email)
    owner_page.goto(f"{base}/o/{org.slug}/members/")
    owner_page.get_by_role("link", name="Invite people").click()
    owner_page.fill("#id_emails", "nina@example.com,\nomar@example.com")
    owner_page.select_option("#id_role", str(OrganizationRole.MEMBER.value))
    owner_page.get_by_label("Nike Launch").check()
    screenshot(owner_page, "invite-form")
    owner_page.get_by_role("button", name="Send invitations").click()
    expect(owner_page.locator(".flash-success")).to_contain_text("Sent 2 invitations.")
    expect(owner_page.locator("#members-table")).to_contain_text("nina@example.com")
    expect(owner_page.locator("#members-table .status-pending")).to_have_count(2)
    screenshot(owner_page, "members-with-pending-invitations")
    assert sorted(m.to[0] for m in mail.outbox) == ["nina@example.com", "omar@example.com"]

    # Nina opens her emailed link and signs up with exactly the invited address.
    nina_page = browser.new_context().new_page()
    nina_page.goto(_invitation_link(base, "nina@example.com"))
    expect(nina_page.locator("main h1")).to_have_text("Join Harbor Agency")
    screenshot(nina_page, "invitation-page-anonymous")
    nina_page.get_by_role("link", name="Sign up as nina@example.com").click()
    expect(nina_page.locator("#id_email")).to_have_value("nina@example.com")
    nina_page.fill("#id_password1", INVITEE_PASSWORD)
    nina_page.fill("#id_password2", INVITEE_PASSWORD)
    nina_page.get_by_role("button", name="Sign Up").click()
    expect(nina_page).to_have_url(re.compile(r"/invitations/"))
    nina_page.get_by_role("button", name="Accept invitation").click()

    # She lands in the one workspace she was given and sees nothing else.
    expect(nina_page).to_have_url(f"{base}/o/{org.slug}/w/{campaign.slug}/")
    expect(nina_page.locator(".flash-success")).to_contain_text("Welcome to Harbor Agency")
    expect(nina_page.locator(".side-nav")).not_to_contain_text("Members")
    nina_page.locator(".switcher-button").click()
    expect(nina_page.locator("#workspace-menu .menu-item-text")).to_have_text(["Nike Launch"])
    screenshot(nina_page, "invitee-in-her-workspace")
    response = nina_page.goto(f"{base}/o/{org.slug}/w/{secret.slug}/")
    assert response is not None
    assert response.status == 404
    expect(nina_page.locator("main h1")).to_have_text("This page doesn't exist")
    screenshot(nina_page, "other-workspace-is-404")
    response = nina_page.goto(f"{base}/o/{org.slug}/members/")
    assert response is not None
    assert response.status == 404

    # The Owner promotes her to Admin; she now has the Members tab.
    nina = Membership.objects.get(organization=org, user__email="nina@example.com")
    owner_page.goto(f"{base}/o/{org.slug}/members/")
    owner_page.locator("tr", has_text="nina@example.com").get_by_role("link", name="Manage").click()
    owner_page.select_option("#id_role", str(OrganizationRole.ADMIN.value))
    owner_page.get_by_role("button", name="Save role").click()
    expect(owner_page.locator(".flash-success")).to_contain_text("nina@example.com is now Admin.")
    screenshot(owner_page, "promoted-to-admin")
    nina.refresh_from_db()
    assert nina.role == OrganizationRole.ADMIN

    nina_page.goto(f"{base}/o/{org.slug}/w/{campaign.slug}/")
    nina_page.get_by_role("link", name="Members").click()
    expect(nina_page).to_have_url(f"{base}/o/{org.slug}/members/")
    expect(nina_page.locator("#members-table")).to_contain_text("owner@harbor.test")
    screenshot(nina_page, "admin-sees-members-tab")

    # Someone signed in with another address cannot use Omar's invitation; nothing changes.
    mallory = UserFactory(email="mallory@example.com")
    mallory_page = browser.new_context().new_page()
    _log_in(mallory_page, base, mallory.email)
    mallory_page.goto(_invitation_link(base, "omar@example.com"))
    expect(mallory_page.locator(".form-errors")).to_contain_text(
        "This invitation is for omar@example.com, but you are signed in as mallory@example.com."
    )
    expect(mallory_page.get_by_role("button", name="Accept invitation")).to_have_count(0)
    screenshot(mallory_page, "wrong-email-refused")
    assert Invitation.objects.get(email="omar@example.com").status == InvitationStatus.PENDING
    assert not Membership.objects.filter(organization=org, user=mallory).exists()
