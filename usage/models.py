"""Prices of the AI tools and the usage events they produce.

Usage events are the app's largest table (one row per generation, tens of millions over time): narrow rows,
no database foreign keys (partitioned tables are referenced by id only), indexes only for the reads the
product makes — per workspace and per member over a time range. See docs/architecture.md for monthly
partitioning.

The usage roll-up (`UsageRollup`, 15-minute buckets) summarises them; `usage.rollup` writes and reads it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from qolaba.tools import Tool

MAX_CREDITS_PER_UNIT = 1_000_000
MAX_UNITS = 1_000_000


class Provider(models.TextChoices):
    """Who runs a priced model in the Studio (see usage.studio.providers)."""

    DEMO = "demo", "Demo (offline, deterministic)"
    OPENAI_COMPATIBLE = "openai-compatible", "OpenAI-compatible API"


class PriceQuerySet(models.QuerySet["Price"]):
    def active(self) -> PriceQuerySet:
        return self.filter(is_active=True)


class Price(models.Model):
    """What one unit of a model of a tool costs. Data edited by staff; changes apply to the next generation."""

    tool = models.CharField(max_length=10, choices=Tool.choices)
    model = models.CharField(max_length=100, help_text="The model name the tool services send, e.g. gpt-4o.")
    unit = models.CharField(max_length=30, help_text="What is counted, e.g. message, image, second.")
    credits_per_unit = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CREDITS_PER_UNIT)]
    )
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True, help_text="Inactive prices are refused by the metering API.")
    provider = models.CharField(
        max_length=30,
        choices=Provider.choices,
        default=Provider.DEMO,
        help_text="Who runs this model in the Studio: the offline demo, or an OpenAI-compatible server.",
    )
    provider_model = models.CharField(
        max_length=100, blank=True, help_text="The provider's own model name; blank means the same as Model."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = PriceQuerySet.as_manager()

    class Meta:
        ordering = ["tool", "model"]
        constraints = [
            models.UniqueConstraint(fields=["tool", "model"], name="price_unique_tool_model"),
            models.CheckConstraint(
                condition=models.Q(credits_per_unit__gte=1, credits_per_unit__lte=MAX_CREDITS_PER_UNIT),
                name="price_credits_per_unit_range",
            ),
            models.CheckConstraint(condition=models.Q(tool__in=Tool.values), name="price_tool_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_tool_display()} · {self.model}: {self.credits_per_unit} per {self.unit}"

    @property
    def provider_model_name(self) -> str:
        return self.provider_model or self.model


class UsageStatus(models.TextChoices):
    HELD = "held", "Held"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"


class TransactionNumber(models.Expression):
    """The database default of `UsageEvent.created_seq` and `.changed_seq`: the number of the writing transaction.

    On PostgreSQL it is the inserting transaction's 64-bit id (`pg_current_xact_id()`, which never wraps around;
    inside a savepoint it is still the top-level transaction's id). The roll-up's watermark is such an id: see
    `usage.rollup` for why that makes it safe against rows committed out of order. A trigger keeps `changed_seq`
    up to date on every UPDATE (migration 0005).

    On SQLite (the demo) the default is 0 and triggers number the row right after the INSERT with the next number
    (`MAX(changed_seq) + 1`): there is one writer at a time there."""

    output_field = models.BigIntegerField()
    allowed_default = True  # a column default: it reads no column

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return "0", []

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return "pg_current_xact_id()::text::bigint", []


class UsageEventQuerySet(models.QuerySet["UsageEvent"]):
    def spent(self) -> UsageEventQuerySet:
        """Events whose credits were actually charged."""
        return self.filter(status=UsageStatus.CAPTURED)


class UsageEvent(models.Model):
    """One generation: who ran which model in which workspace, for how many credits, and in which state."""

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    tool = models.CharField(max_length=10, choices=Tool.choices)
    model = models.CharField(max_length=100)
    units = models.PositiveIntegerField()
    credits = models.BigIntegerField(help_text="Credits charged (held, for a pending hold; 0 once released).")
    status = models.CharField(max_length=10, choices=UsageStatus.choices)
    idempotency_key = models.CharField(max_length=255)
    ledger_transaction = models.ForeignKey(
        "billing.LedgerTransaction",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
        help_text="The charge, or the hold's settlement once settled.",
    )
    hold = models.ForeignKey(
        "billing.Hold",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # partial index below: only long jobs have one
    )
    history_draft = models.JSONField(
        null=True, blank=True, help_text="A hold's history, kept until the generation is captured."
    )
    created_at = models.DateTimeField(default=now)
    settled_at = models.DateTimeField(null=True, blank=True)
    # Change tracking for the roll-up, set by the database only (the ORM and the one-statement charge leave them
    # to it): the number of the transaction that inserted the row, and of the last one that changed it (never
    # below created_seq). created_at is never changed after the insert, so an event never moves between buckets.
    created_seq = models.BigIntegerField(db_default=TransactionNumber(), editable=False)
    changed_seq = models.BigIntegerField(db_default=TransactionNumber(), editable=False)

    objects = UsageEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(units__gte=1), name="usage_event_units_positive"),
            models.CheckConstraint(condition=models.Q(credits__gte=0), name="usage_event_credits_not_negative"),
            models.CheckConstraint(condition=models.Q(status__in=UsageStatus.values), name="usage_event_status_valid"),
        ]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="usage_event_workspace_time"),
            models.Index(fields=["organization", "user", "created_at"], name="usage_event_member_time"),
            models.Index(fields=["organization", "created_at"], name="usage_event_org_time"),
            models.Index(fields=["hold"], condition=models.Q(hold__isnull=False), name="usage_event_hold"),
            # "What changed since the watermark": the roll-up run and the live read (a few rows, the newest ones).
            models.Index(fields=["changed_seq"], name="usage_event_changed_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.tool}/{self.model} x {self.units} = {self.credits} ({self.status})"


class UsageRollup(models.Model):
    """Usage events summed per organization, workspace, member, tool, model and 15-minute bucket (UTC).

    Written only by `usage.rollup` (the Celery roll-up and its rebuild). Captured events count in generations,
    units and credits; events still held count in held_generations and held_credits; released events count nowhere
    (they cost nothing). Fifteen-minute buckets cut exactly into hours, days and months in every time zone in use
    (all UTC offsets are multiples of 15 minutes: +05:30, +05:45, ...). A row exists only for a key and bucket with
    at least one captured or held event."""

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    tool = models.CharField(max_length=10, choices=Tool.choices)
    model = models.CharField(max_length=100)
    bucket_start = models.DateTimeField(help_text="Start of the 15-minute bucket, UTC.")
    generations = models.BigIntegerField(help_text="Captured events.")
    units = models.BigIntegerField(help_text="Units of the captured events.")
    credits = models.BigIntegerField(help_text="Credits of the captured events.")
    held_generations = models.BigIntegerField(help_text="Events still held.")
    held_credits = models.BigIntegerField(help_text="Credits still held.")

    class Meta:
        db_table = "usage_rollup"
        constraints = [
            # The upsert key. Its column order also serves the organization-wide reads over a time range.
            models.UniqueConstraint(
                fields=["organization", "bucket_start", "workspace", "user", "tool", "model"],
                name="usage_rollup_unique_key",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    generations__gte=0, units__gte=0, credits__gte=0, held_generations__gte=0, held_credits__gte=0
                ),
                name="usage_rollup_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "bucket_start"], name="usage_rollup_workspace_time")]

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d %H:%M} {self.tool}/{self.model}: {self.credits} credits"


class UsageDailyRollup(models.Model):
    """The 15-minute roll-up summed per local day of the organization's time zone (PostgreSQL only).

    Written only by `usage.rollup` in the same transaction as the 15-minute rows it sums, so in every snapshot a day
    row equals the sum of that day's 15-minute rows: the live read takes whole local days from here and the partial
    days at the edges of a range, and the buckets changed since the watermark, from the 15-minute level and the
    events. The zone the days were cut in is `UsageDailyZone`'s; a day row exists only where a 15-minute row does."""

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    tool = models.CharField(max_length=10, choices=Tool.choices)
    model = models.CharField(max_length=100)
    day_start = models.DateTimeField(help_text="Local midnight (in UsageDailyZone's zone) starting the day, as UTC.")
    generations = models.BigIntegerField()
    units = models.BigIntegerField()
    credits = models.BigIntegerField()
    held_generations = models.BigIntegerField()
    held_credits = models.BigIntegerField()

    class Meta:
        db_table = "usage_rollup_daily"
        constraints = [
            # Its column order serves the organization-wide reads over a range of days.
            models.UniqueConstraint(
                fields=["organization", "day_start", "workspace", "user", "tool", "model"],
                name="usage_rollup_daily_unique_key",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "day_start"], name="usage_rollup_daily_ws_time")]

    def __str__(self) -> str:
        return f"{self.day_start:%Y-%m-%d %H:%M} {self.tool}/{self.model}: {self.credits} credits"


class UsageDailyZone(models.Model):
    """The time zone an organization's `UsageDailyRollup` days were cut in. The live read uses the day rows only
    when this is the zone it cuts in; when the organization's zone changes, the next roll-up run cuts its days again
    (and until then the read sums 15-minute rows, exact but slower)."""

    organization = models.OneToOneField(
        "orgs.Organization", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, primary_key=True
    )
    timezone = models.CharField(max_length=64)

    class Meta:
        db_table = "usage_rollup_daily_zone"

    def __str__(self) -> str:
        return f"{self.organization_id}: days in {self.timezone}"


class UsageRollupState(models.Model):
    """The roll-up's progress: one row (id 1). Every usage event written by a transaction numbered below the
    watermark is in the roll-up (in the state the run saw; later changes have changed_seq >= watermark)."""

    watermark = models.BigIntegerField(default=0)
    ran_at = models.DateTimeField(null=True, blank=True, help_text="Wall-clock time of the last run.")
    # Set by usage.partitions when retention drops old months of events: the roll-up keeps their totals (it is the
    # only record of them then), and a rebuild recomputes only from this time on.
    events_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Usage events before this time were dropped (retention); the roll-up keeps their totals.",
    )

    class Meta:
        db_table = "usage_rollup_state"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="usage_rollup_state_one_row")]

    def __str__(self) -> str:
        return f"roll-up watermark {self.watermark} ({self.ran_at})"


class IdempotentRequest(models.Model):
    """The answer to a metering request, kept under its Idempotency-Key so that a retry gets the same answer.

    Written in the same transaction as the charge it answers; its unique (workspace, key) is what makes
    concurrent retries of one key charge once.
    """

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="idempotent_request_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code}"


# --- client statements -----------------------------------------------------------------------------------------

CLIENT_RATE_MAX_DIGITS = 12
CLIENT_RATE_DECIMAL_PLACES = 4
AMOUNT_MAX_DIGITS = 28  # the largest credits (BIGINT) x the largest rate / 1,000 fits


class ClientRate(models.Model):
    """What an agency charges its client for a workspace's usage: money per 1,000 credits, in one currency.

    Optional (no row: statements show credits only). Closed statements keep the rate they were closed with.
    """

    workspace = models.OneToOneField("workspaces.Workspace", on_delete=models.CASCADE, related_name="client_rate")
    rate_per_1000 = models.DecimalField(
        max_digits=CLIENT_RATE_MAX_DIGITS,
        decimal_places=CLIENT_RATE_DECIMAL_PLACES,
        help_text="Money per 1,000 credits, e.g. 12.50.",
    )
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(rate_per_1000__gt=0), name="client_rate_positive"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="client_rate_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.rate_per_1000} {self.currency} per 1,000 credits"


class ImmutableRowError(Exception):
    """A closed statement was about to be changed: statements are written once, when they are closed."""


class WriteOnce(models.Model):
    """Rows that are inserted once and never updated (the database refuses an UPDATE too, see migration 0006)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRowError(f"{self._meta.verbose_name} {self.pk} is closed and cannot change.")
        super().save(*args, **kwargs)


class Statement(WriteOnce):
    """A workspace's usage in one calendar month of the organization's time zone, closed into an immutable,
    numbered document once the month is over. Everything it shows is stored here and in its lines, so later price
    changes, renames or events do not alter it."""

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="statements")
    sequence = models.PositiveIntegerField(help_text="Per organization, gapless: 1, 2, 3, …")
    number = models.CharField(max_length=100)
    period_start = models.DateField(help_text="First day of the month, in the organization's time zone.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    timezone = models.CharField(max_length=64)
    organization_name = models.CharField(max_length=200)
    workspace_name = models.CharField(max_length=80)
    credit_mode = models.CharField(max_length=10)
    generations = models.BigIntegerField()
    credits = models.BigIntegerField()
    opening_balance = models.BigIntegerField(null=True, blank=True, help_text="Budget mode only.")
    closing_balance = models.BigIntegerField(null=True, blank=True, help_text="Budget mode only.")
    rate_per_1000 = models.DecimalField(
        max_digits=CLIENT_RATE_MAX_DIGITS, decimal_places=CLIENT_RATE_DECIMAL_PLACES, null=True, blank=True
    )
    currency = models.CharField(max_length=3, blank=True)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=2, null=True, blank=True)
    closed_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-period_start", "workspace_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "period_start"], name="statement_one_per_workspace_month"),
            models.UniqueConstraint(fields=["organization", "sequence"], name="statement_sequence_unique_per_org"),
            models.UniqueConstraint(fields=["organization", "number"], name="statement_number_unique_per_org"),
            models.CheckConstraint(condition=models.Q(sequence__gte=1), name="statement_sequence_positive"),
            models.CheckConstraint(
                condition=models.Q(opening_balance__isnull=True, closing_balance__isnull=True)
                | models.Q(opening_balance__isnull=False, closing_balance__isnull=False),
                name="statement_balances_together",
            ),
        ]

    def __str__(self) -> str:
        return f"Statement {self.number}"


class StatementLine(WriteOnce):
    """One tool and model of a closed statement: generations, units (in the price list's unit) and credits."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    tool = models.CharField(max_length=10, choices=Tool.choices)
    model = models.CharField(max_length=100)
    unit = models.CharField(max_length=30)
    generations = models.BigIntegerField()
    units = models.BigIntegerField()
    credits = models.BigIntegerField()
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["statement", "position"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "position"], name="statement_line_position_unique"),
            models.UniqueConstraint(fields=["statement", "tool", "model"], name="statement_line_tool_model_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tool}/{self.model}: {self.credits}"


class BalanceItem(models.TextChoices):
    """The movements of a workspace balance over a month, as a statement itemises them (budget mode)."""

    RECEIVED = "received", "Credits received"
    SPENT = "spent", "Credits spent on generations"
    REFUNDED = "refunded", "Refunds"
    HELD_OVER = "held_over", "Held at month end for generations not yet settled"
    RETURNED_FROM_HOLDS = "returned_from_holds", "Returned from generations held in an earlier month"
    TRANSFERRED_OUT = "transferred_out", "Transferred to other workspaces"
    SWEPT_OUT = "swept_out", "Swept to the Primary Workspace (credit mode switch)"
    RETURNED_OUT = "returned_out", "Returned to the Primary Workspace (workspace deleted)"
    EXPIRED_OUT = "expired_out", "Moved to the Credit Bank (pack expiry)"
    OTHERS_SPENT = "others_spent", "Spent by other workspaces from the shared pool"
    OTHER = "other", "Other movements"


class StatementBalanceLine(WriteOnce):
    """One movement of the workspace balance in a closed statement (budget mode), signed: + in, - out."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="balance_lines")
    position = models.PositiveSmallIntegerField()
    item = models.CharField(max_length=24, choices=BalanceItem.choices)
    credits = models.BigIntegerField()

    class Meta:
        ordering = ["statement", "position"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "item"], name="statement_balance_line_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.item}: {self.credits}"


class UsageExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Preparing"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


def usage_export_storage() -> Storage:
    """Private storage (never under a public MEDIA URL): the files are only served to their requester."""
    return storages["usage_exports"]


class UsageExportQuerySet(models.QuerySet["UsageExport"]):
    def of_requester(self, *, user: Any, organization: Any) -> UsageExportQuerySet:
        return self.filter(requester=user, organization=organization)

    def in_progress(self) -> UsageExportQuerySet:
        return self.filter(status__in=[UsageExportStatus.QUEUED, UsageExportStatus.RUNNING])


class UsageExport(models.Model):
    """A CSV export of usage events too large to stream in a request, prepared by a Celery job (`usage.exports`).

    `params` are the Usage tab's URL parameters with the period as fixed dates, so the job lists the same events
    whenever it runs; it lists only events created before `created_at`. `attempt` numbers the job's runs: a
    redelivered or duplicate run takes the next number, and only the latest run may report progress or finish."""

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    params = models.JSONField(help_text="The Usage tab parameters, the period as fixed dates.")
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=10, choices=UsageExportStatus.choices, default=UsageExportStatus.QUEUED)
    rows_total = models.BigIntegerField(null=True, blank=True, help_text="Counted when the job starts.")
    rows_done = models.BigIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=0)
    file = models.FileField(storage=usage_export_storage, blank=True, max_length=200)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The file is deleted after this.")

    objects = UsageExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=UsageExportStatus.values), name="usage_export_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(rows_done__gte=0, rows_total__gte=0) | models.Q(rows_done__gte=0, rows_total=None),
                name="usage_export_rows_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="usage_export_period_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "requester", "-created_at"], name="usage_export_requester"),
            models.Index(fields=["expires_at"], condition=~models.Q(file=""), name="usage_export_expiring_files"),
        ]

    def __str__(self) -> str:
        return f"Usage export {self.pk} ({self.period_start} to {self.period_end}, {self.status})"

    def expired_at(self, at: Any) -> bool:
        """A finished export whose download window has passed at `at` (its file is, or is about to be, deleted)."""
        if self.status != UsageExportStatus.DONE:
            return False
        return not self.file or (self.expires_at is not None and self.expires_at <= at)

    @property
    def is_expired(self) -> bool:
        return self.expired_at(now())

    @property
    def percent(self) -> int:
        if self.status == UsageExportStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)


# The Studio's models live in their own module and are registered with this app here.
from usage.studio.models import ChatThread, ChatTurn, StudioJob  # noqa: E402, F401
