"""Credits and billing in the browser, without JavaScript and with HTMX: the Overview's credits panel, the
Workspaces tab (balances, mode bar), the credit mode page, the Manage credits dialog (full page, dialog fragment,
live preview, transfer), the monthly limits page, the Billing page and its subscribe / buy / cancel / resume actions.

Refusals and garbage input answer with a clear error (never a 500) and change nothing; pages cost a constant number
of queries whatever the size of the organization.
"""

from __future__ import annotations

import re
from html import unescape
from types import SimpleNamespace
from uuid import uuid4

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.catalog import plans_ensure_defaults
from billing.ledger import CreditLimitReached, charge, credits_grant
from billing.models import (
    Account,
    Invoice,
    InvoicePurpose,
    InvoiceStatus,
    LedgerTransaction,
    Plan,
    Subscription,
    TransactionKind,
    WorkspaceLimit,
)
from billing.reconcile import reconcile
from billing.services import (
    credit_mode_switch,
    credits_transfer,
    invoice_mark_paid,
    plan_subscribe,
    workspace_limit_set,
)
from orgs.models import AuditEvent, CreditMode, Membership, MembershipStatus, OrganizationRole
from qolaba.lifecycle import workspace_archive
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage.models import Price
from usage.services import usage_charge
from workspaces.models import Workspace, WorkspaceRole
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

HX_DIALOG = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "dialog-body"}
HX_PREVIEW = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "transfer-preview"}


@pytest.fixture(autouse=True)
def catalog():
    plans_ensure_defaults()
    return {plan.code: plan for plan in Plan.objects.all()}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def w():
    """Northwind: 10,000 credits, an Owner, an Admin, a Member spending in "Studio", and an idle "Archive" space."""
    owner = UserFactory(email="owner@northwind.test")
    org = make_organization(owner=owner, name="Northwind")
    studio = make_workspace(org, name="Studio")
    spare = make_workspace(org, name="Spare")
    admin = make_member(org, role=OrganizationRole.ADMIN).user
    member_ship = make_member(
        org, user=UserFactory(email="mia@northwind.test"), workspaces={studio: WorkspaceRole.MEMBER}
    )
    credits_grant(organization=org, amount=10_000, actor=owner)
    return SimpleNamespace(
        org=org,
        owner=owner,
        admin=admin,
        member=member_ship.user,
        member_ship=member_ship,
        primary=Workspace.objects.get(organization=org, is_primary=True),
        studio=studio,
        spare=spare,
        as_owner=logged_in(owner),
    )


def to_budget(w: SimpleNamespace, *, studio: int = 0) -> None:
    w.org = credit_mode_switch(organization=w.org, mode=CreditMode.BUDGET, actor=w.owner)
    if studio:
        credits_transfer(organization=w.org, source=w.primary, target=w.studio, amount=studio, actor=w.owner)


def balances(w: SimpleNamespace) -> dict[str, int]:
    rows = Account.objects.filter(organization=w.org, workspace__isnull=False).values_list("workspace__name", "balance")
    return dict(rows)


def text(response) -> str:
    return unescape(response.content.decode())


def flashes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def overview_url(w: SimpleNamespace, ws: Workspace) -> str:
    return reverse("workspaces:overview", args=[w.org.slug, ws.slug])


def available(html: str) -> str:
    match = re.search(r'id="available-credits">([^<]*)<', html)
    assert match
    return match.group(1)


def my_usage(html: str) -> str:
    match = re.search(r'My usage this month</h2>\s*<p class="stat-value"[^>]*>([^<]*)<', html)
    assert match
    return match.group(1)


# --- Overview -------------------------------------------------------------------------------------------------------


def spend(workspace: Workspace, user, credits: int) -> None:
    """A generation charged as the tools charge it (ledger and usage event): the Overview reads the usage events."""
    price, _ = Price.objects.get_or_create(
        tool="chat", model="test-chat", defaults={"unit": "message", "credits_per_unit": 1}
    )
    usage_charge(workspace=workspace, user=user, price=price, units=credits, idempotency_key=f"spend-{uuid4()}")


def test_overview_shows_the_pool_in_shared_mode_and_my_usage(w):
    spend(w.studio, w.member, 300)
    spend(w.studio, w.owner, 45)

    html = text(logged_in(w.member).get(overview_url(w, w.studio)))
    assert available(html) == "9,655"
    assert "in the organization's shared pool" in html
    assert my_usage(html) == "300"

    owner_html = text(w.as_owner.get(overview_url(w, w.primary)))
    assert available(owner_html) == "9,655"
    assert my_usage(owner_html) == "0"  # the Owner spent in Studio, not in the Primary Workspace
    assert my_usage(text(w.as_owner.get(overview_url(w, w.studio)))) == "45"
    assert reconcile() == []


def test_overview_shows_the_workspace_budget_in_budget_mode_and_the_member_limit(w):
    to_budget(w, studio=2_000)
    workspace_limit_set(workspace=w.studio, user=w.member, monthly_limit=500, actor=w.owner)
    spend(w.studio, w.member, 120)

    html = text(logged_in(w.member).get(overview_url(w, w.studio)))
    assert available(html) == "1,880"
    assert "in this workspace's budget" in html
    assert my_usage(html) == "120"
    assert "of your 500 credit limit" in html
    assert available(text(w.as_owner.get(overview_url(w, w.primary)))) == "8,000"
    assert reconcile() == []


def test_buy_credits_is_offered_to_owners_and_admins_only(w):
    buy = reverse("billing:credits_buy", args=[w.org.slug])
    for user in (w.owner, w.admin):
        html = text(logged_in(user).get(overview_url(w, w.studio)))
        assert f'href="{buy}"' in html
        assert ">Buy credits<" in html
    member = logged_in(w.member)
    html = text(member.get(overview_url(w, w.studio)))
    assert f'href="{buy}"' not in html
    assert "Buy credits" not in html
    # ...and the pages themselves do not exist for a Member.
    for url in (
        buy,
        reverse("billing:page", args=[w.org.slug]),
        reverse("billing:plan_subscribe", args=[w.org.slug]),
        reverse("billing:credit_mode_switch", args=[w.org.slug]),
        reverse("billing:credits_transfer", args=[w.org.slug]),
        reverse("billing:workspace_limit_set", args=[w.org.slug, w.studio.slug]),
    ):
        assert member.get(url).status_code == 404, url
    assert member.post(buy, {"plan": Plan.objects.get(code="pack-5k").pk, "gateway": "manual"}).status_code == 404
    assert not Invoice.objects.exists()


# --- Workspaces tab and credit mode ---------------------------------------------------------------------------------


def test_workspaces_tab_shows_balances_and_the_mode_bar_to_owners_and_admins(w):
    list_url = reverse("workspaces:list", args=[w.org.slug])
    html = text(w.as_owner.get(list_url))
    assert 'class="mode-bar"' in html
    assert "Credit mode: <strong>Shared pool</strong>" in html
    assert "Manage credits" not in html  # shared mode: nothing to move
    assert html.count("uses the pool") == 2  # Studio and Spare
    assert re.search(r"Primary Workspace</a>.*?10,000", html, re.S)

    to_budget(w, studio=2_000)
    for user in (w.owner, w.admin):
        html = text(logged_in(user).get(list_url))
        assert "Credit mode: <strong>Workspace budgets</strong>" in html
        assert "Manage credits" in html
        assert re.search(r">Studio</a>.*?<td class=\"nowrap\"[^>]*>2,000</td>", html, re.S)
        assert re.search(r">Primary Workspace</a>.*?<td class=\"nowrap\"[^>]*>8,000</td>", html, re.S)
        assert re.search(r">Spare</a>.*?<td class=\"nowrap\"[^>]*>0</td>", html, re.S)
        assert reverse("billing:credit_mode_switch", args=[w.org.slug]) in html

    member_html = text(logged_in(w.member).get(list_url))
    assert "mode-bar" not in member_html
    assert "Manage credits" not in member_html
    assert "8,000" not in member_html
    assert reconcile() == []


def test_the_credit_mode_page_switches_modes_and_budget_to_shared_sweeps(w):
    url = reverse("billing:credit_mode_switch", args=[w.org.slug])
    page = w.as_owner.get(url)
    assert page.status_code == 200
    assert 'value="budget"' in text(page)

    response = w.as_owner.post(url, {"mode": "budget"})
    assert response.status_code == 302
    assert response["Location"] == reverse("workspaces:list", args=[w.org.slug])
    assert flashes(response) == ["Credit mode is now: Workspace budgets."]
    w.org.refresh_from_db()
    assert w.org.credit_mode == CreditMode.BUDGET
    assert balances(w) == {"Primary Workspace": 10_000, "Studio": 0, "Spare": 0}

    credits_transfer(organization=w.org, source=w.primary, target=w.studio, amount=2_000, actor=w.owner)
    credits_transfer(organization=w.org, source=w.primary, target=w.spare, amount=500, actor=w.owner)
    response = logged_in(w.admin).post(url, {"mode": "shared"}, follow=True)
    assert "Credit mode is now: Shared pool." in text(response)
    w.org.refresh_from_db()
    assert w.org.credit_mode == CreditMode.SHARED
    assert balances(w) == {"Primary Workspace": 10_000, "Studio": 0, "Spare": 0}
    sweep = LedgerTransaction.objects.get(organization=w.org, kind=TransactionKind.SWEEP)
    assert sweep.amount == 2_500
    assert AuditEvent.objects.filter(organization=w.org, action="credits.mode_switched").count() == 2
    assert reconcile() == []


@pytest.mark.parametrize("mode", ["", "nonsense", "SHARED"])
def test_the_credit_mode_page_refuses_garbage(w, mode):
    response = w.as_owner.post(reverse("billing:credit_mode_switch", args=[w.org.slug]), {"mode": mode})
    assert response.status_code == 400
    assert 'class="error"' in text(response)
    w.org.refresh_from_db()
    assert w.org.credit_mode == CreditMode.SHARED
    assert not AuditEvent.objects.filter(organization=w.org, action="credits.mode_switched").exists()


# --- Manage credits -------------------------------------------------------------------------------------------------


def transfer_url(w: SimpleNamespace) -> str:
    return reverse("billing:credits_transfer", args=[w.org.slug])


def test_manage_credits_full_page_and_dialog_fragment(w):
    to_budget(w, studio=2_000)
    page = w.as_owner.get(transfer_url(w))
    assert page.status_code == 200
    html = text(page)
    assert "<html" in html
    assert "<h1>Manage credits</h1>" in html
    assert "Primary Workspace — 8,000 credits" in html
    assert "Studio — 2,000 credits" in html

    dialog = w.as_owner.get(transfer_url(w), **HX_DIALOG)
    assert dialog.status_code == 200
    fragment = text(dialog)
    assert "<html" not in fragment
    assert '<h2 class="confirm-title">Manage credits</h2>' in fragment
    assert 'hx-target="#transfer-preview"' in fragment
    assert f'action="{transfer_url(w)}"' in fragment
    assert 'id="transfer-preview"' in fragment
    assert "Spare — 0 credits" in fragment


def test_manage_credits_dialog_in_shared_mode_points_to_the_credit_mode(w):
    fragment = text(w.as_owner.get(transfer_url(w), **HX_DIALOG))
    assert "The organization uses the shared pool" in fragment
    assert reverse("billing:credit_mode_switch", args=[w.org.slug]) in fragment
    assert "<form" not in fragment


def test_the_preview_shows_the_resulting_balances_and_changes_nothing(w):
    to_budget(w, studio=1_000)
    query = {"source": w.primary.pk, "target": w.studio.pk, "amount": "2000"}
    response = w.as_owner.get(transfer_url(w), query, **HX_PREVIEW)
    assert response.status_code == 200
    fragment = text(response)
    assert fragment.lstrip().startswith('<div id="transfer-preview"')
    assert "<form" not in fragment
    assert re.search(r"<dt>Primary Workspace</dt><dd>7,000 credits</dd>", fragment)
    assert re.search(r"<dt>Studio</dt><dd>3,000 credits</dd>", fragment)
    assert balances(w)["Primary Workspace"] == 9_000
    assert LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.TRANSFER).count() == 1


def _selected(html: str, field: str) -> list[str]:
    select = re.search(rf'<select name="{field}".*?</select>', html, re.S)
    assert select is not None
    return re.findall(r'<option value="(\d+)"[^>]*selected', select.group(0))


@pytest.mark.parametrize("given_source", [None, "studio"])
def test_manage_credits_starts_with_two_different_workspaces(w, given_source):
    """It opened with the same workspace as source and target: a transfer that can only be refused."""
    to_budget(w)
    query = {"source": getattr(w, given_source).pk} if given_source else {}
    html = text(w.as_owner.get(transfer_url(w), query))
    source, target = _selected(html, "source"), _selected(html, "target")
    assert len(source) == 1
    assert len(target) == 1
    assert source != target
    assert source == [str(w.studio.pk if given_source else w.primary.pk)]


def test_the_preview_of_more_than_the_source_has_shows_an_error(w):
    to_budget(w, studio=1_000)
    query = {"source": w.studio.pk, "target": w.spare.pk, "amount": "1001"}
    response = w.as_owner.get(transfer_url(w), query, **HX_PREVIEW)
    assert response.status_code == 200
    fragment = text(response)
    assert "Studio has only 1,000 credits." in fragment
    assert "After the transfer" not in fragment
    assert balances(w) == {"Primary Workspace": 9_000, "Studio": 1_000, "Spare": 0}


def test_a_transfer_moves_the_credits_and_says_so(w):
    to_budget(w)
    response = w.as_owner.post(transfer_url(w), {"source": w.primary.pk, "target": w.studio.pk, "amount": "2000"})
    assert response.status_code == 302
    assert response["Location"] == reverse("workspaces:list", args=[w.org.slug])
    assert flashes(response) == ["Moved 2,000 credits from Primary Workspace to Studio."]
    assert balances(w) == {"Primary Workspace": 8_000, "Studio": 2_000, "Spare": 0}
    event = AuditEvent.objects.get(organization=w.org, action="credits.transferred")
    assert event.after == {"from": "Primary Workspace", "to": "Studio", "amount": 2000}

    # An Admin moves some on, from Studio to Spare; the table shows the new balances.
    response = logged_in(w.admin).post(
        transfer_url(w), {"source": w.studio.pk, "target": w.spare.pk, "amount": "750"}, follow=True
    )
    html = text(response)
    assert "Moved 750 credits from Studio to Spare." in html
    assert re.search(r">Studio</a>.*?<td class=\"nowrap\"[^>]*>1,250</td>", html, re.S)
    assert re.search(r">Spare</a>.*?<td class=\"nowrap\"[^>]*>750</td>", html, re.S)
    assert reconcile() == []


def test_a_transfer_over_the_balance_is_refused_and_changes_nothing(w):
    to_budget(w, studio=1_000)
    before = balances(w)
    response = w.as_owner.post(transfer_url(w), {"source": w.studio.pk, "target": w.spare.pk, "amount": "1500"})
    assert response.status_code == 400
    assert "Studio has only 1,000 credits." in text(response)
    assert balances(w) == before
    assert LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.TRANSFER).count() == 1
    assert reconcile() == []


DIALOG = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "dialog-body"}


def test_a_refused_transfer_in_the_dialog_shows_its_error_in_the_dialog_once(w):
    """htmx swaps only successful answers: the dialog gets its form back (200) with the error, once; without
    JavaScript the page comes back (400), with the error once too."""
    to_budget(w, studio=1_000)
    before = balances(w)
    data = {"source": w.studio.pk, "target": w.spare.pk, "amount": "1500"}
    dialog = w.as_owner.post(transfer_url(w), data, **DIALOG)
    assert dialog.status_code == 200
    fragment = text(dialog)
    assert "<html" not in fragment
    assert '<h2 class="confirm-title">Manage credits</h2>' in fragment
    assert fragment.count("Studio has only 1,000 credits.") == 1
    page = w.as_owner.post(transfer_url(w), data)
    assert page.status_code == 400
    assert text(page).count("Studio has only 1,000 credits.") == 1
    assert balances(w) == before


def test_a_transfer_from_the_dialog_takes_the_whole_page_to_the_workspaces_tab(w):
    to_budget(w)
    data = {"source": w.primary.pk, "target": w.studio.pk, "amount": "2000"}
    response = w.as_owner.post(transfer_url(w), data, **DIALOG)
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("workspaces:list", args=[w.org.slug])
    assert balances(w)["Studio"] == 2_000


def test_a_confirmation_dialog_keeps_a_refusal_inside(w):
    """Every confirmation (confirm.html) posts through htmx into the dialog: a refusal stays there."""
    owner_membership = Membership.objects.get(organization=w.org, user=w.owner)
    url = reverse("orgs:member_remove", args=[w.org.slug, owner_membership.pk])
    dialog = w.as_owner.post(url, **DIALOG)
    assert dialog.status_code == 200
    assert "<html" not in text(dialog)
    assert text(dialog).count('class="form-errors"') == 1
    assert w.as_owner.post(url).status_code == 400  # without JavaScript: the confirmation page, with the error
    assert Membership.objects.get(pk=owner_membership.pk).status == MembershipStatus.ACTIVE


def test_a_transfer_in_shared_mode_is_refused_with_a_clear_error(w):
    """E.g. the dialog was opened in budget mode and someone switched to the shared pool meanwhile."""
    response = w.as_owner.post(transfer_url(w), {"source": w.primary.pk, "target": w.studio.pk, "amount": "100"})
    assert response.status_code == 400
    assert "The organization uses the shared pool" in text(response)
    assert balances(w) == {"Primary Workspace": 10_000, "Studio": 0, "Spare": 0}
    assert not LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.TRANSFER).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "abc"),
        ("amount", "-5"),
        ("amount", "0"),
        ("amount", "1.5"),
        ("amount", ""),
        ("amount", "9" * 30),
        ("source", "999999999"),
        ("source", "not-a-number"),
        ("target", "999999999"),
        ("target", "other-org"),
        ("source", "other-org"),
        ("target", "same"),
        ("target", "archived"),
    ],
)
def test_garbage_transfers_are_form_errors_that_change_nothing(w, field, value):
    to_budget(w, studio=1_000)
    archived = make_workspace(w.org, name="Gone")
    workspace_archive(workspace=archived, actor=w.owner)
    outsider = make_organization(name="Elsewhere")
    foreign = Workspace.objects.get(organization=outsider, is_primary=True)
    credits_grant(organization=outsider, amount=500, actor=None)
    data = {"source": str(w.primary.pk), "target": str(w.studio.pk), "amount": "100"}
    data[field] = {
        "other-org": str(foreign.pk),
        "same": data["source"],
        "archived": str(archived.pk),
    }.get(value, value)
    before = balances(w)

    posted = w.as_owner.post(transfer_url(w), data)
    previewed = w.as_owner.get(transfer_url(w), data, **HX_PREVIEW)

    assert posted.status_code == 400
    assert previewed.status_code == 200
    for response in (posted, previewed):
        assert 'role="alert"' in text(response)
    assert "After the transfer" not in text(previewed)
    assert balances(w) == before
    assert Account.objects.get(workspace=foreign).balance == 500
    assert LedgerTransaction.objects.filter(kind=TransactionKind.TRANSFER).count() == 1
    assert reconcile() == []


# --- limits ---------------------------------------------------------------------------------------------------------


def limits_url(w: SimpleNamespace, ws: Workspace | None = None) -> str:
    return reverse("billing:workspace_limit_set", args=[w.org.slug, (ws or w.studio).slug])


def test_the_limits_page_sets_and_removes_workspace_and_member_limits(w):
    page = w.as_owner.get(limits_url(w))
    assert page.status_code == 200
    html = text(page)
    assert "mia@northwind.test" in html
    assert 'id="ws-limit"' in html  # shared mode: the workspace limit can be set

    response = w.as_owner.post(limits_url(w), {"monthly_limit": "5000"})
    assert response.status_code == 302
    assert flashes(response) == ["Monthly limit of Studio saved."]
    response = w.as_owner.post(limits_url(w), {"member": w.member_ship.pk, "monthly_limit": "300"}, follow=True)
    assert "Monthly limit of mia@northwind.test saved." in text(response)
    assert dict(WorkspaceLimit.objects.filter(workspace=w.studio).values_list("user_id", "monthly_limit")) == {
        None: 5_000,
        w.member.pk: 300,
    }
    charge(organization=w.org, workspace=w.studio, user=w.member, amount=120)
    html = text(w.as_owner.get(limits_url(w)))
    assert 'value="5000"' in html
    assert 'value="300"' in html
    assert 'Spent this month: <span id="workspace-spent">120</span> of 5,000 credits' in html

    # Empty removes the limit.
    w.as_owner.post(limits_url(w), {"member": w.member_ship.pk, "monthly_limit": ""})
    w.as_owner.post(limits_url(w), {"monthly_limit": ""})
    assert not WorkspaceLimit.objects.filter(workspace=w.studio).exists()
    assert AuditEvent.objects.filter(organization=w.org, action="credits.limit_set").count() == 4
    assert reconcile() == []


def test_the_limits_page_shows_what_was_spent_this_month_with_or_without_a_limit(w):
    """Every "spent this month" is the month's spending, whether or not a limit (and so a counter) exists."""
    charge(organization=w.org, workspace=w.studio, user=w.member, amount=400)
    charge(organization=w.org, workspace=w.studio, user=w.owner, amount=21)
    html = text(w.as_owner.get(limits_url(w)))
    assert 'Spent this month: <span id="workspace-spent">421</span>' in html
    assert re.search(r"mia@northwind\.test</strong>.*?<td class=\"member-spent\">400<", html, re.S)
    workspace_limit_set(workspace=w.studio, user=w.member, monthly_limit=500, actor=w.owner)
    html = text(w.as_owner.get(limits_url(w)))
    assert re.search(r"mia@northwind\.test</strong>.*?<td class=\"member-spent\">400<", html, re.S)
    refused = w.as_owner.post(
        reverse("billing:workspace_limit_set", args=[w.org.slug, w.studio.slug]),
        {"member": w.member_ship.pk, "monthly_limit": "399"},
    )
    assert refused.status_code == 302  # a limit below what was spent is allowed: nothing more this month
    with pytest.raises(CreditLimitReached):
        charge(organization=w.org, workspace=w.studio, user=w.member, amount=1)


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "1e3", "9" * 30])
def test_invalid_limits_show_an_error_and_change_nothing(w, value):
    workspace_limit_set(workspace=w.studio, user=w.member, monthly_limit=300, actor=w.owner)
    for data in ({"monthly_limit": value}, {"member": w.member_ship.pk, "monthly_limit": value}):
        response = w.as_owner.post(limits_url(w), data)
        assert response.status_code == 200
        errors = [m for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
        assert errors, data
        assert 'class="flash flash-error"' in text(response)
    assert dict(WorkspaceLimit.objects.filter(workspace=w.studio).values_list("user_id", "monthly_limit")) == {
        w.member.pk: 300
    }


@pytest.mark.parametrize("member", ["999999999", "x", "other-org"])
def test_limits_for_unknown_members_are_404(w, member):
    if member == "other-org":
        member = str(make_organization(name="Elsewhere").memberships.get().pk)
    response = w.as_owner.post(limits_url(w), {"member": member, "monthly_limit": "10"})
    assert response.status_code == 404
    assert not WorkspaceLimit.objects.exists()


def test_the_limits_page_in_budget_mode_explains_the_budget(w):
    to_budget(w)
    html = text(w.as_owner.get(limits_url(w)))
    assert "In workspace budget mode the workspace's own balance is its limit." in html
    assert 'id="ws-limit"' not in html


# --- the Billing page -----------------------------------------------------------------------------------------------


def billing_url(w: SimpleNamespace) -> str:
    return reverse("billing:page", args=[w.org.slug])


def test_the_billing_page_shows_the_plan_invoices_and_the_credit_bank(w, catalog):
    html = text(w.as_owner.get(billing_url(w)))
    assert "No plan" in html
    assert "No invoices yet." in html
    assert re.search(r"Credits in the organization</h2>\s*<p class=\"stat-value\">10,000<", html)
    assert re.search(r"Credit Bank</h2>\s*<p class=\"stat-value\">0<", html)
    for plan in ("Pro", "Teams", "Business"):
        assert f'<h3 class="plan-name">{plan}' in html

    invoice = plan_subscribe(organization=w.org, plan=catalog["pro"], actor=w.owner, gateway_code="manual")
    html = text(w.as_owner.get(billing_url(w)))
    assert "Starts when its invoice is paid." in html
    assert f"<code>{invoice.number}</code>" in html
    assert "status-pending" in html

    invoice_mark_paid(invoice=invoice, actor=None)
    subscription = Subscription.objects.get(organization=w.org)
    html = text(w.as_owner.get(billing_url(w)))
    assert f"Renews on {subscription.current_period_end:%-d %b %Y} with 10,000 credits" in html
    assert "status-active" in html
    assert "Cancel at period end" in html
    assert "Switch to Teams…" in html
    assert re.search(r"Credits in the organization</h2>\s*<p class=\"stat-value\">20,000<", html)
    assert reconcile() == []


def test_subscribe_cancel_and_resume_through_the_pages(w, catalog):
    pro, teams = catalog["pro"], catalog["teams"]
    subscribe = reverse("billing:plan_subscribe", args=[w.org.slug])
    response = w.as_owner.post(subscribe, {"plan": pro.pk, "gateway": "manual", "confirm": "yes"})
    assert response.status_code == 302
    invoice = Invoice.objects.get(organization=w.org)
    assert flashes(response) == [
        f"Pro plan: invoice {invoice.number} (20.00 USD) is open; the credits arrive when it is paid."
    ]
    invoice_mark_paid(invoice=invoice, actor=None)

    response = w.as_owner.post(subscribe, {"plan": pro.pk, "gateway": "manual", "confirm": "yes"})
    assert response.status_code == 400
    assert "You are already on Pro." in text(response)
    assert Invoice.objects.filter(organization=w.org).count() == 1

    cancel = reverse("billing:subscription_cancel", args=[w.org.slug])
    dialog = w.as_owner.get(cancel, **HX_DIALOG)
    assert "Cancel the subscription?" in text(dialog)
    assert "<html" not in text(dialog)
    response = w.as_owner.post(cancel, follow=True)
    html = text(response)
    assert "Your plan ends at the end of this period. Your credits stay." in html
    subscription = Subscription.objects.get(organization=w.org)
    assert subscription.cancel_at_period_end
    assert f"Ends on {subscription.current_period_end:%-d %b %Y}" in html
    assert "Keep my plan" in html

    response = w.as_owner.post(reverse("billing:subscription_resume", args=[w.org.slug]), follow=True)
    assert "Your subscription will renew as usual." in text(response)
    assert not Subscription.objects.get(organization=w.org).cancel_at_period_end
    response = w.as_owner.post(reverse("billing:subscription_resume", args=[w.org.slug]), follow=True)
    assert "There is no scheduled cancellation to undo." in text(response)

    response = logged_in(w.admin).post(subscribe, {"plan": teams.pk, "gateway": "manual", "confirm": "yes"})
    assert response.status_code == 302
    assert Invoice.objects.filter(organization=w.org, plan=teams, status=InvoiceStatus.OPEN).count() == 1
    assert reconcile() == []


def test_cancel_without_a_plan_is_a_clear_error(w):
    response = w.as_owner.post(reverse("billing:subscription_cancel", args=[w.org.slug]))
    assert response.status_code == 400
    assert "There is no active subscription to cancel." in text(response)


@pytest.mark.parametrize(
    "data",
    [{"plan": "999999", "gateway": "manual"}, {"plan": "abc", "gateway": "manual"}, {"gateway": "manual"}],
)
def test_garbage_purchases_are_form_errors(w, data):
    for name in ("billing:credits_buy", "billing:plan_subscribe"):
        response = w.as_owner.post(reverse(name, args=[w.org.slug]), data)
        assert response.status_code == 400
        assert 'class="error"' in text(response)
    assert not Invoice.objects.exists()


def test_buying_a_pack_from_the_buy_page(w, catalog, settings):
    buy = reverse("billing:credits_buy", args=[w.org.slug])
    page = text(w.as_owner.get(buy))
    assert "5,000 credits — 12.00 USD" in page
    response = w.as_owner.post(buy, {"plan": catalog["pack-5k"].pk, "gateway": "manual"})
    assert response.status_code == 302
    assert response["Location"] == billing_url(w)
    invoice = Invoice.objects.get(organization=w.org)
    assert (invoice.purpose, invoice.status) == (InvoicePurpose.PACK, InvoiceStatus.OPEN)
    assert balances(w)["Primary Workspace"] == 10_000

    settings.DEBUG = True
    page = text(w.as_owner.get(buy))
    assert 'value="demo"' in page
    response = logged_in(w.admin).post(buy, {"plan": catalog["pack-25k"].pk, "gateway": "demo"}, follow=True)
    html = text(response)
    assert "25,000 credits: 25,000 credits were added to the Primary Workspace." in html
    assert re.search(r"Credits in the organization</h2>\s*<p class=\"stat-value\">35,000<", html)
    assert reconcile() == []


def test_buying_leads_back_to_the_page_of_the_app_it_was_made_from(w, catalog):
    overview = reverse("workspaces:overview", args=[w.org.slug, w.primary.slug])
    response = w.as_owner.post(
        reverse("billing:credits_buy", args=[w.org.slug]),
        {"plan": catalog["pack-5k"].pk, "gateway": "manual", "next": overview},
    )
    assert response.status_code == 302
    assert response["Location"] == overview


def test_buying_does_not_redirect_to_another_site(w, catalog):
    response = w.as_owner.post(
        reverse("billing:credits_buy", args=[w.org.slug]),
        {"plan": catalog["pack-5k"].pk, "gateway": "manual", "next": "https://evil.example/phish"},
    )
    assert response.status_code == 302
    assert not response["Location"].startswith("https://evil.example")


# --- query counts ---------------------------------------------------------------------------------------------------


def build_org(*, name: str, members: int, workspaces: int, invoices: int, catalog: dict) -> SimpleNamespace:
    owner = UserFactory()
    org = make_organization(owner=owner, name=name)
    spaces = [make_workspace(org, name=f"{name} {i}") for i in range(workspaces)]
    for i in range(members):
        membership = make_member(org, workspaces={spaces[i % len(spaces)]: WorkspaceRole.MEMBER})
        if i % 2:
            workspace_limit_set(workspace=spaces[0], user=membership.user, monthly_limit=100 + i, actor=owner)
    make_member(org, role=OrganizationRole.ADMIN)
    credits_grant(organization=org, amount=1_000_000, actor=owner)
    for i in range(invoices):
        plan = catalog["pack-5k"] if i % 2 else catalog["pack-25k"]
        invoice = Invoice.objects.create(
            organization=org,
            number=f"T-{name}-{i}",
            purpose=InvoicePurpose.PACK,
            plan=plan,
            credits=plan.credits,
            amount_cents=plan.price_cents,
            currency=plan.currency,
            gateway="manual",
        )
        if i % 3 == 0:
            invoice_mark_paid(invoice=invoice, actor=None)
    plan_subscribe(organization=org, plan=catalog["pro"], actor=owner, gateway_code="manual")
    org = credit_mode_switch(organization=org, mode=CreditMode.BUDGET, actor=owner)
    for space in spaces:
        credits_transfer(
            organization=org,
            source=Workspace.objects.get(organization=org, is_primary=True),
            target=space,
            amount=1_000,
            actor=owner,
        )
    return SimpleNamespace(org=org, owner=owner, first=spaces[0])


def count_queries(client: Client, url: str, **headers) -> int:
    client.get(url, **headers)  # warm: the session remembers the organization
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(queries)


def test_billing_limits_and_transfer_pages_cost_constant_queries(catalog):
    small = build_org(name="Small", members=2, workspaces=2, invoices=1, catalog=catalog)
    large = build_org(name="Large", members=30, workspaces=12, invoices=40, catalog=catalog)
    measured = {}
    for label, org in (("small", small), ("large", large)):
        client = logged_in(org.owner)
        transfer = reverse("billing:credits_transfer", args=[org.org.slug])
        measured[label] = {
            "billing": count_queries(client, reverse("billing:page", args=[org.org.slug])),
            "limits": count_queries(
                client, reverse("billing:workspace_limit_set", args=[org.org.slug, org.first.slug])
            ),
            "transfer dialog": count_queries(client, transfer, **HX_DIALOG),
            "plan confirmation": count_queries(
                client,
                f"{reverse('billing:plan_subscribe', args=[org.org.slug])}?plan={catalog['teams'].pk}",
                **HX_DIALOG,
            ),
            "transfer page": count_queries(client, transfer),
            "transfer preview": count_queries(
                client,
                f"{transfer}?source={org.first.pk}&target="
                f"{Workspace.objects.get(organization=org.org, is_primary=True).pk}&amount=10",
                **HX_PREVIEW,
            ),
        }
    assert measured["small"] == measured["large"], measured
    assert max(measured["large"].values()) <= 14, measured
    assert Membership.objects.filter(organization=large.org).count() == 32
    assert reconcile() == []


def test_a_dialog_done_on_its_own_page_at_an_anchor_reloads_that_page(w):
    """Revoking a workspace API key from its settings page: going to the same page's #anchor would not reload it."""
    url = reverse("workspaces:settings", args=[w.org.slug, w.studio.slug])
    key, _ = api_key_create(workspace=w.studio, actor=w.owner, name="Image service")
    revoke = reverse("workspaces:api_key_revoke", args=[w.org.slug, w.studio.slug, key.pk])
    response = w.as_owner.post(revoke, HTTP_HX_CURRENT_URL=f"http://testserver{url}", **DIALOG)
    assert response.status_code == 204
    assert response["HX-Refresh"] == "true"
    assert "HX-Redirect" not in response
