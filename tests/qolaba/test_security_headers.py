"""The security headers of every page (docs/security.md): every GET page of the access matrix as a person who may
open it, the account pages, the API and the admin.

Each answer carries a Content-Security-Policy whose scripts are this origin's files only ('unsafe-inline' and
'unsafe-eval' never), a nonce on any inline script, no inline event handler or style attribute in the markup (the
policy would block them, so a page that has one is broken), and Referrer-Policy, Permissions-Policy,
X-Frame-Options and X-Content-Type-Options. Downloads say what they are and that they are downloads."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import UserFactory
from tests.test_access_matrix import LEVELS, MATRIX, PERSONAS, _url, world  # noqa: F401  (world is a fixture)

HTML = "text/html"


class _Markup(HTMLParser):
    """The inline scripts (with their nonce) and the attributes a strict policy blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts: list[str | None] = []
        self.blocked: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _value in attrs:
            if name.startswith("on") or name.startswith("hx-on") or name == "style":
                self.blocked.append(f"<{tag} {name}=...>")
        if tag == "style" and "nonce" not in named:
            self.blocked.append("<style> without a nonce")
        if tag == "script" and not named.get("src") and named.get("type") not in ("application/json",):
            self.inline_scripts.append(named.get("nonce"))


def _directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def _problems(response, label: str) -> list[str]:
    problems = []
    headers = response.headers
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"{label}: X-Content-Type-Options {headers.get('X-Content-Type-Options')!r}")
    if headers.get("X-Frame-Options") != "DENY":
        problems.append(f"{label}: X-Frame-Options {headers.get('X-Frame-Options')!r}")
    if headers.get("Referrer-Policy") not in ("strict-origin-when-cross-origin", "same-origin"):
        problems.append(f"{label}: Referrer-Policy {headers.get('Referrer-Policy')!r}")
    permissions = headers.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        if feature not in permissions:
            problems.append(f"{label}: Permissions-Policy lacks {feature}")
    policy = headers.get("Content-Security-Policy")
    if not policy:
        return [*problems, f"{label}: no Content-Security-Policy"]
    directives = _directives(policy)
    scripts = directives.get("script-src", directives.get("default-src"))
    if scripts is None:
        problems.append(f"{label}: the policy leaves scripts open: {policy}")
        scripts = []
    for word in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
        if word in scripts:
            problems.append(f"{label}: script-src allows {word}")
    if "frame-ancestors" not in directives and "sandbox" not in directives:
        problems.append(f"{label}: no frame-ancestors")
    if headers.get("Content-Disposition") is not None or response.streaming:
        return problems
    if headers.get("Content-Type", "").startswith(HTML):
        markup = _Markup()
        markup.feed(response.content.decode())
        problems += [f"{label}: {blocked}" for blocked in markup.blocked]
        for nonce in markup.inline_scripts:
            if nonce is None or f"'nonce-{nonce}'" not in scripts:
                problems.append(f"{label}: an inline <script> without the request's nonce")
    return problems


def _persona_for(level: str) -> str:
    """The Owner wherever they may go; else the first person the level lets in."""
    allowed = LEVELS[level]
    return "owner" if "owner" in allowed else next(name for name in PERSONAS if name in allowed)


def test_every_get_page_carries_the_security_headers(client, world):  # noqa: F811
    problems: list[str] = []
    seen = 0
    for name, route in sorted(MATRIX.items()):
        if "GET" not in route.methods:
            continue
        url = _url(name, world["own"])
        client.logout()
        if route.level != "public":
            client.force_login(world["personas"][_persona_for(route.level)])
        response = client.get(url)
        assert response.status_code in (200, 302, 404), f"{name}: {response.status_code}"
        problems += _problems(response, f"{name} {response.status_code}")
        seen += 1
    assert seen > 40
    assert not problems, "\n".join(problems)


ACCOUNT_PAGES = [
    "account_login",
    "account_signup",
    "account_reset_password",
    "account_email",
    "account_change_password",
    "mfa_index",
    "mfa_activate_totp",
    "usersessions_list",
]


@pytest.mark.django_db
def test_account_api_and_admin_pages_carry_the_security_headers(client):
    problems: list[str] = []
    for name in ACCOUNT_PAGES[:3]:
        problems += _problems(client.get(reverse(name)), name)
    problems += _problems(client.get("/api/v1/docs"), "api docs")
    problems += _problems(client.get("/api/v1/health"), "api health")
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    for name in ACCOUNT_PAGES[3:]:
        response = client.get(reverse(name))
        problems += _problems(response, f"{name} {response.status_code}")
    for path in ("/admin/", "/admin/orgs/organization/", "/admin/orgs/user/add/"):
        response = client.get(path)
        assert response.status_code == 200, path
        problems += _problems(response, path)
    assert not problems, "\n".join(problems)


def test_downloads_say_what_they_are(client, world):  # noqa: F811
    """History media, CSV exports and PDFs: a content type that is not a page, a download (or, for pictures the
    page shows, inline under a sandbox policy) and nosniff."""
    downloads = {
        "workspaces:history_media": None,
        "usage:statement_csv": "text/csv",
        "usage:statement_pdf": "application/pdf",
        "usage:usage_export_csv": "text/csv",
        "orgs:audit_export": "text/csv",
    }
    client.force_login(world["personas"]["owner"])
    problems = []
    for name, content_type in downloads.items():
        response = client.get(_url(name, world["own"]))
        assert response.status_code == 200, name
        given = response.headers["Content-Type"]
        if given.startswith(HTML) or (content_type and not given.startswith(content_type)):
            problems.append(f"{name}: Content-Type {given}")
        disposition = response.headers.get("Content-Disposition", "")
        if name == "workspaces:history_media":
            if "sandbox" not in response.headers["Content-Security-Policy"]:
                problems.append(f"{name}: served without the sandbox policy")
        elif not disposition.startswith("attachment"):
            problems.append(f"{name}: Content-Disposition {disposition!r}")
        if response.headers.get("X-Content-Type-Options") != "nosniff":
            problems.append(f"{name}: no nosniff")
    assert not problems, "\n".join(problems)
    download = client.get(_url("workspaces:history_media", world["own"]) + "?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment")


def test_a_page_with_an_inline_script_gets_a_nonce_in_the_header(rf):
    """The template side of the nonce: `{{ csp_nonce }}` in a template puts the same value in the header."""
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse
    from django.template import engines

    request = rf.get("/")
    middleware = CSPMiddleware(lambda request: HttpResponse())
    middleware.process_request(request)
    from qolaba.context_processors import csp_nonce

    template = engines["django"].from_string('<script nonce="{{ csp_nonce }}">1</script>')
    body = template.render(csp_nonce(request))
    response = middleware.process_response(request, HttpResponse(body))
    nonce = re.search(r'nonce="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    assert f"'nonce-{nonce}'" in _directives(response.headers["Content-Security-Policy"])["script-src"]
    # And a page that does not use it has no nonce in its header (so that a nonce is never spent needlessly).
    other = rf.get("/")
    middleware.process_request(other)
    assert "nonce-" not in middleware.process_response(other, HttpResponse("x")).headers["Content-Security-Policy"]


def test_production_settings_send_hsts_and_pass_the_deploy_checks():
    """`manage.py check --deploy` with the production settings (as scripts/test.sh runs it) finds nothing."""
    database = settings.DATABASES["default"]
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "qolaba.settings.production",
        "SECRET_KEY": "x" * 30 + "check-deploy-secret-key-of-sufficient-length",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/postgres",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "ALLOWED_HOSTS": "qolaba.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS)"],
        env={**env, "PYTHONPATH": str(settings.BASE_DIR)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert int(result.stdout.strip()) >= 60 * 60 * 24 * 180, result.stderr
