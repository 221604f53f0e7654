"""Credit operations people perform (Owner/Admin in the app, staff in the admin): atomic and audited.

The ledger primitives live in billing.ledger; these services add the business rules and the audit event.
"""

from __future__ import annotations

import calendar
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now

from billing import ledger
from billing.gateways import GATEWAYS, Gateway
from billing.ledger import (
    credits_grant,
    limit_counter_start,
    limit_counter_stop,
    limits_lock,
    lock_for_debit,
    post_transaction,
    primary_account_id,
    refund,
    sweep_to_primary,
    system_account_ids,
)
from billing.models import (
    Account,
    AccountKind,
    AccountStripe,
    Invoice,
    InvoicePurpose,
    InvoiceStatus,
    LedgerTransaction,
    PackLot,
    Plan,
    PlanKind,
    Subscription,
    SubscriptionStatus,
    TransactionKind,
    WorkspaceLimit,
)
from billing.selectors import credits_moved
from orgs.audit import audit_record
from orgs.models import AuditAction, CreditMode, Membership, Organization, User
from workspaces.models import Workspace


@transaction.atomic
def credit_mode_switch(*, organization: Organization, mode: str, actor: User) -> Organization:
    """Shared pool ⇄ workspace budgets. Budget → shared sweeps every workspace balance back to the Primary
    Workspace; shared → budget starts every other workspace at zero. Nothing is lost either way."""
    if mode not in CreditMode.values:
        raise ValidationError({"mode": "Choose the shared pool or workspace budgets."})
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.credit_mode == mode:
        return organization
    before = organization.credit_mode
    swept = None
    if mode == CreditMode.SHARED:
        swept = sweep_to_primary(organization=organization, actor=actor)
    organization.credit_mode = mode
    organization.save(update_fields=["credit_mode"])
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.CREDITS_MODE_SWITCHED,
        target=organization,
        before={"credit_mode": before},
        after={"credit_mode": mode, "swept_to_primary": swept.amount if swept else 0},
    )
    return organization


@transaction.atomic
def credits_transfer(
    *, organization: Organization, source: Workspace, target: Workspace, amount: int, actor: User
) -> LedgerTransaction:
    """Manage credits (workspace budget mode): from one workspace to another, applied at once."""
    txn = ledger.credits_transfer(organization=organization, source=source, target=target, amount=amount, actor=actor)
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.CREDITS_TRANSFERRED,
        target=txn,
        after={"from": source.name, "to": target.name, "amount": amount},
    )
    return txn


@transaction.atomic
def credits_grant_by_staff(*, organization: Organization, amount: int, actor: User, reason: str) -> LedgerTransaction:
    """Support grants credits (goodwill, corrections): they land in the Primary Workspace, with a reason."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the credits are granted."})
    txn = credits_grant(organization=organization, amount=amount, actor=actor, memo=reason.strip())
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.CREDITS_GRANTED,
        target=txn,
        after={"amount": amount, "reason": reason.strip()},
    )
    return txn


@transaction.atomic
def credits_refund_by_staff(*, original: LedgerTransaction, amount: int, actor: User, reason: str) -> LedgerTransaction:
    if not reason.strip():
        raise ValidationError({"reason": "Say why the credits are refunded."})
    txn = refund(original=original, amount=amount, actor=actor, reason=reason.strip())
    audit_record(
        organization=original.organization,
        actor=actor,
        action=AuditAction.CREDITS_REFUNDED,
        target=txn,
        after={"amount": amount, "of_transaction": original.pk, "reason": reason.strip()},
    )
    return txn


def workspace_credits_return(*, workspace: Workspace, actor: User | None) -> LedgerTransaction | None:
    """A deleted workspace's remaining credits go back to the Primary Workspace (inside the caller's transaction)."""
    return sweep_to_primary(
        organization=workspace.organization, actor=actor, workspaces=[workspace], kind=TransactionKind.RETURN
    )


@transaction.atomic
def workspace_limit_set(
    *, workspace: Workspace, user: User | None, monthly_limit: int | None, actor: User
) -> WorkspaceLimit | None:
    """Set (or with None, remove) the monthly spend limit of a workspace, or of one member in it.

    A limit counts the whole month: its counter starts at what was already spent in the current period (see
    billing.ledger.counters for why that is exact while charges run)."""
    if monthly_limit is not None and (isinstance(monthly_limit, bool) or monthly_limit < 0):
        raise ValidationError({"monthly_limit": "A limit is a whole number of credits, zero or more."})
    if (
        user is not None
        and not Membership.objects.active().filter(organization_id=workspace.organization_id, user=user).exists()
    ):
        raise ValidationError("Limits apply to members of the organization.")
    organization = workspace.organization
    limits_lock(organization)
    existing = WorkspaceLimit.objects.filter(workspace=workspace, user=user).first()
    before = {"monthly_limit": existing.monthly_limit} if existing else {}
    result: WorkspaceLimit | None
    user_id = user.pk if user is not None else None
    spent = None
    if monthly_limit is None:
        WorkspaceLimit.objects.filter(workspace=workspace, user=user).delete()
        limit_counter_stop(organization=organization, workspace=workspace, user_id=user_id)
        result = None
    else:
        result, _ = WorkspaceLimit.objects.update_or_create(
            workspace=workspace, user=user, defaults={"monthly_limit": monthly_limit}
        )
        spent = limit_counter_start(organization=organization, workspace=workspace, user_id=user_id)
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.CREDITS_LIMIT_SET,
        target=workspace,
        before=before,
        after={"monthly_limit": monthly_limit, "member": user.email if user else None}
        | ({} if spent is None else {"spent_this_month": spent}),
    )
    return result


# --- plans, subscriptions, invoices, the Credit Bank -------------------------------------------------------------


RENEWAL_GRACE = timedelta(days=7)


def _invoice_number() -> str:
    return f"Q-{now():%Y%m}-{secrets.token_hex(4).upper()}"


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _gateway_for_checkout(code: str) -> Gateway:
    if code not in GATEWAYS or not GATEWAYS[code].available():
        raise ValidationError({"gateway": "This payment method is not available."})
    return GATEWAYS[code]


def _invoice_open(
    *,
    organization: Organization,
    purpose: InvoicePurpose,
    plan: Plan,
    actor: User | None,
    gateway: Gateway,
    subscription: Subscription | None = None,
    period_start: datetime | None = None,
) -> Invoice:
    invoice = Invoice.objects.create(
        organization=organization,
        number=_invoice_number(),
        purpose=purpose,
        plan=plan,
        subscription=subscription,
        period_start=period_start,
        credits=plan.credits,
        amount_cents=plan.price_cents,
        currency=plan.currency,
        gateway=gateway.code,
        created_by=actor,
    )
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.BILLING_INVOICE_OPENED,
        target=invoice,
        after={"number": invoice.number, "purpose": purpose, "plan": plan.name, "amount": invoice.amount},
    )
    if gateway.pays_immediately:
        invoice_mark_paid(invoice=invoice, actor=actor)
        invoice.refresh_from_db()
    return invoice


@transaction.atomic
def credits_buy(*, organization: Organization, plan: Plan, actor: User, gateway_code: str) -> Invoice:
    """Buy more credits (a one-time pack) without changing plan."""
    if plan.kind != PlanKind.PACK or not plan.is_active:
        raise ValidationError({"plan": "Choose one of the credit packs on offer."})
    gateway = _gateway_for_checkout(gateway_code)
    return _invoice_open(
        organization=organization, purpose=InvoicePurpose.PACK, plan=plan, actor=actor, gateway=gateway
    )


@transaction.atomic
def plan_subscribe(*, organization: Organization, plan: Plan, actor: User, gateway_code: str) -> Invoice:
    """Subscribe to a monthly plan, or upgrade/downgrade to another one (effective when its invoice is paid)."""
    if plan.kind != PlanKind.MONTHLY or not plan.is_active:
        raise ValidationError({"plan": "Choose one of the monthly plans on offer."})
    gateway = _gateway_for_checkout(gateway_code)
    subscription = Subscription.objects.select_for_update().filter(organization=organization).first()
    if subscription is not None and subscription.is_active and subscription.plan_id == plan.pk:
        raise ValidationError({"plan": f"You are already on {plan.name}."})
    waiting = Invoice.objects.filter(
        organization=organization,
        status=InvoiceStatus.OPEN,
        purpose__in=[InvoicePurpose.SUBSCRIPTION, InvoicePurpose.RENEWAL],
    ).first()
    if waiting is not None:
        raise ValidationError(
            {
                "plan": f"Invoice {waiting.number} for {waiting.plan.name} is still open: "
                "pay it, or ask us to void it, first."
            }
        )
    if subscription is None or subscription.status == SubscriptionStatus.CANCELED:
        subscription, _ = Subscription.objects.update_or_create(
            organization=organization,
            defaults={"plan": plan, "status": SubscriptionStatus.INCOMPLETE, "cancel_at_period_end": False},
        )
    return _invoice_open(
        organization=organization,
        purpose=InvoicePurpose.SUBSCRIPTION,
        plan=plan,
        actor=actor,
        gateway=gateway,
        subscription=subscription,
    )


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: User | None) -> Invoice:
    """The money arrived: grant the credits once, start or extend the plan period, unlock the Credit Bank."""
    invoice = Invoice.objects.select_for_update().select_related("organization", "plan").get(pk=invoice.pk)
    if invoice.status == InvoiceStatus.PAID:
        return invoice
    if invoice.status != InvoiceStatus.OPEN:
        raise ValidationError("Only open invoices can be marked paid.")
    organization = invoice.organization
    kind = TransactionKind.RENEWAL if invoice.purpose == InvoicePurpose.RENEWAL else TransactionKind.PURCHASE
    grant = credits_grant(
        organization=organization,
        amount=invoice.credits,
        actor=actor,
        kind=kind,
        memo=f"Invoice {invoice.number}: {invoice.plan.name}",
        idempotency_key=f"invoice:{invoice.pk}",
    )
    paid_at = now()
    invoice.status, invoice.paid_at, invoice.grant_transaction = InvoiceStatus.PAID, paid_at, grant
    invoice.save(update_fields=["status", "paid_at", "grant_transaction"])
    if invoice.purpose == InvoicePurpose.PACK:
        PackLot.objects.create(
            organization=organization,
            invoice=invoice,
            credits=invoice.credits,
            granted_at=paid_at,
            expires_at=_add_months(paid_at, invoice.plan.validity_months),
        )
    elif invoice.subscription_id is not None:
        subscription = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
        start = invoice.period_start or paid_at
        subscription.plan = invoice.plan
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.current_period_start = start
        subscription.current_period_end = _add_months(start, 1)
        subscription.cancel_at_period_end = False  # paying for a plan means keeping it
        subscription.save(
            update_fields=["plan", "status", "current_period_start", "current_period_end", "cancel_at_period_end"]
        )
    unlocked = credit_bank_unlock(organization=organization, actor=actor)
    audit_record(
        organization=organization,
        actor=actor,
        action=AuditAction.BILLING_INVOICE_PAID,
        target=invoice,
        before={"status": "open"},
        after={"status": "paid", "credits": invoice.credits, "credit_bank_unlocked": unlocked},
    )
    return invoice


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor: User | None) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.OPEN:
        raise ValidationError("Only open invoices can be voided.")
    invoice.status = InvoiceStatus.VOID
    invoice.save(update_fields=["status"])
    audit_record(
        organization=invoice.organization, actor=actor, action=AuditAction.BILLING_INVOICE_VOIDED, target=invoice
    )
    return invoice


@transaction.atomic
def subscription_cancel(*, organization: Organization, actor: User) -> Subscription:
    """Cancel at the end of the period: the plan and its credits stay until then."""
    subscription = Subscription.objects.select_for_update().filter(organization=organization).first()
    if subscription is None or not subscription.is_active:
        raise ValidationError("There is no active subscription to cancel.")
    if not subscription.cancel_at_period_end:
        subscription.cancel_at_period_end = True
        subscription.save(update_fields=["cancel_at_period_end"])
        audit_record(
            organization=organization,
            actor=actor,
            action=AuditAction.BILLING_SUBSCRIPTION_CANCEL_SCHEDULED,
            target=subscription,
            after={"ends_at": subscription.current_period_end.isoformat() if subscription.current_period_end else None},
        )
    return subscription


@transaction.atomic
def subscription_resume(*, organization: Organization, actor: User) -> Subscription:
    subscription = Subscription.objects.select_for_update().filter(organization=organization).first()
    if subscription is None or not subscription.is_active or not subscription.cancel_at_period_end:
        raise ValidationError("There is no scheduled cancellation to undo.")
    subscription.cancel_at_period_end = False
    subscription.save(update_fields=["cancel_at_period_end"])
    audit_record(
        organization=organization, actor=actor, action=AuditAction.BILLING_SUBSCRIPTION_RESUMED, target=subscription
    )
    return subscription


def subscriptions_renew_due(*, at: datetime | None = None) -> int:
    """The renewal job: end canceled plans at period end, and open (and for instant gateways, pay) one renewal
    invoice per period. Running it again for the same period does nothing more. Returns invoices opened."""
    moment = at or now()
    opened = 0
    due = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, current_period_end__lte=moment)
    for subscription_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update().select_related("plan", "organization").get(pk=subscription_id)
            )
            if subscription.current_period_end is None or subscription.current_period_end > moment:
                continue
            if subscription.cancel_at_period_end or subscription.organization.deleted_at is not None:
                subscription.status, subscription.canceled_at = SubscriptionStatus.CANCELED, moment
                subscription.save(update_fields=["status", "canceled_at"])
                audit_record(
                    organization=subscription.organization,
                    actor=None,
                    action=AuditAction.BILLING_SUBSCRIPTION_ENDED,
                    target=subscription,
                )
                continue
            period_start = subscription.current_period_end
            renewal = Invoice.objects.filter(subscription=subscription, period_start=period_start).first()
            if renewal is not None:
                if renewal.status == InvoiceStatus.OPEN and moment - period_start > RENEWAL_GRACE:
                    # Unpaid past the grace period: the plan ends; the credits already granted stay.
                    invoice_void(invoice=renewal, actor=None)
                    subscription.status, subscription.canceled_at = SubscriptionStatus.CANCELED, moment
                    subscription.save(update_fields=["status", "canceled_at"])
                    audit_record(
                        organization=subscription.organization,
                        actor=None,
                        action=AuditAction.BILLING_SUBSCRIPTION_ENDED_UNPAID,
                        target=subscription,
                    )
                continue
            last = subscription.invoices.order_by("-created_at").first()
            gateway = GATEWAYS.get(last.gateway if last else "manual", GATEWAYS["manual"])
            if not gateway.available():
                gateway = GATEWAYS["manual"]
            _invoice_open(
                organization=subscription.organization,
                purpose=InvoicePurpose.RENEWAL,
                plan=subscription.plan,
                actor=None,
                gateway=gateway,
                subscription=subscription,
                period_start=period_start,
            )
            opened += 1
    return opened


def credit_bank_unlock(*, organization: Organization, actor: User | None) -> int:
    """A purchase unlocks the Credit Bank: its credits return to the Primary Workspace (caller's transaction)."""
    bank = Account.objects.get(organization=organization, kind=AccountKind.BANK)
    amount = bank.balance  # type: ignore[attr-defined]
    if amount <= 0:
        return 0
    primary = primary_account_id(organization)
    post_transaction(  # the debit is conditional: a concurrent unlock cannot take the bank below zero
        organization_id=organization.pk,
        kind=TransactionKind.BANK_UNLOCK,
        amount=amount,
        movements=[(bank.pk, primary, amount)],
        cached_account_ids={bank.pk, primary},
        actor=actor,
        memo="Credit Bank unlocked by a purchase",
    )
    return amount


def packs_expire_due(*, at: datetime | None = None) -> int:
    """At a pack's expiry, its unused credits move to the Credit Bank. Credits are consumed first in, first out:
    what is unused of a pack is what arrived up to it, minus everything consumed or banked so far."""
    moment = at or now()
    expired = 0
    for lot_id in PackLot.objects.filter(expired_at__isnull=True, expires_at__lte=moment).values_list("pk", flat=True):
        with transaction.atomic():
            lot = PackLot.objects.select_for_update().select_related("organization").get(pk=lot_id)
            if lot.expired_at is not None:
                continue
            organization = lot.organization
            system = system_account_ids(organization.pk)
            arrived = credits_moved(from_account=system[AccountKind.SOURCE], until=lot.granted_at)
            consumed = credits_moved(to_account=system[AccountKind.SINK])
            consumed -= credits_moved(from_account=system[AccountKind.SINK])  # refunds give consumption back
            banked = credits_moved(to_account=system[AccountKind.BANK])
            unused = max(0, min(lot.credits, arrived - consumed - banked))
            moved = _bank_from_balances(organization=organization, amount=unused, bank_id=system[AccountKind.BANK])
            lot.expired_at, lot.banked = moment, moved
            lot.save(update_fields=["expired_at", "banked"])
            audit_record(
                organization=organization,
                actor=None,
                action=AuditAction.BILLING_PACK_EXPIRED,
                target=lot,
                after={"credits": lot.credits, "moved_to_credit_bank": moved},
            )
            expired += 1
    return expired


def _bank_from_balances(*, organization: Organization, amount: int, bank_id: int) -> int:
    """Take `amount` (or what there is) into the bank: from the Primary Workspace first, then the largest budgets."""
    if amount <= 0:
        return 0
    workspace_accounts = dict(
        Account.objects.filter(organization=organization, kind=AccountKind.WORKSPACE).values_list(
            "pk", "workspace__is_primary"
        )
    )
    totals: dict[int, int] = dict.fromkeys(workspace_accounts, 0)
    lock_for_debit(workspace_accounts)
    locked = (
        AccountStripe.objects.select_for_update()
        .filter(account_id__in=list(workspace_accounts))
        .order_by("account_id", "stripe")
        .values_list("account_id", "balance")
    )
    for account_id, balance in locked:
        totals[account_id] += balance
    accounts = [(pk, totals[pk], workspace_accounts[pk]) for pk in sorted(workspace_accounts)]
    ordered = sorted(accounts, key=lambda row: (not row[2], -row[1]))
    movements, left = [], amount
    for pk, balance, _ in ordered:
        take = min(balance, left)
        if take > 0:
            movements.append((pk, bank_id, take))
            left -= take
    total = amount - left
    if total:
        post_transaction(
            organization_id=organization.pk,
            kind=TransactionKind.EXPIRY,
            amount=total,
            movements=movements,
            cached_account_ids={pk for pk, _, _ in accounts} | {bank_id},
            memo="Unused pack credits moved to the Credit Bank",
        )
    return total
