"""Client statements: a workspace's usage in one calendar month of the organization's time zone, for client billing.

- **Lines** per tool and model (generations, units in the price list's unit, credits) come from the usage events of
  the workspace with status *captured* created in the month: the same definition as every other usage view.
- **Balances** (budget mode) come from the ledger entries of the workspace's credit account: opening balance, what
  was received, what was spent on generations (equal to the lines' credits) and every other movement as its own item,
  so that opening + the items = closing.
- **Closing** (`statement_close`, run for every workspace by the beat task `usage.tasks.statements_close_due_run`)
  stores the figures in a numbered `Statement` with its lines, once the month is over and every generation held in
  it is settled. A closed statement never changes; the current month is computed live (`statement_compute`), a
  draft.
- An optional **client rate** (money per 1,000 credits, `ClientRate`) prints amounts beside credits: each line is
  rounded half-up to cents and the total is the sum of the lines, so the printed columns add up.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum
from django.utils.timezone import now

from billing.ledger import period_bounds
from billing.models import Account, AccountStripe, Hold, HoldStatus, LedgerEntry, LedgerTransaction, TransactionKind
from orgs.audit import audit_record
from orgs.models import AuditAction, CreditMode, Organization, User
from qolaba.refusals import Refusal
from qolaba.tools import TOOL_GROUP, ReportGroup, Tool
from usage.models import (
    CLIENT_RATE_DECIMAL_PLACES,
    CLIENT_RATE_MAX_DIGITS,
    BalanceItem,
    ClientRate,
    Price,
    Statement,
    StatementBalanceLine,
    StatementLine,
    UsageEvent,
    UsageStatus,
)
from workspaces.models import Workspace

logger = logging.getLogger(__name__)

# A month is closed at least this long after it ended, so that a charge in flight at midnight has committed.
CLOSE_DELAY = timedelta(minutes=10)
# Months shown as drafts on the statements page: the current one, and those ended but not closed yet.
DRAFTS_SHOWN = 3
CENT = Decimal("0.01")
RATE_MAX = Decimal(10) ** (CLIENT_RATE_MAX_DIGITS - CLIENT_RATE_DECIMAL_PLACES)
_NUMBERING_LOCK_SPACE = 0x5717  # advisory-lock namespace: "numbering this organization's statements"


class StatementNotDue(Refusal):
    """The month cannot be closed yet: it is not over, or a generation held in it is still running."""

    code = "statement_not_due"


# --- months ------------------------------------------------------------------------------------------------------


def month_of(organization: Organization, at: datetime) -> date:
    """The first day of the month containing `at`, in the organization's time zone."""
    return period_bounds(organization, at)[0]


def month_bounds(organization: Organization, first_day: date) -> tuple[datetime, datetime]:
    """The instants the month of `first_day` starts and ends in the organization's time zone (`period_bounds`)."""
    starts_at = datetime(first_day.year, first_day.month, 1, tzinfo=ZoneInfo(organization.timezone))
    _, ends_at = period_bounds(organization, starts_at)
    return starts_at, ends_at


def next_month(first_day: date) -> date:
    return (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(first_day: date) -> date:
    return (first_day.replace(day=1) - timedelta(days=1)).replace(day=1)


# --- money -------------------------------------------------------------------------------------------------------


def amount_for(credits: int, rate_per_1000: Decimal) -> Decimal:
    """`credits` at `rate_per_1000` money per 1,000 credits: exact Decimal arithmetic, rounded half-up to cents."""
    with localcontext() as context:
        context.prec = 60  # credits (BIGINT) x rate never loses a digit before rounding
        return (Decimal(credits) * rate_per_1000 / 1000).quantize(CENT, rounding=ROUND_HALF_UP)


# --- figures -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineFigures:
    tool: str
    model: str
    unit: str
    generations: int
    units: int
    credits: int
    amount: Decimal | None = None

    @property
    def tool_label(self) -> str:
        return Tool(self.tool).label if self.tool in Tool.values else self.tool


LINE_FIELDS = tuple(line_field.name for line_field in fields(LineFigures))  # what a StatementLine stores of one


@dataclass(frozen=True)
class BalanceFigures:
    """A workspace balance over the month: opening + every item (signed: + in, - out) = closing."""

    opening: int
    items: list[tuple[BalanceItem, int]]
    closing: int

    def item(self, item: BalanceItem) -> int:
        return sum(credits for name, credits in self.items if name == item)

    @property
    def reconciles(self) -> bool:
        return self.opening + sum(credits for _, credits in self.items) == self.closing


@dataclass(frozen=True)
class StatementFigures:
    """Everything a statement shows, closed (read from its rows) or draft (computed now): one shape for the page,
    the CSV and the PDF."""

    organization_name: str
    workspace_name: str
    timezone: str
    period_start: date
    starts_at: datetime
    ends_at: datetime
    credit_mode: str
    lines: list[LineFigures]
    balance: BalanceFigures | None = None
    rate_per_1000: Decimal | None = None
    currency: str = ""
    number: str = ""
    closed_at: datetime | None = None
    as_of: datetime | None = None  # drafts: the figures count what happened before this instant

    @property
    def is_draft(self) -> bool:
        return self.closed_at is None

    @property
    def notes(self) -> list[str]:
        """What a reader must know to follow the balance: usage the workspace's own balance did not pay for."""
        if self.balance is None:
            return []
        unpaid = self.credits + self.balance.item(BalanceItem.SPENT)
        if not unpaid:
            return []
        return [
            f"{unpaid:,} credits of this month's usage were not paid from this workspace's balance but from the "
            "organization's shared pool (the credit mode changed during the month)."
        ]

    @property
    def generations(self) -> int:
        return sum(line.generations for line in self.lines)

    @property
    def credits(self) -> int:
        return sum(line.credits for line in self.lines)

    @property
    def amount(self) -> Decimal | None:
        if self.rate_per_1000 is None:
            return None
        return sum((line.amount or Decimal("0.00") for line in self.lines), Decimal("0.00"))

    def group_credits(self, group: ReportGroup) -> int:
        return sum(line.credits for line in self.lines if TOOL_GROUP.get(line.tool) == group)

    @property
    def chatbot_credits(self) -> int:
        return self.group_credits(ReportGroup.CHATBOT)

    @property
    def image_speech_credits(self) -> int:
        return self.group_credits(ReportGroup.IMAGE_SPEECH)

    @property
    def period_label(self) -> str:
        return f"{self.period_start:%B %Y}"

    @property
    def local_starts_at(self) -> datetime:
        return self.starts_at.astimezone(ZoneInfo(self.timezone))

    @property
    def local_ends_at(self) -> datetime:
        return self.ends_at.astimezone(ZoneInfo(self.timezone))

    @property
    def slug(self) -> str:
        """A name for its files: the number, or the month for a draft."""
        return self.number or f"{self.period_start:%Y-%m}-draft"


def _tool_order(tool: str) -> int:
    return Tool.values.index(tool) if tool in Tool.values else len(Tool.values)


def _usage_lines(
    workspace: Workspace, starts_at: datetime, until: datetime, rate_per_1000: Decimal | None
) -> list[LineFigures]:
    unit = Price.objects.filter(tool=OuterRef("tool"), model=OuterRef("model")).values("unit")[:1]
    rows = (
        UsageEvent.objects.filter(
            workspace=workspace, status=UsageStatus.CAPTURED, created_at__gte=starts_at, created_at__lt=until
        )
        .values("tool", "model")
        .annotate(generations=Count("id"), units=Sum("units"), credits=Sum("credits"), unit=Subquery(unit))
        .order_by()
    )
    lines = [
        LineFigures(
            tool=row["tool"],
            model=row["model"],
            unit=row["unit"] or "unit",
            generations=row["generations"],
            units=row["units"],
            credits=row["credits"],
            amount=amount_for(row["credits"], rate_per_1000) if rate_per_1000 is not None else None,
        )
        for row in rows
    ]
    return sorted(lines, key=lambda line: (_tool_order(line.tool), line.model))


USAGE_KINDS = (TransactionKind.CHARGE, TransactionKind.HOLD, TransactionKind.CAPTURE, TransactionKind.RELEASE)
SETTLEMENT_KINDS = (TransactionKind.CAPTURE, TransactionKind.RELEASE)
RECEIVED_KINDS = (
    TransactionKind.GRANT,
    TransactionKind.PURCHASE,
    TransactionKind.RENEWAL,
    TransactionKind.TRANSFER,
    TransactionKind.SWEEP,
    TransactionKind.RETURN,
    TransactionKind.BANK_UNLOCK,
)
OUTFLOW_ITEMS = {
    TransactionKind.TRANSFER: BalanceItem.TRANSFERRED_OUT,
    TransactionKind.SWEEP: BalanceItem.SWEPT_OUT,
    TransactionKind.RETURN: BalanceItem.RETURNED_OUT,
    TransactionKind.EXPIRY: BalanceItem.EXPIRED_OUT,
}
ALWAYS_SHOWN = (BalanceItem.RECEIVED, BalanceItem.SPENT)


def _account_balance_now_and_after(workspace: Workspace, until: datetime) -> tuple[int, int, int] | None:
    """The workspace's account, its live balance and the net of its movements from `until` on, read in ONE
    statement (one snapshot): the balance at `until` is their difference, exact even while charges keep landing."""
    account_table = Account._meta.db_table
    stripe_table = AccountStripe._meta.db_table
    entry_table = LedgerEntry._meta.db_table
    transaction_table = LedgerTransaction._meta.db_table
    sql = f"""
        SELECT a.id,
            (SELECT COALESCE(SUM(s.balance), 0) FROM {stripe_table} s WHERE s.account_id = a.id),
            (SELECT COALESCE(SUM(CASE WHEN e.to_account_id = a.id THEN e.amount ELSE -e.amount END), 0)
             FROM {entry_table} e JOIN {transaction_table} t ON t.id = e.transaction_id
             WHERE t.organization_id = a.organization_id AND t.created_at >= %s
               AND (e.from_account_id = a.id OR e.to_account_id = a.id))
        FROM {account_table} a WHERE a.workspace_id = %s
    """  # noqa: S608 (table names come from the models; every value is a parameter)
    with connection.cursor() as cursor:
        cursor.execute(sql, [connection.ops.adapt_datetimefield_value(until), workspace.pk])
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def _balance(workspace: Workspace, organization: Organization, starts_at: datetime, until: datetime) -> BalanceFigures:
    """The workspace account's movements in [starts_at, until), itemised; see the module docstring."""
    found = _account_balance_now_and_after(workspace, until)
    if found is None:
        return BalanceFigures(opening=0, items=[(item, 0) for item in ALWAYS_SHOWN], closing=0)
    account_id, balance_now, after = found
    in_window = {"transaction__created_at__gte": starts_at, "transaction__created_at__lt": until}
    entries = LedgerEntry.objects.filter(
        Q(from_account_id=account_id) | Q(to_account_id=account_id),
        transaction__organization_id=organization.pk,
        **in_window,
    )
    flows: dict[tuple[str, bool, bool], int] = {}
    for row in (
        entries.annotate(kind=F("transaction__kind"), spender=F("transaction__workspace_id"))
        .values("kind", "to_account_id", "spender")
        .annotate(total=Sum("amount"))
        .order_by()
    ):
        key = (row["kind"], row["to_account_id"] == account_id, row["spender"] == workspace.pk)
        flows[key] = flows.get(key, 0) + int(row["total"])
    window_net = sum(total if incoming else -total for (_, incoming, _), total in flows.items())

    # Settlements this month of holds placed before it: their remainder comes back now.
    returned_from_earlier = (
        entries.filter(
            to_account_id=account_id,
            transaction__kind__in=SETTLEMENT_KINDS,
            transaction__workspace_id=workspace.pk,
            transaction__settled_hold__hold_transaction__created_at__lt=starts_at,
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    # What the holds placed this month actually charged (captured), whenever they were captured.
    captured = (
        Hold.objects.filter(
            account_id=account_id,
            workspace=workspace,
            status=HoldStatus.CAPTURED,
            hold_transaction__created_at__gte=starts_at,
            hold_transaction__created_at__lt=until,
        ).aggregate(total=Sum("captured_amount"))["total"]
        or 0
    )

    def flow(kind: str, *, incoming: bool, own: bool | None = None) -> int:
        return sum(
            total for (k, i, o), total in flows.items() if k == kind and i == incoming and (own is None or o == own)
        )

    charges = flow(TransactionKind.CHARGE, incoming=False, own=True)
    holds_out = flow(TransactionKind.HOLD, incoming=False, own=True)
    settled_back = sum(flow(kind, incoming=True, own=True) for kind in SETTLEMENT_KINDS)
    items: dict[BalanceItem, int] = {
        BalanceItem.RECEIVED: sum(flow(kind, incoming=True) for kind in RECEIVED_KINDS),
        BalanceItem.SPENT: -(charges + captured),
        BalanceItem.REFUNDED: flow(TransactionKind.REFUND, incoming=True),
        BalanceItem.RETURNED_FROM_HOLDS: returned_from_earlier,
        # Held this month and not (yet) back by its end: still running, or settled after the month (or, for a
        # workspace deleted or switched to the shared pool meanwhile, given back to the pool instead).
        BalanceItem.HELD_OVER: -(holds_out - (settled_back - returned_from_earlier) - captured),
    }
    for kind, item in OUTFLOW_ITEMS.items():
        items[item] = -flow(kind, incoming=False)
    items[BalanceItem.OTHERS_SPENT] = sum(
        flow(kind, incoming=True, own=False) - flow(kind, incoming=False, own=False) for kind in USAGE_KINDS
    )
    items[BalanceItem.OTHER] = window_net - sum(items.values())
    closing = balance_now - after
    return BalanceFigures(
        opening=closing - window_net,
        items=[(item, credits) for item, credits in items.items() if credits or item in ALWAYS_SHOWN],
        closing=closing,
    )


def client_rate_of(workspace: Workspace) -> ClientRate | None:
    return ClientRate.objects.filter(workspace=workspace).first()


def statement_compute(
    *, workspace: Workspace, period_start: date, as_of: datetime | None = None, rate: ClientRate | None = None
) -> StatementFigures:
    """The figures of the workspace's month of `period_start`, computed from the events and the ledger: the whole
    month, or (a draft) only what happened before `as_of`. `rate` is the client rate to print (default: none)."""
    organization = workspace.organization
    starts_at, ends_at = month_bounds(organization, period_start)
    until = ends_at if as_of is None else max(starts_at, min(ends_at, as_of))
    rate_per_1000 = rate.rate_per_1000 if rate is not None else None
    lines = _usage_lines(workspace, starts_at, until, rate_per_1000)
    balance = None
    if organization.credit_mode == CreditMode.BUDGET:
        balance = _balance(workspace, organization, starts_at, until)
    return StatementFigures(
        organization_name=organization.name,
        workspace_name=workspace.name,
        timezone=organization.timezone,
        period_start=period_start,
        starts_at=starts_at,
        ends_at=ends_at,
        credit_mode=organization.credit_mode,
        lines=lines,
        balance=balance,
        rate_per_1000=rate_per_1000,
        currency=rate.currency if rate is not None else "",
        as_of=None if as_of is None else until,
    )


def statement_figures(statement: Statement) -> StatementFigures:
    """A closed statement as it was closed (its lines and balance lines prefetched or read here)."""
    balance = None
    if statement.opening_balance is not None and statement.closing_balance is not None:
        balance = BalanceFigures(
            opening=statement.opening_balance,
            items=[(BalanceItem(line.item), line.credits) for line in statement.balance_lines.all()],
            closing=statement.closing_balance,
        )
    lines = [LineFigures(**{name: getattr(line, name) for name in LINE_FIELDS}) for line in statement.lines.all()]
    return StatementFigures(
        organization_name=statement.organization_name,
        workspace_name=statement.workspace_name,
        timezone=statement.timezone,
        period_start=statement.period_start,
        starts_at=statement.starts_at,
        ends_at=statement.ends_at,
        credit_mode=statement.credit_mode,
        lines=lines,
        balance=balance,
        rate_per_1000=statement.rate_per_1000,
        currency=statement.currency,
        number=statement.number,
        closed_at=statement.closed_at,
    )


# --- reads for the pages -----------------------------------------------------------------------------------------


def workspace_statements(*, workspace: Workspace) -> list[Statement]:
    """The workspace's closed statements, newest first (their totals are on the row: one query)."""
    return list(Statement.objects.filter(workspace=workspace).order_by("-period_start"))


def statement_find(*, workspace: Workspace, period_start: date) -> Statement | None:
    return (
        Statement.objects.filter(workspace=workspace, period_start=period_start)
        .prefetch_related("lines", "balance_lines")
        .first()
    )


def draft_months(*, workspace: Workspace, latest_closed: date | None, at: datetime | None = None) -> list[date]:
    """The months not closed yet that the page shows as drafts, newest first: the current one, and the ones that
    ended but wait to be closed (within minutes, or until a generation held in them is settled)."""
    organization = workspace.organization
    current = month_of(organization, at or now())
    first = next_month(latest_closed) if latest_closed else month_of(organization, workspace.created_at)
    months: list[date] = []
    month = current
    while month >= first and len(months) < DRAFTS_SHOWN:
        months.append(month)
        month = previous_month(month)
    return months


def statement_month_is_open(*, workspace: Workspace, period_start: date, at: datetime | None = None) -> bool:
    """Whether the month (not closed) can be shown as a draft: from the workspace's first month to the current."""
    organization = workspace.organization
    return month_of(organization, workspace.created_at) <= period_start <= month_of(organization, at or now())


# --- writes ------------------------------------------------------------------------------------------------------


def _holds_pending(workspace: Workspace, starts_at: datetime, ends_at: datetime) -> bool:
    """A generation held in the month and not settled yet: its credits are not known, so the month cannot close."""
    return (
        UsageEvent.objects.filter(
            workspace=workspace, status=UsageStatus.HELD, created_at__gte=starts_at, created_at__lt=ends_at
        ).exists()
        or Hold.objects.filter(
            account__workspace=workspace,
            status=HoldStatus.PENDING,
            hold_transaction__created_at__gte=starts_at,
            hold_transaction__created_at__lt=ends_at,
        ).exists()
    )


def _lock_numbering(organization: Organization) -> None:
    """Serialize the numbering of one organization's statements until the transaction ends (PostgreSQL; SQLite
    has one writer at a time anyway). An advisory lock, not the organization row: charges share-lock that row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_NUMBERING_LOCK_SPACE, organization.pk])


def statement_number(organization: Organization, period_start: date, sequence: int) -> str:
    return f"{organization.slug.upper()}-{period_start:%Y-%m}-{sequence:04d}"


def statement_close(*, workspace: Workspace, period_start: date, at: datetime | None = None) -> tuple[Statement, bool]:
    """Close the workspace's month of `period_start` into an immutable, numbered statement.

    Returns (statement, True) when this call closed it and (the statement, False) when it was closed already: a
    second run, or a concurrent one, creates nothing twice (the numbering lock, then the unique (workspace, month)
    constraint as the last word). Refuses (StatementNotDue) a month not over, or with a held generation unsettled.
    """
    existing = Statement.objects.filter(workspace=workspace, period_start=period_start).first()
    if existing is not None:
        return existing, False
    organization = workspace.organization
    starts_at, ends_at = month_bounds(organization, period_start)
    if (at or now()) < ends_at + CLOSE_DELAY:
        raise StatementNotDue(f"{period_start:%B %Y} is not over yet in {organization.timezone}.")
    if workspace.archived_at is not None and workspace.archived_at < starts_at:
        raise StatementNotDue(f"{workspace.name} was deleted before {period_start:%B %Y}.")
    if _holds_pending(workspace, starts_at, ends_at):
        raise StatementNotDue(f"A generation held in {period_start:%B %Y} is not settled yet.")
    rate = client_rate_of(workspace)
    figures = statement_compute(workspace=workspace, period_start=period_start, rate=rate)
    with transaction.atomic():
        _lock_numbering(organization)
        existing = Statement.objects.filter(workspace=workspace, period_start=period_start).first()
        if existing is not None:
            return existing, False
        last = Statement.objects.filter(organization=organization).aggregate(last=Max("sequence"))["last"] or 0
        balance = figures.balance
        try:
            with transaction.atomic():
                statement = Statement.objects.create(
                    organization=organization,
                    workspace=workspace,
                    sequence=last + 1,
                    number=statement_number(organization, period_start, last + 1),
                    period_start=period_start,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    timezone=organization.timezone,
                    organization_name=organization.name,
                    workspace_name=workspace.name,
                    credit_mode=organization.credit_mode,
                    generations=figures.generations,
                    credits=figures.credits,
                    opening_balance=balance.opening if balance is not None else None,
                    closing_balance=balance.closing if balance is not None else None,
                    rate_per_1000=figures.rate_per_1000,
                    currency=figures.currency,
                    amount=figures.amount,
                )
        except IntegrityError:
            # Only without the numbering lock (another database): the constraint had the last word.
            existing = Statement.objects.filter(workspace=workspace, period_start=period_start).first()
            if existing is None:
                raise
            return existing, False
        StatementLine.objects.bulk_create(
            StatementLine(statement=statement, position=position, **asdict(line))
            for position, line in enumerate(figures.lines, start=1)
        )
        if balance is not None:
            StatementBalanceLine.objects.bulk_create(
                StatementBalanceLine(statement=statement, position=position, item=item, credits=credits)
                for position, (item, credits) in enumerate(balance.items, start=1)
            )
        audit_record(
            organization=organization,
            actor=None,
            action=AuditAction.STATEMENT_CLOSED,
            target=statement,
            after={
                "number": statement.number,
                "workspace": workspace.name,
                "period": f"{period_start:%Y-%m}",
                "credits": statement.credits,
                "amount": f"{statement.amount} {statement.currency}" if statement.amount is not None else None,
            },
        )
    return statement, True


def statements_close_due(*, at: datetime | None = None) -> int:
    """Close every month that is over, for every workspace (archived ones up to the month they were deleted in),
    in order: from the month after its latest statement (or the month it was created) to the last month over.
    A month that cannot close yet (a hold still running) stops that workspace until the next run. Returns how
    many statements were closed."""
    moment = at or now()
    closed = 0
    workspaces = (
        Workspace.objects.filter(organization__deleted_at__isnull=True)
        .select_related("organization")
        .annotate(last_closed=Max("statements__period_start"))
        .order_by("organization_id", "-is_primary", "name", "pk")
    )
    for workspace in workspaces:
        organization = workspace.organization
        last = previous_month(month_of(organization, moment - CLOSE_DELAY))
        if workspace.archived_at is not None:
            last = min(last, month_of(organization, workspace.archived_at))
        last_closed: date | None = workspace.last_closed  # type: ignore[attr-defined]
        month = next_month(last_closed) if last_closed else month_of(organization, workspace.created_at)
        while month <= last:
            try:
                _, created = statement_close(workspace=workspace, period_start=month, at=moment)
            except StatementNotDue:
                break
            except Exception:
                logger.exception("Closing the statement of workspace %s for %s failed", workspace.pk, month)
                break
            closed += created
            month = next_month(month)
    return closed


def _rate_text(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


@transaction.atomic
def client_rate_set(
    *, workspace: Workspace, rate_per_1000: Decimal | None, currency: str, actor: User | None
) -> ClientRate | None:
    """Set (or, with no rate, remove) the workspace's client rate. Closed statements keep the rate they had."""
    currency = currency.strip().upper()
    current = ClientRate.objects.select_for_update().filter(workspace=workspace).first()
    before = {"rate_per_1000": _rate_text(current.rate_per_1000), "currency": current.currency} if current else {}
    if rate_per_1000 is None:
        if current is None:
            return None
        current.delete()
        rate = None
        after: dict[str, str] = {}
    else:
        errors = {}
        if not rate_per_1000.is_finite() or rate_per_1000 <= 0 or rate_per_1000 >= RATE_MAX:
            errors["rate_per_1000"] = f"Enter a rate above 0 and below {RATE_MAX:,}."
        elif -rate_per_1000.as_tuple().exponent > CLIENT_RATE_DECIMAL_PLACES:  # type: ignore[operator]
            errors["rate_per_1000"] = f"Use at most {CLIENT_RATE_DECIMAL_PLACES} decimal places."
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            errors["currency"] = "Enter a three-letter ISO 4217 currency code, e.g. EUR."
        if errors:
            raise ValidationError(errors)
        rate, _ = ClientRate.objects.update_or_create(
            workspace=workspace,
            defaults={"rate_per_1000": rate_per_1000, "currency": currency, "updated_by": actor, "updated_at": now()},
        )
        after = {"rate_per_1000": _rate_text(rate_per_1000), "currency": rate.currency}
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.CLIENT_RATE_SET,
        target=workspace,
        before=before,
        after=after,
    )
    return rate
