"""Every page at 390 px (a phone), as each role, on the seeded demo organization: nothing is wider than the
viewport and every row action (a link or button in a table row) is on screen.

The pages come from tests/test_access_matrix.py's MATRIX (every GET page the role may open; a new page is covered
as soon as it is in the matrix), the account pages under /accounts/ that take no argument, and the public account
pages. The Owner walks them again with JavaScript off. Screenshots: test-artifacts/e2e/<test>/.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.management import call_command
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now
from playwright.sync_api import Browser, Page

from billing.models import Invoice
from orgs.models import Membership, Organization, OrganizationRole, User
from orgs.services import admin_key_create
from qolaba.demo.organizations import DEMO_PASSWORD
from tests.e2e.conftest import Screenshot, log_in
from tests.test_access_matrix import LEVELS, MATRIX, URL_KWARGS
from usage.exports import usage_export_create
from usage.reports import UsageQuery
from usage.statements import month_of
from usage.studio.models import ChatThread, JobStatus, StudioJob
from usage.tasks import usage_export_run
from workspaces.models import ApiKey, HistoryItem, Workspace, WorkspaceRole
from workspaces.services import invitations_create

WIDTH = 390

# Files, not pages (CSV, PDF, media): nothing to lay out.
DOWNLOADS = {
    "orgs:audit_export",
    "billing:invoice_pdf",
    "usage:statement_csv",
    "usage:statement_pdf",
    "usage:usage_export_csv",
    "usage:usage_export_download",
    "workspaces:history_media",
    "studio:job_media",
}

# The demo's people, as the access matrix's personas, each with the workspace they are looked at in.
ROLES = [
    ("owner", "owner@northwind.test", "Nike Spring Campaign"),
    ("org_admin", "admin@northwind.test", "Nike Spring Campaign"),
    ("workspace_admin", "lead@northwind.test", "GPT vs Claude Lab"),
    ("workspace_member", "member@northwind.test", "Nike Spring Campaign"),
    ("workspace_viewer", "viewer@northwind.test", "Nike Spring Campaign"),
]

# What is wider than the viewport, as short selectors. An element clipped by a scrolling (or clipping) ancestor
# that itself fits counts as inside: a numeric table may scroll in its own box, never the page. The off-canvas
# navigation (moved left, out of sight) is not wider than the page either.
OVERFLOW_JS = """
(width) => {
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) return s + '#' + el.id;
    const classes = [...el.classList].slice(0, 3);
    if (classes.length) s += '.' + classes.join('.');
    return s;
  };
  const path = (el) => {
    const parts = [];
    for (let node = el; node && node !== document.body && parts.length < 4; node = node.parentElement) {
      parts.unshift(name(node));
      if (node.id) break;
    }
    return parts.join(' > ');
  };
  const clippedInside = (el) => {
    for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
      const ox = getComputedStyle(node).overflowX;
      if (ox !== 'visible') return node.getBoundingClientRect().right <= width + 0.5;
    }
    return false;
  };
  const offenders = [];
  for (const el of document.body.querySelectorAll('*')) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || rect.right <= width + 0.5) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('dialog:not([open])')) continue;
    const closed = el.closest('details:not([open])');  // a closed disclosure shows only its summary
    if (closed && !el.closest('summary')) continue;
    if (clippedInside(el)) continue;
    offenders.push(`${path(el)} (right edge ${Math.round(rect.right)} px)`);
  }
  const actions = [];
  for (const el of document.querySelectorAll('table tbody tr a, table tbody tr button')) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    // Inside the page, and inside the box that clips it: a table scrolling in its panel must not hide its actions.
    let box = {left: 0, right: width};
    for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
      if (getComputedStyle(node).overflowX !== 'visible') { box = node.getBoundingClientRect(); break; }
    }
    if (rect.left < Math.max(0, box.left) - 0.5 || rect.right > Math.min(width, box.right) + 0.5) {
      const where = `${Math.round(rect.left)}-${Math.round(rect.right)} px`;
      actions.push(`${path(el)} "${el.textContent.trim().slice(0, 30)}" (${where})`);
    }
  }
  const scrollWidth = document.documentElement.scrollWidth;
  return {scrollWidth, offenders: offenders.slice(0, 8), actions: actions.slice(0, 8)};
}
"""


def _account_urls() -> list[str]:
    """The allauth pages that take no argument (email, password, two-factor, ...), login and sign-up excepted."""
    urls: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name and not pattern.pattern.regex.groups:
                route = prefix + str(pattern.pattern)
                if "<" not in route and "(" not in route:
                    urls.append(reverse(pattern.name))

    for resolver in get_resolver().url_patterns:
        if isinstance(resolver, URLResolver) and str(resolver.pattern) == "accounts/":
            walk(resolver.url_patterns, "accounts/")
    # Besides login and sign-up: the two-factor pages that exist only once it is set up (the demo users have none;
    # their set-up page is walked), and the sign-in steps that exist only in the middle of a sign-in.
    skip = {reverse("account_login"), reverse("account_signup")}
    only_with_two_factor = (
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_deactivate_totp",
        "mfa_download_recovery_codes",
        "mfa_authenticate",
        "mfa_reauthenticate",
        "mfa_trust",
    )
    for name in only_with_two_factor:
        try:
            skip.add(reverse(name))
        except NoReverseMatch:
            continue
    return sorted({url for url in urls if url not in skip})


def _pages(persona: str, javascript: bool, user: User, organization: Organization, workspace: Workspace) -> list[str]:
    owner = User.objects.get(email="owner@northwind.test")
    invitation = invitations_create(
        organization=organization,
        emails=[f"phone-{persona}-{javascript}@example.com".lower()],
        role=OrganizationRole.MEMBER,
        workspaces=[workspace],
        workspace_role=WorkspaceRole.MEMBER,
        actor=owner,
    )[0]
    admin_key, _ = admin_key_create(organization=organization, actor=owner, name=f"Finance {persona} {javascript}")
    export = usage_export_create(
        organization=organization, requester=user, query=UsageQuery(start=date(2026, 3, 1), end=date(2026, 3, 31))
    )
    usage_export_run(export.pk)
    other = Membership.objects.filter(organization=organization, user__email="member@northwind.test").get()
    thread = ChatThread.objects.filter(workspace=workspace).order_by("pk").first()
    assert thread is not None, "the demo seeds chat threads in every workspace"
    # A Studio video still running (its card with the progress bar and Cancel is the widest thing on its page).
    job = StudioJob.objects.create(
        organization=organization,
        workspace=workspace,
        author=owner,
        tool="video",
        model="kling-1.6",
        provider="demo",
        prompt="Waves rolling onto a beach at dusk, in slow motion, with the sun low over the water",
        options={"seconds": 4},
        status=JobStatus.RUNNING,
        progress=40,
        estimated_credits=80,
    )
    values: dict[str, object] = {
        "org_slug": organization.slug,
        "ws_slug": workspace.slug,
        "membership_id": other.pk,
        "invitation_id": invitation.pk,
        "item_id": HistoryItem.objects.filter(workspace=workspace).order_by("-pk").values_list("pk", flat=True)[0],
        "key_id": ApiKey.objects.filter(workspace=workspace, revoked_at=None).values_list("pk", flat=True)[0],
        "export_id": export.pk,
        "admin_key_id": admin_key.pk,
        "period": month_of(organization, now()),
        "number": Invoice.objects.filter(organization=organization).values_list("number", flat=True).first(),
        "thread_id": thread.pk,
        "turn_id": thread.turns.order_by("pk").values_list("pk", flat=True).first(),
        "job_id": job.pk,
        "index": 0,
    }
    allowed = {**LEVELS, "export_requester": set(LEVELS["authenticated"])}  # the export is this user's own
    pages = []
    for name, route in sorted(MATRIX.items()):
        if "GET" not in route.methods or name in DOWNLOADS or route.level == "public":
            continue
        if persona in allowed[route.level]:
            pages.append(reverse(name, kwargs={key: values[key] for key in URL_KWARGS.get(name, ())}))
    return pages + _account_urls()


def _check(page: Page, url: str, width: int = WIDTH) -> list[str]:
    response = page.goto(url)
    assert response is not None, url
    assert response.status < 400, f"{url}: {response.status}"
    found = page.evaluate(OVERFLOW_JS, width)
    problems = [f"{url}: {text} overflows the viewport" for text in found["offenders"]]
    problems += [f"{url}: row action {text} is off screen" for text in found["actions"]]
    if found["scrollWidth"] > width:
        problems.append(f"{url}: the page is {found['scrollWidth']} px wide")
    return problems


def _shown(page: Page, url: str, workspace: Workspace) -> list[str]:
    """What a phone must still show (the old layout hid a table's second column and pushed actions off screen)."""
    wanted: list[tuple[str, str]] = []
    if url == reverse("workspaces:overview", kwargs={"org_slug": "northwind", "ws_slug": workspace.slug}):
        # The price table keeps its model and its unit.
        wanted = [
            (".price-table tbody tr td:nth-child(2) code", "gpt-4o"),
            (".price-table tbody tr td:nth-child(4)", "message"),
        ]
    elif url == reverse("orgs:members", kwargs={"org_slug": "northwind"}):
        wanted = [("#members-table td.actions a", "Manage"), ("#members-table td[data-label=Role]", "Owner")]
    elif url == reverse("workspaces:list", kwargs={"org_slug": "northwind"}):
        wanted = [
            ("#workspaces-table td.actions a", "Edit"),
            ("#workspaces-table td.actions a.btn-danger-text", "Delete"),
        ]
    problems = []
    for selector, text in wanted:
        element = page.locator(selector).filter(has_text=text).first
        if not element.is_visible():
            problems.append(f"{url}: {selector} ({text!r}) is not shown")
            continue
        box = element.bounding_box()
        if box is None or box["x"] < 0 or box["x"] + box["width"] > WIDTH:
            problems.append(f"{url}: {selector} is not within the viewport")
    return problems


@pytest.fixture
def demo(settings, tmp_path) -> Organization:
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", stdout=io.StringIO())
    return Organization.objects.get(slug="northwind")


# The Usage pages read through the `replica` alias (a mirror of default in tests).
@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_every_page_fits_a_phone_for_every_role(
    live_server, browser: Browser, demo: Organization, screenshot: Screenshot
):
    base = live_server.url
    problems: list[str] = []

    anonymous = browser.new_context(viewport={"width": WIDTH, "height": 800}).new_page()
    for url in (reverse("account_login"), reverse("account_signup"), reverse("account_reset_password")):
        problems += _check(anonymous, base + url)
    anonymous.context.close()

    runs = [(persona, email, ws, True) for persona, email, ws in ROLES] + [(*ROLES[0], False)]
    for persona, email, ws_name, javascript in runs:
        user = User.objects.get(email=email)
        workspace = Workspace.objects.get(organization=demo, name=ws_name)
        context = browser.new_context(viewport={"width": WIDTH, "height": 800}, java_script_enabled=javascript)
        page = context.new_page()
        log_in(page, base, email, DEMO_PASSWORD)
        for url in _pages(persona, javascript, user, demo, workspace):
            problems += _check(page, base + url)
            if persona == "owner":
                problems += _shown(page, url, workspace)
            if not javascript or persona == "owner":
                screenshot(page, f"{persona}-{'js' if javascript else 'nojs'}-{url}")
        context.close()

    assert not problems, "\n".join(problems)


LAPTOP = 1280


# The wide tables (usage columns on Members and Workspaces) once pushed their row actions out of their panel on a
# laptop: the panel scrolls, so nothing overflowed the page, but "Manage" was cut off.
@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_every_page_keeps_its_row_actions_in_view_on_a_laptop(live_server, browser: Browser, demo: Organization):
    problems: list[str] = []
    for persona, email, ws_name in ROLES[:2]:  # the Owner and an Admin see every page and the widest tables
        user = User.objects.get(email=email)
        workspace = Workspace.objects.get(organization=demo, name=ws_name)
        context = browser.new_context(viewport={"width": LAPTOP, "height": 800})
        page = context.new_page()
        log_in(page, live_server.url, email, DEMO_PASSWORD)
        for url in _pages(persona, True, user, demo, workspace):
            problems += _check(page, live_server.url + url, LAPTOP)
        context.close()
    assert not problems, "\n".join(problems)
