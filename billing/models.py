"""The credits ledger: accounts, append-only transactions of movements, holds and spend counters.

Credits are whole numbers stored as BIGINT. Every movement is an append-only LedgerEntry (double entry: from
account, to account, amount) inside a LedgerTransaction (kind, actor, idempotency key, time); an entry takes from
one account exactly what it gives to another, so every transaction sums to zero.
Spendable balances (one account per workspace; the Primary Workspace's account is the organization's pool) and
the Credit Bank are cached on the account row, protected by CHECK (balance >= 0), and equal to the sum of their
entries. System accounts (source, sink, holds) are never updated on the hot path: their balance is the sum of
their entries, computed when needed, so a charge updates exactly one contended row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from orgs.models import Organization
from workspaces.models import Workspace


class AccountKind(models.TextChoices):
    WORKSPACE = "workspace", "Workspace balance"
    BANK = "bank", "Credit Bank"
    SOURCE = "source", "Purchases and grants"
    SINK = "sink", "Consumption"
    HOLDS = "holds", "Reserved by holds"


CACHED_KINDS = (AccountKind.WORKSPACE, AccountKind.BANK)
ORGANIZATION_KINDS = (AccountKind.SOURCE, AccountKind.SINK, AccountKind.HOLDS, AccountKind.BANK)


def balance_of(account_ref: str) -> Coalesce:
    """The live balance of the account `account_ref` points at (an OuterRef path): the sum of its stripes."""
    stripes = (
        AccountStripe.objects.filter(account=OuterRef(account_ref))
        .values("account")
        .annotate(total=Sum("balance"))
        .values("total")
    )
    return Coalesce(Subquery(stripes), Value(0), output_field=models.BigIntegerField())


def account_balance(account_id: int) -> int:
    """The live balance of one account."""
    total = AccountStripe.objects.filter(account_id=account_id).aggregate(total=Sum("balance"))["total"]
    return total or 0


class AccountManager(models.Manager["Account"]):
    """Every Account comes with its live `balance` (the sum of its stripes)."""

    def get_queryset(self) -> models.QuerySet[Account]:
        return super().get_queryset().annotate(balance=balance_of("pk"))


class Account(models.Model):
    """A balance of credits. Cached balances live in `stripes` rows (AccountStripe) so that concurrent spenders
    update different rows; `Account.objects` annotates their sum as `balance`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="credit_accounts")
    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, null=True, blank=True, related_name="credit_account"
    )
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    stripes = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=now)

    objects = AccountManager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(stripes__gte=1), name="account_at_least_one_stripe"),
            models.CheckConstraint(
                condition=models.Q(kind=AccountKind.WORKSPACE, workspace__isnull=False)
                | (~models.Q(kind=AccountKind.WORKSPACE) & models.Q(workspace__isnull=True)),
                name="account_workspace_iff_workspace_kind",
            ),
            models.UniqueConstraint(
                fields=["organization", "kind"],
                condition=~models.Q(kind=AccountKind.WORKSPACE),
                name="account_one_system_account_per_kind",
            ),
        ]

    def __str__(self) -> str:
        if self.workspace_id:
            return f"{self.workspace} balance"
        return f"{self.organization} {self.get_kind_display()}"


class AccountStripe(models.Model):
    """One stripe of a cached balance. A debit takes from the spender's own stripe; when it is short, the ledger
    locks every stripe of the account, checks the total and spreads what is left evenly again."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="balance_stripes")
    stripe = models.PositiveSmallIntegerField()
    balance = models.BigIntegerField(default=0)
    fence = models.BigIntegerField(
        default=0,
        help_text="Raised on every stripe of the account when a monthly limit of a workspace it pays for is set: a "
        "one-statement charge debits a stripe only if its fence is the one it read, so a charge that read 'no limit' "
        "before the change falls back to the general path, which counts it.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "stripe"], name="account_stripe_unique"),
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="account_stripe_never_negative"),
        ]

    def __str__(self) -> str:
        return f"stripe {self.stripe} of account {self.account_id}: {self.balance}"


class TransactionKind(models.TextChoices):
    GRANT = "grant", "Grant"
    PURCHASE = "purchase", "Purchase"
    RENEWAL = "renewal", "Plan renewal"
    TRANSFER = "transfer", "Transfer"
    SWEEP = "sweep", "Mode switch sweep"
    CHARGE = "charge", "Charge"
    HOLD = "hold", "Hold"
    CAPTURE = "capture", "Capture"
    RELEASE = "release", "Release"
    REFUND = "refund", "Refund"
    EXPIRY = "expiry", "Pack expiry to Credit Bank"
    BANK_UNLOCK = "bank_unlock", "Credit Bank unlocked"
    RETURN = "return", "Returned from a deleted workspace"


# The two ledger tables are append-only and written by every charge. Their foreign keys are enforced by Django
# (on_delete runs in the ORM) rather than by database triggers: a trigger takes a KEY SHARE lock on the referenced
# organization, user, workspace and account rows, which every concurrent charge shares — measured on the charge
# path as a real cost. Rows are only written by billing.ledger, and reconcile_ledger checks every reference.


class LedgerTransaction(models.Model):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="ledger_transactions",
        db_constraint=False,
        db_index=False,  # the (organization, -created_at) index serves
    )
    kind = models.CharField(max_length=12, choices=TransactionKind.choices)
    amount = models.BigIntegerField(help_text="The credits moved (positive).")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # users are deactivated, never deleted
    )
    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ledger_transactions",
        db_constraint=False,
        db_index=False,  # the (workspace, created_at) index serves
    )
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True)
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        db_constraint=False,
        db_index=False,  # partial index below: only refunds have one
        help_text="For a refund: the charge or capture it gives credits back for.",
    )
    period_start = models.DateField(null=True, blank=True, help_text="Budget period of a spend.")
    counted = models.JSONField(
        default=list,
        blank=True,
        help_text="The monthly spend counters this spend moved when it was made, as [workspace id, member id or null] "
        "pairs (a record: refunds and releases give back to the counters of the limits in force).",
    )
    memo = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="ledger_transaction_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="ledger_transaction_amount_positive"),
        ]
        indexes = [
            # Per-workspace reports read usage events (usage app), so the ledger needs no workspace index.
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["reverses"], condition=models.Q(reverses__isnull=False), name="ledger_txn_reverses"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.amount}"


class LedgerEntry(models.Model):
    """One movement: `amount` credits leave `from_account` and arrive in `to_account`."""

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.CASCADE, related_name="entries", db_constraint=False
    )
    from_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="debits", db_constraint=False, db_index=False
    )
    to_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="credits", db_constraint=False, db_index=False
    )
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="ledger_entry_amount_positive"),
            models.CheckConstraint(
                condition=~models.Q(from_account=models.F("to_account")), name="ledger_entry_two_accounts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} from {self.from_account_id} to {self.to_account_id}"


class HoldStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"


class Hold(models.Model):
    """Credits reserved for a long generation: captured (≤ held) or released, exactly once."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="holds")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="holds")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    amount = models.BigIntegerField()
    captured_amount = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.PENDING)
    period_start = models.DateField(help_text="The budget period the reservation counts against.")
    expires_at = models.DateTimeField()
    hold_transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="hold")
    settle_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="settled_hold"
    )
    created_at = models.DateTimeField(default=now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(captured_amount__isnull=True)
                | models.Q(captured_amount__gte=0, captured_amount__lte=models.F("amount")),
                name="hold_capture_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"Hold of {self.amount} ({self.status})"


class SpendCounter(models.Model):
    """Credits spent in one budget period by a workspace (user null) or by one member in a workspace.

    Only kept for workspaces and members that have a monthly limit, and updated with a conditional UPDATE in the
    charge's own transaction, so a limit can never be exceeded. Setting a limit starts its counter at what the
    ledger says was already spent in the period (`billing.ledger.counters`), so a limit counts the whole month.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="spend_counters")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True)
    period_start = models.DateField()
    spent = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "period_start"],
                condition=models.Q(user__isnull=True),
                name="spend_counter_unique_workspace",
            ),
            models.UniqueConstraint(
                fields=["workspace", "user", "period_start"],
                condition=models.Q(user__isnull=False),
                name="spend_counter_unique_member",
            ),
            models.CheckConstraint(condition=models.Q(spent__gte=0), name="spend_counter_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.spent} spent in {self.period_start:%Y-%m}"


class WorkspaceLimit(models.Model):
    """Optional monthly limits: for the workspace (shared mode) and for each member in it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="limits")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True)
    monthly_limit = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"], condition=models.Q(user__isnull=True), name="workspace_limit_unique_workspace"
            ),
            models.UniqueConstraint(
                fields=["workspace", "user"],
                condition=models.Q(user__isnull=False),
                name="workspace_limit_unique_member",
            ),
            models.CheckConstraint(condition=models.Q(monthly_limit__gte=0), name="workspace_limit_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Monthly limit of {self.monthly_limit}"


class PlanKind(models.TextChoices):
    MONTHLY = "monthly", "Monthly plan"
    PACK = "pack", "One-time credit pack"


class Plan(models.Model):
    """A plan or a credit pack, as data staff edit. Monthly plans grant credits every period (unused credits roll
    over); packs grant once and last `validity_months`, after which what is left goes to the Credit Bank."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=10, choices=PlanKind.choices)
    credits = models.BigIntegerField()
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    validity_months = models.PositiveSmallIntegerField(default=6, help_text="Packs only.")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["kind", "sort_order", "price_cents"]
        constraints = [models.CheckConstraint(condition=models.Q(credits__gt=0), name="plan_credits_positive")]

    def __str__(self) -> str:
        return f"{self.name} ({self.credits:,} credits)"

    @property
    def price(self) -> str:
        return f"{self.price_cents / 100:,.2f} {self.currency}"


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Awaiting first payment"
    ACTIVE = "active", "Active"
    CANCELED = "canceled", "Canceled"


class Subscription(models.Model):
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=12, choices=SubscriptionStatus.choices, default=SubscriptionStatus.INCOMPLETE)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=now)
    canceled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.organization} on {self.plan.name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == SubscriptionStatus.ACTIVE


class InvoiceStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class InvoicePurpose(models.TextChoices):
    SUBSCRIPTION = "subscription", "Subscription"
    RENEWAL = "renewal", "Renewal"
    PACK = "pack", "Credit pack"


class Invoice(models.Model):
    """What the organization owes for a plan period or a pack. Paying it grants the credits (exactly once)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invoices")
    number = models.CharField(max_length=32, unique=True)
    purpose = models.CharField(max_length=12, choices=InvoicePurpose.choices)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    credits = models.BigIntegerField()
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    gateway = models.CharField(max_length=20)
    status = models.CharField(max_length=6, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    paid_at = models.DateTimeField(null=True, blank=True)
    grant_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="invoice"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=models.Q(purpose="renewal"),
                name="invoice_one_renewal_per_period",
            ),
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="invoice_credits_positive"),
        ]

    def __str__(self) -> str:
        return f"Invoice {self.number}"

    @property
    def amount(self) -> str:
        return f"{self.amount_cents / 100:,.2f} {self.currency}"


class PackLot(models.Model):
    """Credits bought as a pack: valid until `expires_at`; what is left then goes to the Credit Bank."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pack_lots")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="pack_lot")
    credits = models.BigIntegerField()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    expired_at = models.DateTimeField(null=True, blank=True)
    banked = models.BigIntegerField(default=0, help_text="Credits moved to the Credit Bank at expiry.")

    class Meta:
        indexes = [models.Index(fields=["expired_at", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.credits:,} credits until {self.expires_at:%Y-%m-%d}"


class AlertState(models.Model):
    """That an alert fired: once per subject (pool, workspace, limit), threshold and budget period."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_states")
    subject = models.CharField(max_length=80)
    threshold = models.PositiveSmallIntegerField()
    period_start = models.DateField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "subject", "threshold", "period_start"], name="alert_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} crossed {self.threshold}%"
