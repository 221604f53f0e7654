"""The billing admin: staff read the ledger (never edit it), edit the catalog, mark invoices paid or void them, and
grant or refund credits through the services, with a reason (audited). Staff without billing permissions cannot.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from billing.catalog import plans_ensure_defaults
from billing.ledger import charge, credits_grant, hold_place
from billing.models import (
    Account,
    Hold,
    Invoice,
    InvoiceStatus,
    LedgerTransaction,
    PackLot,
    Plan,
    Subscription,
    SubscriptionStatus,
    TransactionKind,
)
from billing.reconcile import reconcile
from billing.services import credits_buy, invoice_mark_paid, plan_subscribe
from orgs.models import AuditEvent, User
from tests.factories import make_organization
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

MODELS = ["account", "ledgertransaction", "hold", "plan", "subscription", "invoice", "packlot"]


@pytest.fixture(autouse=True)
def catalog():
    plans_ensure_defaults()
    return {plan.code: plan for plan in Plan.objects.all()}


@pytest.fixture
def staff():
    user = User.objects.create_superuser("staff@qolaba.test", "staff-password-1")
    client = Client()
    client.force_login(user)
    return SimpleNamespace(user=user, client=client)


@pytest.fixture
def w(catalog):
    """An organization with a grant, a charge, a pending hold, a paid subscription, a paid pack and an open pack."""
    org = make_organization(name="Acme Studio")
    owner = org.created_by
    primary = Workspace.objects.get(organization=org, is_primary=True)
    credits_grant(organization=org, amount=1_000, actor=owner)
    charged = charge(organization=org, workspace=primary, user=owner, amount=500)
    hold_place(organization=org, workspace=primary, user=owner, amount=100)
    invoice_mark_paid(
        invoice=plan_subscribe(organization=org, plan=catalog["pro"], actor=owner, gateway_code="manual"), actor=None
    )
    invoice_mark_paid(
        invoice=credits_buy(organization=org, plan=catalog["pack-5k"], actor=owner, gateway_code="manual"), actor=None
    )
    open_invoice = credits_buy(organization=org, plan=catalog["pack-25k"], actor=owner, gateway_code="manual")
    return SimpleNamespace(
        org=org,
        owner=owner,
        primary=primary,
        charge=LedgerTransaction.objects.get(pk=charged.transaction_id),
        open_invoice=open_invoice,
        catalog=catalog,
    )


def pool(w) -> int:
    return Account.objects.get(workspace=w.primary).balance


def flashes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- reading --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_every_billing_changelist_and_object_page_opens(staff, w, model):
    response = staff.client.get(reverse(f"admin:billing_{model}_changelist"))
    assert response.status_code == 200
    obj = {
        "account": Account.objects.filter(organization=w.org).first(),
        "ledgertransaction": w.charge,
        "hold": Hold.objects.get(organization=w.org),
        "plan": w.catalog["pro"],
        "subscription": Subscription.objects.get(organization=w.org),
        "invoice": w.open_invoice,
        "packlot": PackLot.objects.get(organization=w.org),
    }[model]
    assert staff.client.get(reverse(f"admin:billing_{model}_change", args=[obj.pk])).status_code == 200
    assert staff.client.get(reverse(f"admin:billing_{model}_changelist"), {"q": "Acme"}).status_code == 200


def test_the_ledger_changelist_offers_grant_and_refund_links(staff, w):
    html = staff.client.get(reverse("admin:billing_ledgertransaction_changelist")).content.decode()
    assert reverse("admin:billing_grant") in html
    assert reverse("admin:billing_refund", args=[w.charge.pk]) in html
    grant = LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.GRANT).get()
    assert reverse("admin:billing_refund", args=[grant.pk]) not in html  # only charges and captures


@pytest.mark.parametrize("model", ["account", "ledgertransaction", "hold", "subscription", "packlot"])
def test_the_ledger_is_read_only(staff, w, model):
    obj = {
        "account": Account.objects.get(workspace=w.primary),
        "ledgertransaction": w.charge,
        "hold": Hold.objects.get(organization=w.org),
        "subscription": Subscription.objects.get(organization=w.org),
        "packlot": PackLot.objects.get(organization=w.org),
    }[model]
    client = staff.client
    assert client.get(reverse(f"admin:billing_{model}_add")).status_code == 403
    assert client.post(reverse(f"admin:billing_{model}_add"), {}).status_code == 403
    assert client.get(reverse(f"admin:billing_{model}_delete", args=[obj.pk])).status_code == 403
    assert client.post(reverse(f"admin:billing_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    change_url = reverse(f"admin:billing_{model}_change", args=[obj.pk])
    assert client.post(change_url, {"balance": "999999", "amount": "1"}).status_code == 403
    page = client.get(change_url).content.decode()
    assert 'name="_save"' not in page
    changelist = client.get(reverse(f"admin:billing_{model}_changelist")).content.decode()
    assert reverse(f"admin:billing_{model}_add") not in changelist
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert pool(w) == 1_000 - 500 - 100 + 10_000 + 5_000
    assert reconcile() == []


def test_plans_are_edited_but_never_deleted(staff, w):
    plan = w.catalog["pro"]
    assert staff.client.get(reverse("admin:billing_plan_delete", args=[plan.pk])).status_code == 403
    assert staff.client.get(reverse("admin:billing_plan_add")).status_code == 200
    assert Plan.objects.filter(pk=plan.pk).exists()


# --- granting -------------------------------------------------------------------------------------------------------


def test_staff_grant_credits_with_a_reason(staff, w):
    url = reverse("admin:billing_grant")
    page = staff.client.get(url, {"organization": w.org.pk})
    assert page.status_code == 200
    assert "Grant credits" in page.content.decode()
    before = pool(w)

    response = staff.client.post(url, {"organization": w.org.pk, "amount": "2500", "reason": "  Outage goodwill  "})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_ledgertransaction_changelist")
    assert flashes(response) == ["Granted 2,500 credits."]
    assert pool(w) == before + 2_500
    grant = LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.GRANT).latest("pk")
    assert (grant.amount, grant.actor, grant.memo) == (2_500, staff.user, "Outage goodwill")
    event = AuditEvent.objects.get(organization=w.org, action="credits.granted")
    assert event.actor == staff.user
    assert event.after == {"amount": 2500, "reason": "Outage goodwill"}
    assert reconcile() == []


@pytest.mark.parametrize(
    "data",
    [
        {"amount": "100", "reason": ""},
        {"amount": "100", "reason": "   "},
        {"amount": "100"},
        {"amount": "0", "reason": "x"},
        {"amount": "-100", "reason": "x"},
        {"amount": "ten", "reason": "x"},
        {"amount": "1.5", "reason": "x"},
        {"amount": "9" * 20, "reason": "x"},
    ],
)
def test_a_grant_without_a_reason_or_with_a_bad_amount_is_refused(staff, w, data):
    before = pool(w)
    response = staff.client.post(reverse("admin:billing_grant"), {"organization": w.org.pk, **data})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert pool(w) == before
    assert not AuditEvent.objects.filter(action="credits.granted").exists()
    assert LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.GRANT).count() == 1


def test_deleted_organizations_cannot_be_granted_credits(staff, w):
    w.org.deleted_at = w.org.created_at
    w.org.save(update_fields=["deleted_at"])
    response = staff.client.post(
        reverse("admin:billing_grant"), {"organization": w.org.pk, "amount": "5", "reason": "x"}
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.GRANT).count() == 1


# --- refunds --------------------------------------------------------------------------------------------------------


def test_staff_refund_part_of_a_charge_but_never_more_than_was_charged(staff, w):
    url = reverse("admin:billing_refund", args=[w.charge.pk])
    assert staff.client.get(url).status_code == 200
    before = pool(w)

    response = staff.client.post(url, {"amount": "200", "reason": "Failed render"})
    assert response.status_code == 302
    assert flashes(response) == ["Refunded 200 credits."]
    assert pool(w) == before + 200
    refund = LedgerTransaction.objects.get(organization=w.org, kind=TransactionKind.REFUND)
    assert (refund.amount, refund.reverses, refund.actor, refund.memo) == (200, w.charge, staff.user, "Failed render")
    event = AuditEvent.objects.get(organization=w.org, action="credits.refunded")
    assert event.after == {"amount": 200, "of_transaction": w.charge.pk, "reason": "Failed render"}

    response = staff.client.post(url, {"amount": "301", "reason": "Too much"})
    assert response.status_code == 200
    assert "At most 300 credits of this charge can be refunded." in response.content.decode()
    assert pool(w) == before + 200

    response = staff.client.post(url, {"amount": "300", "reason": "The rest"})
    assert response.status_code == 302
    assert pool(w) == before + 500
    response = staff.client.post(url, {"amount": "1", "reason": "Once more"})
    assert "At most 0 credits" in response.content.decode()
    assert LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.REFUND).count() == 2
    assert reconcile() == []


def test_refunds_need_a_reason_and_a_charge(staff, w):
    url = reverse("admin:billing_refund", args=[w.charge.pk])
    response = staff.client.post(url, {"amount": "10", "reason": ""})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()

    grant = LedgerTransaction.objects.get(organization=w.org, kind=TransactionKind.GRANT)
    response = staff.client.post(reverse("admin:billing_refund", args=[grant.pk]), {"amount": "10", "reason": "x"})
    assert response.status_code == 200
    assert "Only charges and captures can be refunded." in response.content.decode()

    assert staff.client.get(reverse("admin:billing_refund", args=[999_999_999])).status_code == 404
    assert not LedgerTransaction.objects.filter(kind=TransactionKind.REFUND).exists()
    assert reconcile() == []


# --- invoices -------------------------------------------------------------------------------------------------------


def invoice_action(client: Client, action: str, invoices: list[Invoice]):
    return client.post(
        reverse("admin:billing_invoice_changelist"),
        {"action": action, "_selected_action": [str(i.pk) for i in invoices]},
        follow=True,
    )


def test_the_mark_paid_action_grants_the_credits(staff, w):
    before = pool(w)
    paid_already = Invoice.objects.filter(organization=w.org, status=InvoiceStatus.PAID).first()
    response = invoice_action(staff.client, "mark_paid", [w.open_invoice, paid_already])
    assert response.status_code == 200
    assert "1 invoice(s) marked paid; their credits were granted." in response.content.decode()
    w.open_invoice.refresh_from_db()
    assert w.open_invoice.status == InvoiceStatus.PAID
    assert pool(w) == before + 25_000
    assert LedgerTransaction.objects.filter(organization=w.org, kind=TransactionKind.PURCHASE).count() == 3
    assert PackLot.objects.filter(organization=w.org).count() == 2

    invoice_action(staff.client, "mark_paid", [w.open_invoice])  # again: nothing more
    assert pool(w) == before + 25_000
    assert reconcile() == []


def test_the_void_action_voids_open_invoices_only(staff, w):
    renewal_like = plan_subscribe(organization=w.org, plan=w.catalog["teams"], actor=w.owner, gateway_code="manual")
    paid = Invoice.objects.filter(organization=w.org, status=InvoiceStatus.PAID).first()
    response = invoice_action(staff.client, "void", [w.open_invoice, renewal_like, paid])
    assert "2 invoice(s) voided." in response.content.decode()
    statuses = dict(Invoice.objects.filter(organization=w.org).values_list("pk", "status"))
    assert statuses[w.open_invoice.pk] == statuses[renewal_like.pk] == InvoiceStatus.VOID
    assert statuses[paid.pk] == InvoiceStatus.PAID
    assert Subscription.objects.get(organization=w.org).plan == w.catalog["pro"]
    assert Subscription.objects.get(organization=w.org).status == SubscriptionStatus.ACTIVE
    assert reconcile() == []


# --- staff without billing permissions ------------------------------------------------------------------------------


@pytest.fixture
def clerk():
    """Staff, but with no billing permission at all."""
    user = User.objects.create_user("clerk@qolaba.test", "clerk-password-1", is_staff=True)
    client = Client()
    client.force_login(user)
    return SimpleNamespace(user=user, client=client)


def test_staff_without_billing_permissions_cannot_grant_or_refund(clerk, w):
    before = pool(w)
    response = clerk.client.get(reverse("admin:billing_grant"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_ledgertransaction_changelist")
    response = clerk.client.post(
        reverse("admin:billing_grant"), {"organization": w.org.pk, "amount": "9", "reason": "x"}
    )
    assert response.status_code == 302
    assert "You may not grant credits." in flashes(response)
    response = clerk.client.post(reverse("admin:billing_refund", args=[w.charge.pk]), {"amount": "9", "reason": "x"})
    assert response.status_code == 302
    assert clerk.client.get(reverse("admin:billing_ledgertransaction_changelist")).status_code == 403
    assert clerk.client.get(reverse("admin:billing_invoice_changelist")).status_code == 403
    invoice_action(clerk.client, "mark_paid", [w.open_invoice])
    assert Invoice.objects.get(pk=w.open_invoice.pk).status == InvoiceStatus.OPEN
    assert pool(w) == before
    assert not LedgerTransaction.objects.filter(kind=TransactionKind.REFUND).exists()
    assert not AuditEvent.objects.filter(action__in=["credits.granted", "credits.refunded"]).exists()


def test_anonymous_visitors_are_sent_to_the_admin_login(w):
    response = Client().get(reverse("admin:billing_grant"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_who_may_only_view_invoices_cannot_mark_them_paid(clerk, w):
    clerk.user.user_permissions.add(Permission.objects.get(codename="view_invoice", content_type__app_label="billing"))
    before = pool(w)
    assert clerk.client.get(reverse("admin:billing_invoice_changelist")).status_code == 200
    invoice_action(clerk.client, "mark_paid", [w.open_invoice])
    assert Invoice.objects.get(pk=w.open_invoice.pk).status == InvoiceStatus.OPEN
    assert pool(w) == before
