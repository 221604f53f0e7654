"""History in a real browser: a member opens her workspace's History, filters it to images, opens the image item and
sees the picture actually load (streamed through the permission check), deletes a chat item through the dialog; a
member of another workspace of the same organization gets the 404 page for the same URL; the Owner creates an API
key in the workspace settings and sees its secret once. Screenshots at laptop (1366 px) and phone (390 px) widths.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils.timezone import now
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, expect

from qolaba.demo.assets import demo_wav
from qolaba.tools import Tool
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from workspaces.models import HistoryItem, WorkspaceRole
from workspaces.services import api_key_create, history_item_create

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _png(width: int = 640, height: int = 400) -> bytes:
    image = Image.new("RGB", (width, height), (24, 30, 70))
    draw = ImageDraw.Draw(image)
    for y in range(height):  # a dusk sky
        draw.line([(0, y), (width, y)], fill=(40 + y // 3, 40 + y // 6, 120 - y // 8))
    draw.rectangle([300, 150, 340, 400], fill=(220, 40, 50))  # a red lighthouse
    draw.polygon([(290, 150), (350, 150), (320, 110)], fill=(240, 240, 240))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _image_loaded(page: Page, selector: str) -> int:
    image = page.locator(selector).first
    expect(image).to_be_visible()
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }", arg=selector
    )
    return int(image.evaluate("i => i.naturalWidth"))


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1


def test_member_filters_opens_an_image_and_others_get_404(
    live_server, browser: Browser, screenshot: Screenshot, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    base = live_server.url
    owner = UserFactory(email="owner@harbor.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Harbor Agency")
    nike = make_workspace(org, name="Nike Launch")
    adidas = make_workspace(org, name="Adidas Pitch")
    nina = make_member(
        org, user=UserFactory(email="nina@harbor.test", name="Nina Costa"), workspaces={nike: WorkspaceRole.MEMBER}
    ).user
    omar = make_member(
        org, user=UserFactory(email="omar@harbor.test", name="Omar Said"), workspaces={adidas: WorkspaceRole.MEMBER}
    ).user

    start = now() - timedelta(days=3)
    history_item_create(
        workspace=nike,
        author=nina,
        tool=Tool.CHAT,
        model="gpt-4o",
        credits=3,
        prompt="Write three taglines for the spring running shoe launch.",
        output_text="1. Run into spring.\n2. Lighter every mile.\n3. Made for mornings.",
        created_at=start,
    )
    image_item = history_item_create(
        workspace=nike,
        author=nina,
        tool=Tool.IMAGE,
        model="flux-pro",
        credits=40,
        prompt="A red lighthouse at dusk, product-photo lighting, 16:10",
        metadata={"size": "640x400", "seed": 1234, "steps": 28},
        media=ContentFile(_png(), name="lighthouse.png"),
        media_content_type="image/png",
        created_at=start + timedelta(hours=5),
    )
    history_item_create(
        workspace=nike,
        author=owner,
        tool=Tool.VIDEO,
        model="veo-3",
        credits=250,
        prompt="Six-second drone shot over sea cliffs at sunrise",
        created_at=start + timedelta(days=1),
    )
    chat_to_delete = history_item_create(
        workspace=nike,
        author=nina,
        tool=Tool.CHAT,
        model="gpt-4o-mini",
        credits=1,
        prompt="Draft a short email to the client about the shoot schedule",
        output_text="Hi team,\nThe shoot moves to Thursday.",
        created_at=start + timedelta(days=2),
    )
    history_item_create(
        workspace=adidas,
        author=omar,
        tool=Tool.IMAGE,
        model="flux-pro",
        credits=40,
        prompt="Adidas secret concept",
        created_at=start,
    )
    tune_item = history_item_create(
        workspace=nike,
        author=owner,
        tool=Tool.MUSIC,
        model="stable-audio",
        credits=20,
        prompt="A calm piano loop for the launch video",
        metadata={"duration_s": 2},
        media=ContentFile(demo_wav("calm piano", seconds=2), name="loop.wav"),
        media_content_type="audio/wav",
        created_at=start - timedelta(days=1),
    )
    api_key_create(workspace=nike, actor=owner, name="Image generation service")

    history_url = f"{base}/o/{org.slug}/w/{nike.slug}/history/"
    item_url = f"{history_url}{image_item.pk}/"

    # Nina opens History from the sidebar: her workspace's five items, newest first, nothing of Adidas Pitch.
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, base, nina.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/w/{nike.slug}/")
    page.locator(".side-nav").get_by_role("link", name="History").click()
    expect(page).to_have_url(history_url)
    expect(page.locator("main h1")).to_have_text("History")
    expect(page.locator(".side-link.active")).to_have_text("History")
    rows = page.locator("#history-results tbody tr.history-row")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("Draft a short email")
    expect(page.locator("#history-results")).not_to_contain_text("Adidas secret")
    assert _image_loaded(page, ".history-thumb") == 640
    screenshot(page, "history-list-desktop")

    # Filter to images: htmx swaps the results in place and pushes the URL.
    page.locator("#id_tool").select_option("image")
    expect(page).to_have_url(re.compile(r"[?&]tool=image"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("A red lighthouse at dusk")
    expect(rows.first.locator(".tool-badge")).to_have_text("Image")
    screenshot(page, "history-filtered-to-images")

    # Open the image item: the picture loads through the permission-checked media URL.
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(item_url)
    expect(page.locator(".side-link.active")).to_have_text("History")
    expect(page.locator("main h1")).to_contain_text("flux-pro")
    assert _image_loaded(page, "img.history-image") == 640
    expect(page.locator(".history-metadata")).to_contain_text("Seed")
    expect(page.locator(".history-metadata")).to_contain_text("1234")
    expect(page.get_by_role("link", name="Download the image file")).to_be_visible()
    expect(page.get_by_role("link", name="Delete")).to_be_visible()  # she is the author
    screenshot(page, "history-image-item-desktop")

    # On a page longer than the window, the navigation panel's background spans the whole page, not one screen.
    page.set_viewport_size({"width": 1366, "height": 420})
    heights = page.evaluate(
        "() => [document.getElementById('sidebar').getBoundingClientRect().height,"
        " document.documentElement.scrollHeight, window.innerHeight]"
    )
    assert heights[1] > heights[2], heights  # the page is longer than the window
    assert heights[0] >= heights[1] - 1, heights
    screenshot(page, "history-image-item-short-window")
    page.mouse.wheel(0, 2000)
    expect(page.locator(".side-nav")).to_be_in_viewport()  # and the navigation stays in view while scrolling
    page.set_viewport_size(DESKTOP)

    # A music item plays in the page.
    page.goto(f"{history_url}{tune_item.pk}/")
    page.wait_for_function(
        "() => { const a = document.querySelector('audio.history-audio'); return a && a.readyState >= 1; }"
    )
    assert page.evaluate("document.querySelector('audio.history-audio').duration") > 1.5
    screenshot(page, "history-music-item-desktop")

    # She deletes her chat item through the confirmation dialog.
    page.goto(f"{history_url}{chat_to_delete.pk}/")
    expect(page.locator(".history-text").last).to_contain_text("The shoot moves to Thursday.")
    page.get_by_role("link", name="Delete").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".confirm-title")).to_have_text("Delete this history item?")
    screenshot(page, "history-delete-dialog")
    dialog.get_by_role("button", name="Delete item").click()
    expect(page).to_have_url(history_url)
    expect(page.locator(".flash-success")).to_contain_text("History item deleted")
    expect(rows).to_have_count(4)
    assert HistoryItem.objects.get(pk=chat_to_delete.pk).deleted_at is not None

    # On a phone: the list and the item stay usable without sideways scrolling of the page.
    phone = browser.new_context(viewport=PHONE).new_page()
    log_in(phone, base, nina.email, PASSWORD)
    phone.goto(history_url)
    expect(phone.locator("#history-results tbody tr.history-row")).to_have_count(4)
    _no_horizontal_scroll(phone)
    screenshot(phone, "history-list-phone")
    phone.goto(item_url)
    assert _image_loaded(phone, "img.history-image") == 640
    _no_horizontal_scroll(phone)
    screenshot(phone, "history-image-item-phone")
    phone.context.close()
    context.close()

    # Omar, a member of another workspace of the same organization, gets the 404 page for the same URLs.
    omar_page = browser.new_context(viewport=DESKTOP).new_page()
    log_in(omar_page, base, omar.email, PASSWORD)
    response = omar_page.goto(item_url)
    assert response is not None
    assert response.status == 404
    expect(omar_page.locator("h1")).to_have_text("This page doesn't exist")
    screenshot(omar_page, "other-workspace-member-gets-404")
    for url in (f"{item_url}media/", history_url, f"{base}/o/{org.slug}/w/{adidas.slug}/history/{image_item.pk}/"):
        response = omar_page.goto(url)
        assert response is not None
        assert response.status == 404, url
    omar_page.context.close()

    # The Owner creates an API key in the workspace settings: the secret is shown once, with a copy button.
    owner_page = browser.new_context(viewport=DESKTOP).new_page()
    log_in(owner_page, base, owner.email, PASSWORD)
    owner_page.goto(f"{base}/o/{org.slug}/w/{nike.slug}/settings/")
    section = owner_page.locator("#api-keys")
    expect(section.locator("tbody tr")).to_have_count(1)
    expect(section).to_contain_text("Image generation service")
    expect(section).to_contain_text("Never")
    section.get_by_role("button", name="Create key").click()  # no name: the error comes back in the section
    expect(owner_page.locator("#api-keys .error")).to_have_text("This field is required.")
    owner_page.locator("#api-keys").get_by_label("Key name").fill("Video renderer")
    owner_page.locator("#api-keys").get_by_role("button", name="Create key").click()
    secret_box = owner_page.locator(".secret-box")
    expect(secret_box).to_contain_text("you won't see it again")
    expect(owner_page.locator("#new-api-key")).to_have_text(re.compile(r"^qlb_[0-9a-f]{8}_\S{30,}$"))
    expect(secret_box.get_by_role("button", name="Copy")).to_be_visible()
    expect(owner_page.locator("#api-keys tbody tr")).to_have_count(2)
    owner_page.evaluate("window.scrollTo(0, 0)")  # full-page screenshots of a scrolled page repeat the sticky bar
    screenshot(owner_page, "settings-api-key-created-desktop")
    secret = owner_page.locator("#new-api-key").inner_text()
    owner_page.set_viewport_size(PHONE)
    owner_page.wait_for_timeout(500)  # the sidebar slides out of view (a .2s transition) at phone width
    _no_horizontal_scroll(owner_page)
    screenshot(owner_page, "settings-api-key-created-phone")
    owner_page.reload()  # a plain reload is a GET: the secret is gone
    expect(owner_page.locator(".secret-box")).to_have_count(0)
    assert secret not in owner_page.content()
    owner_page.set_viewport_size(DESKTOP)

    # Revoking asks first, then moves the key to the collapsed list of revoked keys.
    old_row = owner_page.locator("#api-keys tbody tr", has_text="Image generation service")
    old_row.get_by_role("link", name="Revoke").click()
    dialog = owner_page.locator("dialog#dialog")
    expect(dialog.locator(".confirm-title")).to_have_text("Revoke the API key “Image generation service”?")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(owner_page.locator(".flash-success")).to_contain_text("was revoked")
    expect(owner_page.locator("#api-keys > .table-wrap tbody tr")).to_have_count(1)
    owner_page.locator(".revoked-keys > summary").click()
    expect(owner_page.locator(".revoked-keys")).to_contain_text("Image generation service")
    owner_page.evaluate("window.scrollTo(0, 0)")
    screenshot(owner_page, "settings-api-keys-with-revoked-desktop")
    owner_page.context.close()
