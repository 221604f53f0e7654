"""No accidental plan change: the Billing page shows the plans as cards with the current one marked and no form that
changes the plan; a change goes through a confirmation (htmx dialog, or a full page without JavaScript) that says
what happens, and what a downgrade loses; only the confirmation's POST changes anything. Invoices download as PDF,
for Owners and Admins only."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from billing.catalog import plans_ensure_defaults
from billing.ledger import credits_grant
from billing.models import Invoice, InvoiceStatus, Plan, Subscription
from billing.services import invoice_mark_paid, invoice_void, plan_subscribe
from orgs.models import OrganizationRole
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import WorkspaceRole

pytestmark = pytest.mark.django_db

HX_DIALOG = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "dialog-body"}


@pytest.fixture
def ctx():
    plans_ensure_defaults()
    owner = UserFactory()
    org = make_organization(owner=owner, name="Northwind")
    studio = make_workspace(org, name="Studio")
    admin = make_member(org, role=OrganizationRole.ADMIN).user
    member = make_member(org, workspaces={studio: WorkspaceRole.ADMIN}).user
    credits_grant(organization=org, amount=1_000, actor=owner)
    plans = {plan.code: plan for plan in Plan.objects.all()}
    return type("Ctx", (), {"org": org, "owner": owner, "admin": admin, "member": member, "plans": plans})


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html(response) -> str:
    return unescape(response.content.decode())


def pdf_text(content: bytes) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: the PDF's text is not checked")
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"],  # noqa: S607
        input=content,
        capture_output=True,
        check=True,
    ).stdout.decode()


def on_plan(ctx, code: str) -> Invoice:
    invoice = plan_subscribe(organization=ctx.org, plan=ctx.plans[code], actor=ctx.owner, gateway_code="manual")
    return invoice_mark_paid(invoice=invoice, actor=None)


def test_the_billing_page_marks_the_current_plan_and_changes_nothing_in_one_click(ctx):
    on_plan(ctx, "teams")
    page = html(client_for(ctx.owner).get(reverse("billing:page", args=[ctx.org.slug])))
    cards = re.findall(r'<li class="plan-card[^"]*"[^>]*>.*?</li>', page, re.S)
    assert len(cards) == 3
    current = [card for card in cards if "plan-current" in card]
    assert len(current) == 1
    assert "Teams" in current[0]
    assert "Current plan" in current[0]
    assert 'aria-current="true"' in current[0]
    # No form on the page posts to the plan change: every card links to its confirmation.
    subscribe = reverse("billing:plan_subscribe", args=[ctx.org.slug])
    assert f'action="{subscribe}"' not in page
    for code in ("pro", "business"):
        link = f"{subscribe}?plan={ctx.plans[code].pk}"
        assert f'href="{link}" hx-get="{link}" hx-target="#dialog-body"' in page
    assert "Switch to Pro…" in page
    assert "Switch to Business…" in page


def test_the_confirmation_says_what_happens_and_a_downgrade_what_is_lost(ctx):
    on_plan(ctx, "teams")
    subscribe = reverse("billing:plan_subscribe", args=[ctx.org.slug])
    client = client_for(ctx.admin)
    dialog = client.get(f"{subscribe}?plan={ctx.plans['pro'].pk}", **HX_DIALOG)
    assert dialog.status_code == 200
    text = html(dialog)
    assert "<html" not in text  # the dialog's fragment
    assert "Switch from Teams to Pro?" in text
    assert "20.00 USD a month" in text
    assert "(now 80.00 USD)" in text
    assert "10,000 a month" in text
    assert "(now 50,000)" in text
    assert "When its invoice is paid" in text
    assert "Until then you stay on Teams." in text
    assert "grants 10,000 credits" in text
    assert "No proration" in text
    assert "This is a downgrade." in text
    assert "40,000 fewer credits" in text
    assert 'name="confirm" value="yes"' in text
    # An upgrade says what happens, and no loss.
    upgrade = html(client.get(f"{subscribe}?plan={ctx.plans['business'].pk}", **HX_DIALOG))
    assert "Switch from Teams to Business?" in upgrade
    assert "downgrade" not in upgrade
    # Without JavaScript the same confirmation is a full page.
    page = html(client.get(f"{subscribe}?plan={ctx.plans['pro'].pk}"))
    assert "<html" in page
    assert "Switch from Teams to Pro?" in page
    assert "No proration" in page
    assert Invoice.objects.filter(organization=ctx.org).count() == 1  # asking changed nothing


def test_only_the_confirmed_post_changes_the_plan(ctx):
    on_plan(ctx, "teams")
    subscribe = reverse("billing:plan_subscribe", args=[ctx.org.slug])
    client = client_for(ctx.owner)
    unconfirmed = client.post(subscribe, {"plan": ctx.plans["pro"].pk, "gateway": "manual"})
    assert unconfirmed.status_code == 200
    assert "Switch from Teams to Pro?" in html(unconfirmed)
    assert Invoice.objects.filter(organization=ctx.org).count() == 1
    confirmed = client.post(subscribe, {"plan": ctx.plans["pro"].pk, "gateway": "manual", "confirm": "yes"})
    assert confirmed.status_code == 302
    opened = Invoice.objects.get(organization=ctx.org, status=InvoiceStatus.OPEN)
    assert opened.plan == ctx.plans["pro"]
    assert Subscription.objects.get(organization=ctx.org).plan == ctx.plans["teams"]  # until it is paid


def test_a_refused_change_shows_its_error_in_the_confirmation(ctx):
    plan_subscribe(organization=ctx.org, plan=ctx.plans["pro"], actor=ctx.owner, gateway_code="manual")  # open
    subscribe = reverse("billing:plan_subscribe", args=[ctx.org.slug])
    response = client_for(ctx.owner).post(
        subscribe, {"plan": ctx.plans["teams"].pk, "gateway": "manual", "confirm": "yes"}, **HX_DIALOG
    )
    assert response.status_code == 400
    text = html(response)
    assert "<html" not in text
    assert "is still open" in text
    assert Invoice.objects.filter(organization=ctx.org).count() == 1


def test_a_bad_plan_in_the_link_is_a_clear_error(ctx):
    subscribe = reverse("billing:plan_subscribe", args=[ctx.org.slug])
    for value in ("999999", "abc", str(2**63)):
        response = client_for(ctx.owner).get(f"{subscribe}?plan={value}")
        assert response.status_code == 400
        assert 'class="error"' in html(response)
    assert not Invoice.objects.exists()


def test_invoices_download_as_pdf_for_owners_and_admins_only(ctx):
    invoice = on_plan(ctx, "pro")
    other = make_organization(owner=UserFactory(), name="Bluepeak")
    plans_elsewhere = plan_subscribe(
        organization=other, plan=ctx.plans["teams"], actor=other.memberships.first().user, gateway_code="manual"
    )
    url = reverse("billing:invoice_pdf", args=[ctx.org.slug, invoice.number])
    page = html(client_for(ctx.owner).get(reverse("billing:page", args=[ctx.org.slug])))
    assert f'href="{url}"' in page
    for user in (ctx.owner, ctx.admin):
        response = client_for(user).get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="invoice-{invoice.number}.pdf"'
        assert response.content.startswith(b"%PDF")
    assert client_for(ctx.member).get(url).status_code == 404
    # Another organization's invoice, through this organization's URL: 404.
    foreign = reverse("billing:invoice_pdf", args=[ctx.org.slug, plans_elsewhere.number])
    assert client_for(ctx.owner).get(foreign).status_code == 404
    words = pdf_text(client_for(ctx.owner).get(url).content)
    for expected in (invoice.number, "Northwind", "Pro plan", "10,000", "20.00", "PAID"):
        assert expected in words


def test_a_void_invoice_says_so(ctx):
    invoice = plan_subscribe(organization=ctx.org, plan=ctx.plans["pro"], actor=ctx.owner, gateway_code="manual")
    invoice_void(invoice=invoice, actor=None)
    response = client_for(ctx.owner).get(reverse("billing:invoice_pdf", args=[ctx.org.slug, invoice.number]))
    assert response.status_code == 200
    words = pdf_text(response.content)
    assert "VOID" in words
    assert "nothing is owed" in words
