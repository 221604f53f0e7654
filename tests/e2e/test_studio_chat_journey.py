"""The Studio's Chat in a real browser.

1. The demo (tasks run in the request): a member opens Chat in her workspace, sees the estimated price follow the
   message, sends it, sees the demo model's reply in the thread and the balance drop by the price shown; the thread
   is in History; a viewer sees the Studio read-only with the reason. Without JavaScript the form still sends.
2. Production's path: a real Celery worker streams the reply from an OpenAI-compatible server on loopback; the member
   sees the estimate before sending, the reply appear word by word, the turn's final charge (below the estimate:
   the hold is captured at the provider's tokens) and the balance drop by exactly that charge without a reload;
   a stop mid-stream (on a phone) charges only what was written; a viewer sees it read-only with the reason.

Screenshots at 1366 px and 390 px in test-artifacts/e2e/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from billing.ledger import credits_grant
from qolaba.tools import Tool
from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_member, make_organization, make_workspace
from tests.test_celery_worker import celery_worker_process  # noqa: F401 (a fixture: the real worker)
from tests.usage.studio.fake_openai import FakeOpenAI
from usage.catalog import prices_ensure_defaults
from usage.models import Price, Provider
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


# --- The production path: a real Celery worker streams from an OpenAI-compatible server ----------------------------

# Long enough that the estimate holds 2 units (~250 tokens of message + the longest reply asked for, 800), while
# the fake server reports 300 + 40 tokens: 1 unit. The balance must drop by what was captured, not what was held.
LONG_PROMPT = "Plan the launch of our spring skincare line for the Nordic markets. " * 15
STREAM_WORDS = 40


@pytest.fixture
def streaming_provider() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible server that streams 40 words over about 5 s."""
    server = FakeOpenAI().start()
    server.behaviour.tokens = [f"word{i} " for i in range(STREAM_WORDS)]
    server.behaviour.token_delay = 0.12
    server.behaviour.prompt_tokens, server.behaviour.completion_tokens = 300, STREAM_WORDS
    yield server
    server.stop()


@pytest.fixture
def worker_extra_env(streaming_provider: FakeOpenAI) -> dict[str, str]:
    """The worker (tests/test_celery_worker.py's `celery_worker_process`) talks to the fake server."""
    return {
        "STUDIO_OPENAI_BASE_URL": streaming_provider.base_url,
        "STUDIO_OPENAI_API_KEY": "sk-e2e",
        "STUDIO_OPENAI_MAX_RETRIES": "0",
        "STUDIO_OPENAI_TIMEOUT": "10",
        "CELERY_STUDIO_QUEUE": "",
    }


def _balance(page: Page) -> int:
    return _credits(page.locator("#studio-balance").inner_text())


def _charged(turn: Locator) -> int:
    return int(turn.locator(".chat-charged").get_attribute("data-credits") or "")


@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker_process")
def test_chat_streams_through_a_worker_charges_what_was_captured_and_stops(
    live_server, browser: Browser, screenshot: Screenshot
):
    prices_ensure_defaults()
    Price.objects.filter(tool=Tool.CHAT, model="gpt-4o").update(
        provider=Provider.OPENAI_COMPATIBLE, provider_model="fake-large"
    )
    base = live_server.url
    owner = UserFactory(email="owner@nordlys.test", name="Olivia Owner")
    org = make_organization(owner=owner, name="Nordlys")
    research = make_workspace(org, name="Research")
    member = make_member(
        org, user=UserFactory(email="mia@nordlys.test", name="Mia Member"), workspaces={research: WorkspaceRole.MEMBER}
    ).user
    viewer = make_member(
        org, user=UserFactory(email="vic@nordlys.test", name="Vic Viewer"), workspaces={research: WorkspaceRole.VIEWER}
    ).user
    credits_grant(organization=org, amount=500, actor=None)
    studio_url = f"{base}/o/{org.slug}/w/{research.slug}/studio/"

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, base, member.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/w/{research.slug}/")
    page.get_by_role("link", name="Studio").first.click()
    expect(page).to_have_url(studio_url)
    before = _balance(page)
    assert before == 500

    # The estimate is shown before sending: the hold's size.
    page.select_option("#id_price", "gpt-4o")
    page.fill("#id_prompt", LONG_PROMPT)
    price = page.locator("#chat-price")
    expect(price).to_contain_text("up to 10 credits")
    estimate = int(re.search(r"up to (\d+) credit", price.inner_text()).group(1))
    screenshot(page, "desktop-estimate-before-sending")

    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/studio/chat/\d+/"))
    turn = page.locator(".chat-turn").last
    reply = turn.locator(".chat-reply")
    # Progressive: part of the reply is on the page while the turn is still being written (the worker writes it
    # into the turn, htmx polls it); the hold is what the balance shows meanwhile.
    expect(reply).to_contain_text("word0", timeout=10_000)
    expect(turn).to_have_attribute("data-status", "streaming")
    partial = reply.inner_text()
    assert f"word{STREAM_WORDS - 1}" not in partial
    expect(turn.locator(".chat-meta")).to_contain_text(f"{estimate} credits held")
    expect(turn.locator(".chat-stop")).to_be_visible()
    screenshot(page, "desktop-reply-streaming")
    expect(reply).to_contain_text(f"word{STREAM_WORDS - 1}", timeout=15_000)
    assert len(reply.inner_text()) > len(partial)
    expect(turn).to_have_attribute("data-status", "done")

    # Captured at the provider's tokens (340: 1 unit), not at the estimate; the page's balance follows without a
    # reload and drops by exactly the charge the turn shows.
    charged = _charged(turn)
    assert charged == 5 < estimate
    expect(turn.locator(".chat-meta")).to_contain_text(f"Charged {charged} credits")
    expect(turn.locator(".chat-meta")).to_contain_text(f"{estimate} were held; the rest went back")
    expect(page.locator("#studio-balance")).to_have_text(str(before - charged))
    # The next message is priced with this turn in its context (the composer re-prices when a turn finishes).
    expect(page.locator("#chat-price")).to_contain_text("up to 10 credits")
    screenshot(page, "desktop-reply-charged")
    page.reload()
    assert _balance(page) == before - charged
    context.close()

    # Stop mid-stream, on a phone: only what was written is charged.
    phone = browser.new_context(viewport=PHONE)
    page = phone.new_page()
    log_in(page, base, member.email, PASSWORD)
    page.goto(studio_url)
    page.locator(".thread-link").first.click()
    before = _balance(page)
    expect(page.locator("#id_price")).to_have_value("gpt-4o")  # the thread's model, not the first of the list
    page.fill("#id_prompt", "Now the same for the Baltic markets")
    held = int(re.search(r"up to (\d+) credit", page.locator("#chat-price").inner_text()).group(1))
    page.get_by_role("button", name="Send").click()
    turn = page.locator(".chat-turn").last
    reply = turn.locator(".chat-reply")
    expect(reply).to_contain_text("word2", timeout=10_000)
    expect(turn.locator(".chat-stop")).to_be_in_viewport()  # the send lands on the turn, not the top of the page
    _no_horizontal_scroll(page)
    screenshot(page, "phone-reply-streaming")
    turn.locator(".chat-stop").click()
    turn = page.locator(".chat-turn").last
    expect(turn).to_have_attribute("data-status", "stopped", timeout=10_000)
    stopped_reply = turn.locator(".chat-reply").inner_text()
    assert "word2" in stopped_reply
    assert f"word{STREAM_WORDS - 1}" not in stopped_reply
    charged = _charged(turn)
    assert 0 < charged <= held
    expect(turn.locator(".chat-meta")).to_contain_text("for what was written")
    assert _balance(page) == before - charged
    _no_horizontal_scroll(page)
    screenshot(page, "phone-stopped")
    phone.close()

    # A viewer: read-only, with the reason, on a phone too.
    viewer_context = browser.new_context(viewport=PHONE)
    page = viewer_context.new_page()
    log_in(page, base, viewer.email, PASSWORD)
    page.goto(studio_url)
    expect(page.locator(".studio-readonly")).to_contain_text("your role (viewer) cannot run its tools")
    page.locator(".thread-link").first.click()
    expect(page.locator(".chat-turn")).to_have_count(2)
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    expect(page.locator(".chat-stop")).to_have_count(0)
    _no_horizontal_scroll(page)
    screenshot(page, "phone-viewer-read-only")
    viewer_context.close()
