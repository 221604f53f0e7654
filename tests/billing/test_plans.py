"""Plans, subscriptions, invoices, credit packs and the Credit Bank (billing.services) on PostgreSQL.

Subscribing opens an invoice (manual gateway) that grants nothing until it is paid; paying grants the credits once
and starts a one-month period; the demo gateway pays at once, and only while DEBUG is on; upgrades, cancellation at
period end, resuming; the renewal job opens one invoice per period and its payment grants once; packs last six
months and their unused credits (first in, first out) move to the Credit Bank, which the next purchase unlocks.

Every test ends with `reconcile() == []`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from billing.catalog import plans_ensure_defaults
from billing.ledger import charge, credits_transfer
from billing.models import (
    Account,
    AccountKind,
    Invoice,
    InvoicePurpose,
    InvoiceStatus,
    LedgerTransaction,
    PackLot,
    Plan,
    Subscription,
    SubscriptionStatus,
    TransactionKind,
)
from billing.reconcile import reconcile
from billing.services import (
    credit_mode_switch,
    credits_buy,
    invoice_mark_paid,
    invoice_void,
    packs_expire_due,
    plan_subscribe,
    subscription_cancel,
    subscription_resume,
    subscriptions_renew_due,
)
from orgs.models import AuditEvent, CreditMode
from tests.factories import UserFactory, make_organization, make_workspace
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def catalog():
    plans_ensure_defaults()
    return {plan.code: plan for plan in Plan.objects.all()}


@pytest.fixture
def ctx(catalog):
    owner = UserFactory()
    org = make_organization(owner=owner)
    primary = Workspace.objects.get(organization=org, is_primary=True)
    return SimpleNamespace(
        org=org,
        owner=owner,
        primary=primary,
        pro=catalog["pro"],
        teams=catalog["teams"],
        pack=catalog["pack-5k"],
    )


def balance_of(workspace: Workspace) -> int:
    return Account.objects.get(workspace=workspace).balance


def bank(ctx) -> int:
    return Account.objects.get(organization=ctx.org, kind=AccountKind.BANK).balance


def spend(ctx, amount: int, workspace: Workspace | None = None) -> None:
    charge(organization=ctx.org, workspace=workspace or ctx.primary, user=ctx.owner, amount=amount)


def txns(ctx, kind: TransactionKind) -> list[LedgerTransaction]:
    return list(LedgerTransaction.objects.filter(organization=ctx.org, kind=kind).order_by("pk"))


def subscribe_and_pay(ctx, plan: Plan) -> Invoice:
    invoice = plan_subscribe(organization=ctx.org, plan=plan, actor=ctx.owner, gateway_code="manual")
    return invoice_mark_paid(invoice=invoice, actor=None)


def buy_and_pay(ctx, plan: Plan | None = None) -> Invoice:
    invoice = credits_buy(organization=ctx.org, plan=plan or ctx.pack, actor=ctx.owner, gateway_code="manual")
    return invoice_mark_paid(invoice=invoice, actor=None)


def subscription(ctx) -> Subscription:
    return Subscription.objects.get(organization=ctx.org)


# --- subscribing and paying -----------------------------------------------------------------------------------------


def test_subscribing_with_the_manual_gateway_opens_an_invoice_and_grants_nothing(ctx):
    invoice = plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")

    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.purpose == InvoicePurpose.SUBSCRIPTION
    assert (invoice.credits, invoice.amount_cents, invoice.gateway) == (ctx.pro.credits, ctx.pro.price_cents, "manual")
    assert invoice.grant_transaction is None
    assert balance_of(ctx.primary) == 0
    assert not LedgerTransaction.objects.filter(organization=ctx.org).exists()
    sub = subscription(ctx)
    assert (sub.status, sub.plan, sub.current_period_end) == (SubscriptionStatus.INCOMPLETE, ctx.pro, None)
    assert not sub.is_active
    assert AuditEvent.objects.filter(organization=ctx.org, action="billing.invoice_opened").count() == 1
    assert reconcile() == []


def test_paying_the_invoice_grants_the_credits_exactly_once_and_starts_a_one_month_period(ctx):
    with time_machine.travel(T0, tick=False):
        invoice = plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")
        paid = invoice_mark_paid(invoice=invoice, actor=None)
        again = invoice_mark_paid(invoice=invoice, actor=None)

    assert paid.status == again.status == InvoiceStatus.PAID
    assert paid.paid_at == T0
    assert balance_of(ctx.primary) == ctx.pro.credits
    purchases = txns(ctx, TransactionKind.PURCHASE)
    assert len(purchases) == 1
    assert purchases[0].amount == ctx.pro.credits
    assert purchases[0].idempotency_key == f"invoice:{invoice.pk}"
    assert again.grant_transaction_id == purchases[0].pk
    sub = subscription(ctx)
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.plan == ctx.pro
    assert sub.current_period_start == T0
    assert sub.current_period_end == datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
    assert AuditEvent.objects.filter(organization=ctx.org, action="billing.invoice_paid").count() == 1
    assert reconcile() == []


def test_a_period_starting_on_the_31st_ends_on_the_last_day_of_a_shorter_month(ctx):
    with time_machine.travel(datetime(2026, 1, 31, 12, 0, tzinfo=UTC), tick=False):
        subscribe_and_pay(ctx, ctx.pro)
    assert subscription(ctx).current_period_end == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert reconcile() == []


def test_the_demo_gateway_pays_at_once_when_debug_is_on(ctx, settings):
    settings.DEBUG = True
    invoice = plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="demo")
    assert invoice.status == InvoiceStatus.PAID
    assert subscription(ctx).status == SubscriptionStatus.ACTIVE

    pack = credits_buy(organization=ctx.org, plan=ctx.pack, actor=ctx.owner, gateway_code="demo")
    assert pack.status == InvoiceStatus.PAID
    assert balance_of(ctx.primary) == ctx.pro.credits + ctx.pack.credits
    assert PackLot.objects.filter(invoice=pack).exists()
    assert reconcile() == []


def test_the_demo_gateway_is_refused_when_debug_is_off(ctx, settings):
    settings.DEBUG = False
    for call in (credits_buy, plan_subscribe):
        plan = ctx.pack if call is credits_buy else ctx.pro
        with pytest.raises(ValidationError) as refused:
            call(organization=ctx.org, plan=plan, actor=ctx.owner, gateway_code="demo")
        assert "gateway" in refused.value.message_dict
    with pytest.raises(ValidationError):
        credits_buy(organization=ctx.org, plan=ctx.pack, actor=ctx.owner, gateway_code="no-such-gateway")
    assert not Invoice.objects.filter(organization=ctx.org).exists()
    assert not Subscription.objects.filter(organization=ctx.org).exists()

    # Through the page: the demo gateway is not even a choice.
    client = Client()
    client.force_login(ctx.owner)
    url = reverse("billing:credits_buy", args=[ctx.org.slug])
    assert b'value="demo"' not in client.get(url).content
    response = client.post(url, {"plan": ctx.pack.pk, "gateway": "demo"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Invoice.objects.filter(organization=ctx.org).exists()
    assert balance_of(ctx.primary) == 0
    assert reconcile() == []


def test_only_monthly_plans_are_subscribed_and_only_packs_bought(ctx):
    with pytest.raises(ValidationError):
        plan_subscribe(organization=ctx.org, plan=ctx.pack, actor=ctx.owner, gateway_code="manual")
    with pytest.raises(ValidationError):
        credits_buy(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")
    retired = Plan.objects.create(
        code="retired-pack", name="Old", kind="pack", credits=10, price_cents=1, is_active=False
    )
    with pytest.raises(ValidationError):
        credits_buy(organization=ctx.org, plan=retired, actor=ctx.owner, gateway_code="manual")
    assert not Invoice.objects.filter(organization=ctx.org).exists()
    assert reconcile() == []


# --- upgrade, same plan, cancel, resume -----------------------------------------------------------------------------


def test_upgrading_to_another_monthly_plan_takes_effect_when_its_invoice_is_paid(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        clock.shift(timedelta(days=12))
        upgrade = plan_subscribe(organization=ctx.org, plan=ctx.teams, actor=ctx.owner, gateway_code="manual")
        assert upgrade.status == InvoiceStatus.OPEN
        sub = subscription(ctx)
        assert (sub.plan, sub.status) == (ctx.pro, SubscriptionStatus.ACTIVE)  # still Pro until paid
        assert upgrade.subscription_id == sub.pk

        invoice_mark_paid(invoice=upgrade, actor=None)

    sub = subscription(ctx)
    assert (sub.plan, sub.status) == (ctx.teams, SubscriptionStatus.ACTIVE)
    assert sub.current_period_start == T0 + timedelta(days=12)
    assert sub.current_period_end == datetime(2026, 2, 22, 9, 30, tzinfo=UTC)
    assert balance_of(ctx.primary) == ctx.pro.credits + ctx.teams.credits
    assert len(txns(ctx, TransactionKind.PURCHASE)) == 2
    assert Subscription.objects.filter(organization=ctx.org).count() == 1
    assert reconcile() == []


def test_subscribing_to_the_plan_you_are_on_is_refused(ctx):
    subscribe_and_pay(ctx, ctx.pro)
    with pytest.raises(ValidationError) as refused:
        plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")
    assert refused.value.message_dict["plan"] == ["You are already on Pro."]
    assert Invoice.objects.filter(organization=ctx.org).count() == 1
    assert balance_of(ctx.primary) == ctx.pro.credits
    assert reconcile() == []


def test_cancel_at_period_end_keeps_the_plan_until_then_and_the_renewal_job_ends_it(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        end = subscription(ctx).current_period_end
        sub = subscription_cancel(organization=ctx.org, actor=ctx.owner)
        assert sub.cancel_at_period_end
        assert sub.status == SubscriptionStatus.ACTIVE
        subscription_cancel(organization=ctx.org, actor=ctx.owner)  # twice: still one audit event
        assert AuditEvent.objects.filter(action="billing.subscription_cancel_scheduled").count() == 1

        clock.move_to(end - timedelta(minutes=1))
        assert subscriptions_renew_due() == 0
        assert subscription(ctx).status == SubscriptionStatus.ACTIVE  # access stays until the end

        clock.move_to(end + timedelta(minutes=5))
        assert subscriptions_renew_due() == 0
        assert subscriptions_renew_due() == 0

    sub = subscription(ctx)
    assert sub.status == SubscriptionStatus.CANCELED
    assert sub.canceled_at == end + timedelta(minutes=5)
    assert not Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL).exists()
    assert balance_of(ctx.primary) == ctx.pro.credits  # the credits stay
    assert AuditEvent.objects.filter(organization=ctx.org, action="billing.subscription_ended").count() == 1
    with pytest.raises(ValidationError):
        subscription_cancel(organization=ctx.org, actor=ctx.owner)

    # Subscribing again after the end starts over.
    invoice = plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")
    assert subscription(ctx).status == SubscriptionStatus.INCOMPLETE
    assert not subscription(ctx).cancel_at_period_end
    invoice_mark_paid(invoice=invoice, actor=None)
    assert subscription(ctx).status == SubscriptionStatus.ACTIVE
    assert reconcile() == []


def test_resume_undoes_the_cancellation_and_the_plan_renews(ctx):
    with pytest.raises(ValidationError):
        subscription_resume(organization=ctx.org, actor=ctx.owner)  # nothing to resume
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        with pytest.raises(ValidationError):
            subscription_resume(organization=ctx.org, actor=ctx.owner)  # not canceled
        subscription_cancel(organization=ctx.org, actor=ctx.owner)
        sub = subscription_resume(organization=ctx.org, actor=ctx.owner)
        assert not sub.cancel_at_period_end
        end = sub.current_period_end
        clock.move_to(end + timedelta(minutes=1))
        assert subscriptions_renew_due() == 1
    assert subscription(ctx).status == SubscriptionStatus.ACTIVE
    assert Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL, period_start=end).count() == 1
    assert AuditEvent.objects.filter(organization=ctx.org, action="billing.subscription_resumed").count() == 1
    assert reconcile() == []


def test_cancel_without_an_active_subscription_is_refused(ctx):
    with pytest.raises(ValidationError):
        subscription_cancel(organization=ctx.org, actor=ctx.owner)
    plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")  # incomplete
    with pytest.raises(ValidationError):
        subscription_cancel(organization=ctx.org, actor=ctx.owner)
    assert reconcile() == []


# --- renewals -------------------------------------------------------------------------------------------------------


def test_the_renewal_job_opens_one_invoice_per_period_and_its_payment_grants_once(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        first_end = subscription(ctx).current_period_end

        clock.move_to(first_end + timedelta(hours=1))
        assert [subscriptions_renew_due() for _ in range(2)] == [1, 0]
        assert [subscriptions_renew_due() for _ in range(2)] == [0, 0]  # twice more at the same frozen time

        renewals = list(Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL))
        assert len(renewals) == 1
        renewal = renewals[0]
        assert (renewal.status, renewal.gateway, renewal.period_start) == (InvoiceStatus.OPEN, "manual", first_end)
        assert renewal.credits == ctx.pro.credits
        assert balance_of(ctx.primary) == ctx.pro.credits  # nothing granted before payment

        invoice_mark_paid(invoice=renewal, actor=None)
        invoice_mark_paid(invoice=renewal, actor=None)
        assert subscriptions_renew_due() == 0  # the new period has not ended

        assert balance_of(ctx.primary) == 2 * ctx.pro.credits  # unused credits roll over
        assert [t.amount for t in txns(ctx, TransactionKind.RENEWAL)] == [ctx.pro.credits]
        sub = subscription(ctx)
        assert sub.current_period_start == first_end  # periods stay aligned even when paid late
        second_end = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
        assert sub.current_period_end == second_end

        clock.move_to(second_end + timedelta(seconds=1))
        assert subscriptions_renew_due() == 1
        assert subscriptions_renew_due() == 0

    assert list(
        Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL)
        .order_by("period_start")
        .values_list("period_start", flat=True)
    ) == [first_end, second_end]
    assert len(txns(ctx, TransactionKind.RENEWAL)) == 1
    assert reconcile() == []


def test_an_unpaid_renewal_invoice_is_not_opened_again_later(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        end = subscription(ctx).current_period_end
        clock.move_to(end + timedelta(hours=1))
        assert subscriptions_renew_due() == 1
        clock.move_to(end + timedelta(days=3))
        assert subscriptions_renew_due() == 0
    assert Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL).count() == 1
    assert reconcile() == []


def test_renewals_of_a_demo_subscription_pay_at_once_and_fall_back_to_manual_without_debug(ctx, settings):
    settings.DEBUG = True
    with time_machine.travel(T0, tick=False) as clock:
        plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="demo")
        first_end = subscription(ctx).current_period_end
        clock.move_to(first_end + timedelta(minutes=1))
        assert subscriptions_renew_due() == 1
        assert subscriptions_renew_due() == 0
        assert balance_of(ctx.primary) == 2 * ctx.pro.credits
        assert len(txns(ctx, TransactionKind.RENEWAL)) == 1

        settings.DEBUG = False
        clock.move_to(subscription(ctx).current_period_end + timedelta(minutes=1))
        assert subscriptions_renew_due() == 1
    last = Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL).order_by("-period_start")[0]
    assert (last.gateway, last.status) == ("manual", InvoiceStatus.OPEN)
    assert balance_of(ctx.primary) == 2 * ctx.pro.credits
    assert reconcile() == []


def test_the_renewal_job_ends_the_plan_of_a_deleted_organization(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        ctx.org.deleted_at = T0 + timedelta(days=1)
        ctx.org.save(update_fields=["deleted_at"])
        clock.move_to(subscription(ctx).current_period_end + timedelta(minutes=1))
        assert subscriptions_renew_due() == 0
    assert subscription(ctx).status == SubscriptionStatus.CANCELED
    assert not Invoice.objects.filter(organization=ctx.org, purpose=InvoicePurpose.RENEWAL).exists()
    assert reconcile() == []


# --- packs, expiry, the Credit Bank ---------------------------------------------------------------------------------


def test_a_pack_purchase_creates_a_lot_valid_six_months(ctx):
    with time_machine.travel(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tick=False):
        invoice = credits_buy(organization=ctx.org, plan=ctx.pack, actor=ctx.owner, gateway_code="manual")
        assert invoice.purpose == InvoicePurpose.PACK
        assert not PackLot.objects.filter(organization=ctx.org).exists()  # nothing before payment
        assert not Subscription.objects.filter(organization=ctx.org).exists()  # a pack changes no plan
        invoice_mark_paid(invoice=invoice, actor=None)
        invoice_mark_paid(invoice=invoice, actor=None)
    lot = PackLot.objects.get(organization=ctx.org)
    assert lot.invoice == invoice
    assert lot.credits == ctx.pack.credits == 5_000
    assert lot.granted_at == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert lot.expires_at == datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
    assert lot.expired_at is None
    assert balance_of(ctx.primary) == 5_000
    assert len(txns(ctx, TransactionKind.PURCHASE)) == 1
    assert reconcile() == []


def test_at_expiry_the_unused_pack_credits_move_to_the_credit_bank_once(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        buy_and_pay(ctx)
        spend(ctx, 2_000)
        lot = PackLot.objects.get(organization=ctx.org)

        clock.move_to(lot.expires_at - timedelta(seconds=1))
        assert packs_expire_due() == 0
        assert bank(ctx) == 0

        clock.move_to(lot.expires_at + timedelta(hours=1))
        assert packs_expire_due() == 1
        assert packs_expire_due() == 0  # once per lot

    lot.refresh_from_db()
    assert lot.banked == 3_000
    assert lot.expired_at == lot.expires_at + timedelta(hours=1)
    assert bank(ctx) == 3_000
    assert balance_of(ctx.primary) == 0
    assert [t.amount for t in txns(ctx, TransactionKind.EXPIRY)] == [3_000]
    assert AuditEvent.objects.filter(organization=ctx.org, action="billing.pack_expired").count() == 1
    assert reconcile() == []


@pytest.mark.parametrize(
    ("spent", "banked"),
    [
        pytest.param(0, 5_000),
        pytest.param(10_000, 5_000),
        pytest.param(12_000, 3_000),
        (15_000, 0),
    ],
)
def test_an_earlier_plan_grant_is_consumed_before_a_later_pack(ctx, spent, banked):
    """Plan credits (10k) arrive first, the pack (5k) later: spending eats the plan credits first."""
    with time_machine.travel(T0, tick=False) as clock:
        subscribe_and_pay(ctx, ctx.pro)
        clock.shift(timedelta(days=1))
        buy_and_pay(ctx)
        if spent:
            spend(ctx, spent)
        lot = PackLot.objects.get(organization=ctx.org)
        clock.move_to(lot.expires_at + timedelta(minutes=1))
        assert packs_expire_due() == 1
    lot.refresh_from_db()
    assert lot.banked == banked
    assert bank(ctx) == banked
    assert balance_of(ctx.primary) == 15_000 - spent - banked
    assert len(txns(ctx, TransactionKind.EXPIRY)) == (1 if banked else 0)
    assert reconcile() == []


def test_a_pack_bought_before_the_plan_is_consumed_first(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        buy_and_pay(ctx)
        clock.shift(timedelta(days=1))
        subscribe_and_pay(ctx, ctx.pro)
        spend(ctx, 4_000)
        lot = PackLot.objects.get(organization=ctx.org)
        clock.move_to(lot.expires_at + timedelta(minutes=1))
        assert packs_expire_due() == 1
    assert PackLot.objects.get(pk=lot.pk).banked == 1_000
    assert bank(ctx) == 1_000
    assert balance_of(ctx.primary) == 10_000
    assert reconcile() == []


def test_expiry_in_budget_mode_takes_from_the_primary_workspace_first_then_the_budgets(ctx):
    a = make_workspace(ctx.org, name="A")
    with time_machine.travel(T0, tick=False) as clock:
        buy_and_pay(ctx)
        ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
        credits_transfer(organization=ctx.org, source=ctx.primary, target=a, amount=4_000, actor=ctx.owner)
        spend(ctx, 500, workspace=a)
        lot = PackLot.objects.get(organization=ctx.org)
        clock.move_to(lot.expires_at + timedelta(minutes=1))
        assert packs_expire_due() == 1
    assert bank(ctx) == 4_500
    assert balance_of(ctx.primary) == 0
    assert balance_of(a) == 0
    assert reconcile() == []


def test_the_next_purchase_unlocks_the_credit_bank_to_the_primary_workspace(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        buy_and_pay(ctx)
        spend(ctx, 2_000)
        clock.move_to(PackLot.objects.get(organization=ctx.org).expires_at + timedelta(days=1))
        packs_expire_due()
        assert bank(ctx) == 3_000

        invoice = credits_buy(organization=ctx.org, plan=ctx.pack, actor=ctx.owner, gateway_code="manual")
        assert bank(ctx) == 3_000  # an open invoice unlocks nothing
        invoice_mark_paid(invoice=invoice, actor=ctx.owner)
        invoice_mark_paid(invoice=invoice, actor=ctx.owner)

    assert bank(ctx) == 0
    assert balance_of(ctx.primary) == 3_000 + 5_000
    unlocks = txns(ctx, TransactionKind.BANK_UNLOCK)
    assert [t.amount for t in unlocks] == [3_000]
    assert unlocks[0].actor == ctx.owner
    event = AuditEvent.objects.filter(organization=ctx.org, action="billing.invoice_paid").order_by("-pk")[0]
    assert event.after["credit_bank_unlocked"] == 3_000
    assert reconcile() == []


def test_a_subscription_payment_unlocks_the_credit_bank_too(ctx):
    with time_machine.travel(T0, tick=False) as clock:
        buy_and_pay(ctx)
        clock.move_to(PackLot.objects.get(organization=ctx.org).expires_at + timedelta(days=1))
        packs_expire_due()
        assert bank(ctx) == 5_000
        subscribe_and_pay(ctx, ctx.pro)
    assert bank(ctx) == 0
    assert balance_of(ctx.primary) == 5_000 + ctx.pro.credits
    assert len(txns(ctx, TransactionKind.BANK_UNLOCK)) == 1
    assert reconcile() == []


# --- void invoices --------------------------------------------------------------------------------------------------


def test_a_void_invoice_can_never_be_paid(ctx):
    invoice = plan_subscribe(organization=ctx.org, plan=ctx.pro, actor=ctx.owner, gateway_code="manual")
    voided = invoice_void(invoice=invoice, actor=ctx.owner)
    assert voided.status == InvoiceStatus.VOID
    with pytest.raises(ValidationError):
        invoice_mark_paid(invoice=invoice, actor=None)
    with pytest.raises(ValidationError):
        invoice_void(invoice=invoice, actor=ctx.owner)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.VOID
    assert balance_of(ctx.primary) == 0
    assert subscription(ctx).status == SubscriptionStatus.INCOMPLETE
    assert AuditEvent.objects.filter(organization=ctx.org, action="billing.invoice_voided").count() == 1
    assert reconcile() == []


def test_a_paid_invoice_cannot_be_voided(ctx):
    invoice = buy_and_pay(ctx)
    with pytest.raises(ValidationError):
        invoice_void(invoice=invoice, actor=ctx.owner)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    assert balance_of(ctx.primary) == ctx.pack.credits
    assert Account.objects.get(organization=ctx.org, kind=AccountKind.BANK).balance == 0
    assert reconcile() == []
