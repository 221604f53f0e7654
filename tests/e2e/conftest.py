"""Browser journeys: Playwright driving Debian's Chromium against pytest-django's live server.

No browser is downloaded: the launch arguments point Playwright at /usr/bin/chromium (see STACK.md).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

# Playwright's sync API runs an event loop in the test thread; without this pytest-django's database
# set-up (and the ORM calls the tests make) raise SynchronousOnlyOperation.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = Path(settings.BASE_DIR) / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

Screenshot = Callable[[Page, str], Path]


def log_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the real login form and wait until the app has taken us in."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign In").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's defaults (--headed, --slowmo, ...) plus Debian's Chromium."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item of the session, not only this directory's: filter by path.
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", text).strip("-")


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """`screenshot(page, "step")` saves test-artifacts/e2e/<test-name>/NN-step.png (numbered in order)."""
    folder = ARTIFACTS_DIR / _slug(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    counter = iter(range(1, 1000))

    def take(page: Page, step: str) -> Path:
        path = folder / f"{next(counter):02d}-{_slug(step)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
