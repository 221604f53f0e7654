"""The Studio's media tools in a real browser: a member generates images (the price shown before, the balance down
by it after) and finds them in History; starts a video, watches its progress, cancels it and sees the credits back;
a viewer sees the Studio read-only with the reason. Without JavaScript the same forms run and a running job has a
Refresh link. Screenshots at 1366 px and 390 px, as Owner, Member and Viewer.

The price list's own `demo` provider runs everything (offline: Pillow pictures, espeak-ng speech, a PyAV video),
paced by `STUDIO_DEMO_DELAY` so that a 4-second video takes about 10 s; long jobs run in a thread of the live server
as they do in the demo without a broker (`STUDIO_EAGER_LONG_JOBS_IN_THREAD`)."""

from __future__ import annotations

import re

import pytest
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


def _balance(page: Page) -> int:
    return _credits(page.locator("#studio-balance").inner_text())


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1


@pytest.fixture
def slow_demo(settings) -> None:
    settings.STUDIO_EAGER_LONG_JOBS_IN_THREAD = True
    settings.STUDIO_DEMO_DELAY = 0.1  # 25 steps a second of video or music: 2.5 s each


def test_member_generates_cancels_and_viewer_reads(live_server, browser: Browser, screenshot: Screenshot, slow_demo):
    prices_ensure_defaults()
    base = live_server.url
    owner = UserFactory(email="owner@prism.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Prism Studio")
    design = make_workspace(org, name="Design")
    member = make_member(
        org, user=UserFactory(email="mia@prism.test", name="Mia Member"), workspaces={design: WorkspaceRole.MEMBER}
    ).user
    viewer = make_member(
        org, user=UserFactory(email="vic@prism.test", name="Vic Viewer"), workspaces={design: WorkspaceRole.VIEWER}
    ).user
    credits_grant(organization=org, amount=1000, actor=None)
    studio_url = f"{base}/o/{org.slug}/w/{design.slug}/studio/"

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, base, member.email, PASSWORD)
    page.goto(studio_url)
    page.get_by_role("navigation", name="Studio tools").get_by_role("link", name="Image").click()
    expect(page).to_have_url(f"{studio_url}image/")
    before = _balance(page)

    # The price follows the options before anything runs.
    page.fill("#id_prompt", "A paper lantern over a quiet lake")
    page.select_option("#id_price", "flux-schnell")
    price = page.locator("#media-price")
    expect(price).to_contain_text("4 credits")
    page.select_option("#id_count", "2")
    expect(price).to_contain_text("8 credits")
    page.select_option("#id_size", "1536x1024")
    expect(price).to_contain_text("16 credits")
    page.select_option("#id_size", "1024x1024")
    expect(price).to_contain_text("8 credits")
    screenshot(page, "member-desktop-image-price")
    page.get_by_role("button", name="Generate").click()

    job = page.locator(".studio-job").first
    expect(job.locator(".studio-image-grid img")).to_have_count(2)
    expect(job).to_contain_text("8 credits")
    assert before - _balance(page) == 8
    # The pictures load (served through the permission-checked view).
    page.wait_for_function(
        "() => [...document.querySelectorAll('.studio-image-grid img')].every(i => i.naturalWidth > 0)"
    )
    screenshot(page, "member-desktop-images")

    job.get_by_role("link", name="In History").click()
    expect(page.get_by_role("heading", name=re.compile("Image"))).to_be_visible()
    expect(page.locator("img[src*='/media/']")).to_be_visible()
    page.goto(f"{base}/o/{org.slug}/w/{design.slug}/history/")
    expect(page.locator(".history-link").first).to_be_visible()
    screenshot(page, "member-desktop-history")

    # A long job: progress, then Cancel gives the held credits back.
    page.goto(f"{studio_url}video/")
    before = _balance(page)
    page.fill("#id_prompt", "Waves rolling onto a beach")
    page.select_option("#id_price", "kling-1.6")
    page.select_option("#id_seconds", "4")
    expect(page.locator("#media-price")).to_contain_text("80 credits")
    page.get_by_role("button", name="Generate").click()
    live = page.locator(".studio-job-live").first
    expect(live.locator(".studio-progress-bar")).to_have_attribute("value", re.compile(r"^[1-9]\d?$"), timeout=10_000)
    progress = int(live.locator(".studio-progress-bar").get_attribute("value") or 0)
    expect(live.locator(".studio-progress-bar")).not_to_have_attribute("value", str(progress), timeout=5_000)
    assert before - _balance(page) == 80  # held while it runs
    screenshot(page, "member-desktop-video-progress")
    live.get_by_role("button", name="Cancel").click()
    cancelled = page.locator(".studio-job").first
    expect(cancelled).to_have_attribute("data-status", "cancelled", timeout=10_000)
    expect(cancelled).to_contain_text("Nothing was charged")
    page.reload()
    assert _balance(page) == before
    screenshot(page, "member-desktop-video-cancelled")

    page.set_viewport_size(PHONE)
    page.goto(f"{studio_url}image/")
    _no_horizontal_scroll(page)
    screenshot(page, "member-phone-images")
    context.close()

    # Without JavaScript: the form runs, the price updates with a button, a running job has a Refresh link.
    nojs = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = nojs.new_page()
    log_in(page, base, member.email, PASSWORD)
    page.goto(f"{studio_url}speech/")
    page.fill("#id_prompt", "Welcome to the spring launch.")
    page.get_by_role("button", name="Update the price").click()
    expect(page.locator("#media-price")).to_contain_text("8 credits")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".studio-job audio").first).to_be_attached()
    expect(page.locator(".studio-demo").first).to_have_text("Demo output")
    _no_horizontal_scroll(page)
    screenshot(page, "member-phone-nojs-speech")
    page.goto(f"{studio_url}music/")
    page.fill("#id_prompt", "A calm piano loop")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".studio-job-live").first.get_by_role("link", name="Refresh")).to_be_visible()
    screenshot(page, "member-phone-nojs-music-running")
    page.locator(".studio-job-live").first.get_by_role("button", name="Cancel").click()
    # Without JavaScript: Refresh opens the job's page, which reloads itself until the job is finished.
    page.locator(".studio-job").first.get_by_role("link", name="Refresh").click()
    expect(page.locator(".studio-job").first).to_have_attribute("data-status", "cancelled", timeout=15_000)
    expect(page.locator(".studio-job").first).to_contain_text("Nothing was charged")
    screenshot(page, "member-phone-nojs-music-cancelled")
    nojs.close()

    viewer_context = browser.new_context(viewport=DESKTOP)
    page = viewer_context.new_page()
    log_in(page, base, viewer.email, PASSWORD)
    page.goto(f"{studio_url}image/")
    expect(page.locator(".studio-readonly")).to_contain_text("cannot run its tools")
    expect(page.get_by_role("button", name="Generate")).to_have_count(0)
    expect(page.locator(".studio-image-grid img")).to_have_count(2)
    screenshot(page, "viewer-desktop-image-read-only")
    page.set_viewport_size(PHONE)
    page.goto(f"{studio_url}video/")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    _no_horizontal_scroll(page)
    screenshot(page, "viewer-phone-video-read-only")
    viewer_context.close()

    owner_context = browser.new_context(viewport=DESKTOP)
    page = owner_context.new_page()
    log_in(page, base, owner.email, PASSWORD)
    page.goto(f"{studio_url}music/")
    expect(page.get_by_role("button", name="Generate")).to_be_visible()
    screenshot(page, "owner-desktop-music")
    # A video that runs to its end: it plays in place.
    page.goto(f"{studio_url}video/")
    page.fill("#id_prompt", "A paper boat on a stream")
    page.select_option("#id_seconds", "2")
    page.get_by_role("button", name="Generate").click()
    done = page.locator(".studio-job").first
    expect(done).to_have_attribute("data-status", "done", timeout=30_000)
    expect(done.locator("video")).to_be_attached()
    page.wait_for_function("() => document.querySelector('.studio-job video').readyState >= 1", timeout=10_000)
    screenshot(page, "owner-desktop-video-done")
    page.set_viewport_size(PHONE)
    page.reload()
    _no_horizontal_scroll(page)
    screenshot(page, "owner-phone-video")
    owner_context.close()
