"""The statements pages and downloads: who may open them (404 for everyone else), what the CSV and the PDF hold,
the client rate form, and the page's query count."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import AuditAction, AuditEvent, Organization, OrganizationRole
from qolaba.lifecycle import workspace_archive
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from tests.usage.test_statements import charge, local, make_world
from usage.models import ClientRate, Statement
from usage.statements import client_rate_set, month_of, statement_close, statements_close_due
from workspaces.models import Workspace, WorkspaceRole

pytestmark = pytest.mark.django_db

TZ = "Asia/Kolkata"
AUGUST = date(2026, 8, 1)


@pytest.fixture
def world():
    """A budget-mode organization with a client workspace that has a closed August statement and a client rate,
    and one person of every kind."""
    world = make_world(TZ, budget=True, at=local(TZ, 2026, 7, 20, 10))
    charge(world, local(TZ, 2026, 8, 3, 10), "gpt-4o", 3)  # 15
    charge(world, local(TZ, 2026, 8, 4, 10), "flux-pro", 2, tool="image")  # 24
    charge(world, local(TZ, 2026, 8, 31, 23, 55), "claude-sonnet", 1)  # 6
    client_rate_set(workspace=world.client, rate_per_1000=Decimal("12.50"), currency="EUR", actor=world.owner)
    world.statement, _ = statement_close(workspace=world.client, period_start=AUGUST, at=local(TZ, 2026, 9, 2))
    world.people = {
        "owner": world.owner,
        "admin": make_member(world.org, role=OrganizationRole.ADMIN).user,
        "workspace_admin": make_member(world.org, workspaces={world.client: WorkspaceRole.ADMIN}).user,
        "member": world.member,
        "viewer": make_member(world.org, workspaces={world.client: WorkspaceRole.VIEWER}).user,
        "stranger": make_organization(owner=UserFactory()).created_by,
    }
    return world


def url(world, name: str, period: date | None = None, workspace=None) -> str:
    kwargs = {"org_slug": world.org.slug, "ws_slug": (workspace or world.client).slug}
    if period is not None:
        kwargs["period"] = period
    return reverse(f"usage:{name}", kwargs=kwargs)


ALLOWED = {"owner": 200, "admin": 200, "workspace_admin": 200, "member": 404, "viewer": 404, "stranger": 404}


@pytest.mark.parametrize("person", sorted(ALLOWED))
def test_only_owners_admins_and_workspace_admins_see_statements(client, world, person):
    client.force_login(world.people[person])
    current = month_of(world.org, now())
    urls = [url(world, "statements")]
    for period in (AUGUST, current):  # the closed statement and the current draft
        urls += [url(world, name, period) for name in ("statement", "statement_csv", "statement_pdf")]
    for address in urls:
        assert client.get(address).status_code == ALLOWED[person], address


def test_anonymous_is_sent_to_log_in(client, world):
    response = client.get(url(world, "statement_pdf", AUGUST))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_another_workspace_or_a_month_outside_the_workspace_is_not_found(client, world):
    client.force_login(world.people["workspace_admin"])
    assert client.get(url(world, "statement_csv", AUGUST, workspace=world.other)).status_code == 404
    client.force_login(world.owner)
    future = month_of(world.org, now() + timedelta(days=40))
    assert client.get(url(world, "statement", future)).status_code == 404
    assert client.get(url(world, "statement_pdf", date(2025, 1, 1))).status_code == 404  # before the workspace
    assert client.get(f"/o/{world.org.slug}/w/{world.client.slug}/statements/2026-13/").status_code == 404


def test_the_page_lists_closed_statements_and_the_current_draft(client, world):
    client.force_login(world.owner)
    response = client.get(url(world, "statements"))
    page = response.content.decode()
    assert world.statement.number in page
    assert "Draft — not closed" in page
    assert "45" in page  # August's credits
    assert "0.57 EUR" in page  # 15 -> 0.19, 24 -> 0.30, 6 -> 0.08
    assert url(world, "statement_pdf", AUGUST) in page
    assert url(world, "statement_csv", month_of(world.org, now())) in page
    settings_page = client.get(
        reverse("workspaces:settings", kwargs={"org_slug": world.org.slug, "ws_slug": world.client.slug})
    )
    assert url(world, "statements").encode() in settings_page.content
    overview = client.get(
        reverse("workspaces:overview", kwargs={"org_slug": world.org.slug, "ws_slug": world.client.slug})
    )
    assert url(world, "statements").encode() in overview.content


def test_the_closed_statement_page_shows_lines_totals_and_balances(client, world):
    client.force_login(world.people["workspace_admin"])
    page = client.get(url(world, "statement", AUGUST)).content.decode()
    for text in (world.statement.number, "gpt-4o", "flux-pro", "Opening balance", "Closing balance", "0.57"):
        assert text in page
    assert "Draft" not in page


def _csv_blocks(content: bytes) -> list[list[list[str]]]:
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(content.decode())):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


def test_the_csv_reads_back_as_the_statement(client, world):
    client.force_login(world.owner)
    response = client.get(url(world, "statement_csv", AUGUST))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="statement-{world.statement.number}.csv"'
    header, lines, balance = _csv_blocks(response.content)
    head = dict(zip(header[0], header[1], strict=True))
    assert head["statement"] == world.statement.number
    assert head["status"] == "closed"
    assert head["period"] == "2026-08"
    assert head["period_start"] == "2026-08-01T00:00:00+05:30"
    assert head["period_end"] == "2026-09-01T00:00:00+05:30"
    assert head["client_rate_per_1000_credits"] == "12.5"
    assert head["currency"] == "EUR"
    assert lines[0] == ["tool", "model", "unit", "generations", "units", "credits", "amount", "currency"]
    rows = {(row[0], row[1]): row for row in lines[1:-1]}
    assert rows["chat", "gpt-4o"] == ["chat", "gpt-4o", "message", "1", "3", "15", "0.19", "EUR"]
    assert rows["image", "flux-pro"] == ["image", "flux-pro", "image", "1", "2", "24", "0.30", "EUR"]
    assert lines[-1] == ["total", "", "", "3", "", "45", "0.57", "EUR"]
    assert sum(int(row[5]) for row in lines[1:-1]) == 45
    assert balance[0] == ["balance", "credits"]
    items = {row[0]: int(row[1]) for row in balance[1:]}
    assert items["opening_balance"] == 10_000
    assert items["spent"] == -45
    assert (
        items["opening_balance"] + sum(v for k, v in items.items() if k not in ("opening_balance", "closing_balance"))
        == items["closing_balance"]
    )
    assert items["closing_balance"] == world.statement.closing_balance == 9_955


def test_a_draft_csv_is_labelled_and_named_as_a_draft(client, world):
    client.force_login(world.owner)
    current = month_of(world.org, now())
    response = client.get(url(world, "statement_csv", current))
    assert response["Content-Disposition"] == (
        f'attachment; filename="statement-{world.org.slug}-{world.client.slug}-{current:%Y-%m}-draft.csv"'
    )
    head = dict(zip(*_csv_blocks(response.content)[0], strict=True))
    assert head["status"] == "draft"
    assert head["statement"] == ""


def test_the_csv_writes_names_a_spreadsheet_would_run_as_text(client, world):
    """Organization and workspace names are user input: "=HYPERLINK(…)" must not become a formula in Excel."""
    Workspace.objects.filter(pk=world.client.pk).update(name='=HYPERLINK("http://evil.test","Open")')
    Organization.objects.filter(pk=world.org.pk).update(name="@SUM(A1)")
    client.force_login(world.owner)
    head = dict(
        zip(*_csv_blocks(client.get(url(world, "statement_csv", month_of(world.org, now()))).content)[0], strict=True)
    )
    assert head["workspace"] == '\'=HYPERLINK("http://evil.test","Open")'
    assert head["organization"] == "'@SUM(A1)"


def test_the_pdf_is_a_pdf_with_the_totals(client, world):
    client.force_login(world.owner)
    response = client.get(url(world, "statement_pdf", AUGUST))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="statement-{world.statement.number}.pdf"'
    assert response.content.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: the PDF's text is not checked")
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"],  # noqa: S607
        input=response.content,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    assert world.statement.number in text
    assert world.org.name in text
    assert "Client" in text
    assert "August 2026" in text
    assert "Asia/Kolkata (UTC+05:30)" in text
    assert "Total" in text
    assert "45" in text
    assert "0.57" in text
    assert "Opening balance" in text
    assert "10,000" in text
    assert "Closing balance" in text
    assert "9,955" in text
    assert "12.5 EUR per 1,000 credits" in text
    assert "DRAFT" not in text


# Measured (PostgreSQL): 7 to resolve the request (session, user, permissions, membership), the closed statements
# and the client rate, 5 for each draft month shown (lines; account and balance in one snapshot; movements; holds
# from earlier months; captured holds), and the unread notifications. Three drafts here: August is closed, and the
# page shows the three latest months not closed yet.
QUERIES = 7 + 3 * 5 + 1


def test_the_statements_page_costs_the_same_queries_with_more_statements(client, world, django_assert_num_queries):
    client.force_login(world.owner)
    page = url(world, "statements")
    client.get(page)  # warm the session
    with django_assert_num_queries(QUERIES):
        assert client.get(page).status_code == 200
    for month in (5, 6, 7):  # more closed statements (months before August) and more events
        charge(world, local(TZ, 2026, month, 10, 10), "gpt-4o", 1)
        statement_close(workspace=world.client, period_start=date(2026, month, 1), at=local(TZ, 2026, 9, 2))
    charge(world, now() - timedelta(minutes=5), "gpt-4o-mini", 2)
    assert Statement.objects.filter(workspace=world.client).count() == 4
    with django_assert_num_queries(QUERIES):
        assert client.get(page).status_code == 200


# --- the client rate ---------------------------------------------------------------------------------------------


def rate_url(world) -> str:
    return reverse("workspaces:client_rate_set", kwargs={"org_slug": world.org.slug, "ws_slug": world.client.slug})


def test_owners_and_admins_set_the_client_rate_and_it_is_audited(client, world):
    client.force_login(world.people["admin"])
    response = client.post(rate_url(world), {"rate_per_1000": "8.75", "currency": "usd"})
    assert response.status_code == 302
    rate = ClientRate.objects.get(workspace=world.client)
    assert (rate.rate_per_1000, rate.currency) == (Decimal("8.75"), "USD")
    event = AuditEvent.objects.filter(action=AuditAction.CLIENT_RATE_SET).latest("pk")
    assert event.before == {"rate_per_1000": "12.5", "currency": "EUR"}
    assert event.after == {"rate_per_1000": "8.75", "currency": "USD"}
    assert Statement.objects.get(pk=world.statement.pk).rate_per_1000 == Decimal("12.5")  # closed: unchanged
    client.post(rate_url(world), {"rate_per_1000": "", "currency": ""})
    assert not ClientRate.objects.filter(workspace=world.client).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rate_per_1000": "-1", "currency": "EUR"}, "rate_per_1000"),
        ({"rate_per_1000": "1.123456", "currency": "EUR"}, "rate_per_1000"),
        ({"rate_per_1000": "abc", "currency": "EUR"}, "rate_per_1000"),
        ({"rate_per_1000": "10", "currency": ""}, "currency"),
        ({"rate_per_1000": "10", "currency": "E1R"}, "currency"),
    ],
)
def test_a_wrong_rate_is_refused_and_nothing_changes(client, world, data, field):
    client.force_login(world.owner)
    response = client.post(rate_url(world), data)
    assert response.status_code == 400
    assert response.context["rate_form"].errors[field]
    rate = ClientRate.objects.get(workspace=world.client)
    assert (rate.rate_per_1000, rate.currency) == (Decimal("12.5"), "EUR")


@pytest.mark.parametrize("person", ["workspace_admin", "member", "viewer", "stranger"])
def test_nobody_else_sets_the_client_rate(client, world, person):
    client.force_login(world.people[person])
    assert client.post(rate_url(world), {"rate_per_1000": "1", "currency": "USD"}).status_code == 404
    assert ClientRate.objects.get(workspace=world.client).rate_per_1000 == Decimal("12.5")


def test_workspace_admins_see_the_rate_but_get_no_form(client, world):
    client.force_login(world.people["workspace_admin"])
    page = client.get(reverse("workspaces:settings", kwargs={"org_slug": world.org.slug, "ws_slug": world.client.slug}))
    assert page.status_code == 200
    assert b"<strong>12.5 EUR</strong>" in page.content
    assert "rate_form" not in page.context


def test_an_archived_workspace_keeps_its_statement_of_the_month_it_was_deleted_in():
    owner = UserFactory()
    with time_machine.travel(local(TZ, 2026, 7, 1, 9), tick=False):
        org = make_organization(owner=owner, timezone=TZ)
        workspace = make_workspace(org, name="Short job")
    with time_machine.travel(local(TZ, 2026, 7, 20, 9), tick=False):
        workspace_archive(workspace=workspace, actor=owner)
    with time_machine.travel(local(TZ, 2026, 9, 2), tick=False):
        statements_close_due()
    assert list(Statement.objects.filter(workspace=workspace).values_list("period_start", flat=True)) == [
        date(2026, 7, 1)
    ]
