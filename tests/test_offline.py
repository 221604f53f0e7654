"""The app works offline: no page loads a script, stylesheet, font or image from another host (no CDN)."""

from __future__ import annotations

import re

import pytest

from tests.test_access_matrix import MATRIX, _url, world  # noqa: F401 - `world` is a fixture used below

# Attributes and CSS that make a browser fetch something: src, href of <link>, srcset, url(...), @import.
FETCHES = re.compile(
    r"""(?:\bsrc\s*=\s*["']|<link\b[^>]*\bhref\s*=\s*["']|\bsrcset\s*=\s*["']|url\(\s*["']?|@import\s+["'])"""
    r"""(?P<target>(?:https?:)?//[^"')\s]+)""",
    re.IGNORECASE,
)


def external_fetches(html: str) -> list[str]:
    return [m.group("target") for m in FETCHES.finditer(html)]


def test_the_check_finds_what_a_browser_would_fetch():
    page = """<link rel="stylesheet" href="https://cdn.example/x.css"><script src="//cdn.example/x.js"></script>
    <img srcset="https://img.example/a.png 2x">
    <style>@import "https://fonts.example/f.css"; a{b:url(//x.example/i)}</style>
    <a href="https://example.com/help">help</a><script src="/static/app.js"></script>"""
    assert external_fetches(page) == [
        "https://cdn.example/x.css",
        "//cdn.example/x.js",
        "https://img.example/a.png",
        "https://fonts.example/f.css",
        "//x.example/i",
    ]


@pytest.mark.parametrize("path", ["/api/v1/docs", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"])
def test_public_pages_fetch_nothing_from_another_host(client, db, path):
    response = client.get(path)
    assert response.status_code == 200
    assert external_fetches(response.content.decode()) == []


def test_the_api_docs_load_swagger_ui_from_our_static_files(client, db):
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "/static/ninja/swagger-ui.css" in html


def test_every_page_of_the_app_fetches_nothing_from_another_host(client, world):  # noqa: F811
    client.force_login(world["personas"]["owner"])
    pages = [name for name, route in MATRIX.items() if "GET" in route.methods and route.level != "public"]
    problems = {}
    for name in pages:
        response = client.get(_url(name, world["own"]))
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            found = external_fetches(response.content.decode())
            if found:
                problems[name] = found
    assert problems == {}
    assert len(pages) > 20  # the matrix's pages were really walked
