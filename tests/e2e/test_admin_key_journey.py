"""Organization admin keys in a real browser: an Admin creates one on the Profile tab (the secret shown once), a
finance tool reads the organization's usage with it, the Admin revokes it through the dialog and the next read is
refused; a Member gets the 404 page for the Profile tab. Screenshots at laptop (1366 px) and phone (390 px) widths.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from orgs.models import OrganizationRole
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from workspaces.models import WorkspaceRole

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
REPORT = "/api/v1/organization/usage?start=2026-01-01&end=2026-01-31&group_by=workspace"


def test_admin_creates_uses_and_revokes_an_admin_key(live_server, browser: Browser, screenshot: Screenshot):
    base = live_server.url
    owner = UserFactory(email="owner@harbor.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Harbor Agency")
    studio = make_workspace(org, name="Studio")
    admin = make_member(org, role=OrganizationRole.ADMIN, user=UserFactory(email="ada@harbor.test")).user
    member = make_member(org, workspaces={studio: WorkspaceRole.ADMIN}, user=UserFactory(email="max@harbor.test"))

    page = browser.new_context(viewport=DESKTOP).new_page()
    log_in(page, base, admin.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/settings/")
    section = page.locator("#admin-keys")
    expect(section).to_contain_text("No active admin key")
    section.get_by_role("button", name="Create admin key").click()  # no name: the error comes back in the section
    expect(page.locator("#admin-keys .error")).to_have_text("This field is required.")
    page.locator("#admin-keys").get_by_label("Key name").fill("Finance dashboard")
    page.locator("#admin-keys").get_by_role("button", name="Create admin key").click()
    expect(page.locator(".secret-box")).to_contain_text("you won't see it again")
    expect(page.locator("#new-admin-key")).to_have_text(re.compile(r"^qlbadm_[0-9a-f]{8}_\S{30,}$"))
    secret = page.locator("#new-admin-key").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "profile-admin-key-created-desktop")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(500)  # the sidebar slides out of view at phone width
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    expect(page.locator("#admin-keys tbody tr").first.get_by_role("link", name="Revoke")).to_be_visible()
    screenshot(page, "profile-admin-key-created-phone")
    page.set_viewport_size(DESKTOP)

    # A finance tool reads the organization's usage with it.
    report = page.request.get(f"{base}{REPORT}", headers={"Authorization": f"Bearer {secret}"})
    assert report.status == 200
    assert report.json()["organization"] == org.slug
    page.reload()
    expect(page.locator(".secret-box")).to_have_count(0)
    assert secret not in page.content()

    # Revoking asks first; the key stops working at once.
    page.locator("#admin-keys tbody tr", has_text="Finance dashboard").get_by_role("link", name="Revoke").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog.locator(".confirm-title")).to_have_text("Revoke the admin key “Finance dashboard”?")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(page.locator(".flash-success")).to_contain_text("was revoked")
    expect(page.locator("#admin-keys")).to_contain_text("Revoked keys (1)")
    refused = page.request.get(f"{base}{REPORT}", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    page.context.close()

    # A Member (even a workspace admin) never reaches the Profile tab.
    member_page = browser.new_context(viewport=DESKTOP).new_page()
    log_in(member_page, base, member.user.email, PASSWORD)
    response = member_page.goto(f"{base}/o/{org.slug}/settings/")
    assert response is not None
    assert response.status == 404
    member_page.context.close()
