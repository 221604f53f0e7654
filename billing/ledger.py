"""The ledger's write primitive and the credit-movement services built on it.

Every movement goes through `post_transaction`, inside the caller's transaction:

1. insert the LedgerTransaction and its entries (no lock on any balance row yet);
2. move the monthly spend counters, each with a conditional upsert (limits can never be exceeded);
3. apply the cached balances, in ascending account id. A balance is striped over several rows (AccountStripe):
   a debit is a conditional `UPDATE … SET balance = balance - x WHERE … AND balance >= x` on the stripe of this
   database connection; when that stripe is short, every stripe of the account is locked in stripe order, the
   total checked (a refusal happens only when the whole balance is short) and what is left spread evenly again.

Locks are therefore always taken in one order — counters, then (account id, stripe) — so concurrent charges,
transfers and sweeps never deadlock; concurrent spenders of one pool mostly update different rows.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Q, Sum
from django.utils.timezone import now

from billing.models import (
    CACHED_KINDS,
    ORGANIZATION_KINDS,
    Account,
    AccountKind,
    AccountStripe,
    Hold,
    HoldStatus,
    LedgerEntry,
    LedgerTransaction,
    SpendCounter,
    TransactionKind,
    WorkspaceLimit,
    account_balance,
    balance_of,
)
from orgs.models import CreditMode, Organization, User
from qolaba.db import Statement, execute_prepared_once
from qolaba.refusals import Refusal
from workspaces.models import Workspace

LimitName = Literal["workspace_balance", "pool", "workspace_monthly_limit", "member_monthly_limit"]
HOLD_TTL_DEFAULT = timedelta(seconds=900)
HOLD_TTL_MAX = timedelta(seconds=86400)


class LedgerError(Refusal):
    """A refusal of the ledger: nothing was written."""

    code = "ledger_error"


class InvalidAmount(LedgerError):
    code = "invalid_amount"


class CreditLimitReached(LedgerError):
    """Which limit stopped a spend, what is left under it, and when it resets (None: it does not reset)."""

    code = "insufficient_credits"

    def __init__(self, *, limit: LimitName, available: int, resets_at: datetime | None) -> None:
        self.limit, self.available, self.resets_at = limit, max(available, 0), resets_at
        labels = {
            "workspace_balance": "The workspace's credit balance",
            "pool": "The organization's shared credit pool",
            "workspace_monthly_limit": "The workspace's monthly spend limit",
            "member_monthly_limit": "Your monthly spend limit in this workspace",
        }
        when = f"; it resets on {resets_at:%Y-%m-%d %H:%M %Z}" if resets_at else ""
        super().__init__(f"{labels[limit]} has {self.available} credits left{when}.")


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"


class HoldNotPending(LedgerError):
    code = "hold_not_pending"


class ModeMismatch(LedgerError):
    code = "wrong_credit_mode"


# --- periods -------------------------------------------------------------------------------------------------


# time zone -> (instant the period starts, its first day, instant it ends): every charge needs its period.
_periods: dict[str, tuple[datetime, date, datetime]] = {}


def period_bounds(organization: Organization, at: datetime | None = None) -> tuple[date, datetime]:
    """The budget period containing `at`: a calendar month in the organization's time zone.

    Returns (first day of the month, the instant the next month starts there).
    """
    moment = at or now()
    cached = _periods.get(organization.timezone)
    if cached is not None and cached[0] <= moment < cached[2]:
        return cached[1], cached[2]
    tz = ZoneInfo(organization.timezone)
    start = moment.astimezone(tz).date().replace(day=1)
    next_month = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    starts_at = datetime(start.year, start.month, 1, tzinfo=tz)
    resets_at = datetime(next_month.year, next_month.month, 1, tzinfo=tz)
    _periods[organization.timezone] = (starts_at, start, resets_at)
    return start, resets_at


# --- accounts ------------------------------------------------------------------------------------------------


def _open(*, stripes: int, **fields: Any) -> Account:
    account = Account.objects.create(stripes=stripes, **fields)
    if account.kind in CACHED_KINDS:  # system accounts keep no balance rows: their balance is their entries
        AccountStripe.objects.bulk_create([AccountStripe(account=account, stripe=i) for i in range(stripes)])
    return account


def accounts_open_for_organization(*, organization: Organization) -> None:
    existing = set(Account.objects.filter(organization=organization).values_list("kind", flat=True))
    for kind in ORGANIZATION_KINDS:
        if kind not in existing:
            _open(organization=organization, kind=kind, stripes=1)


def account_open_for_workspace(*, workspace: Workspace) -> Account:
    account = Account.objects.filter(workspace=workspace).first()
    if account is None:
        account = _open(
            organization_id=workspace.organization_id,
            workspace=workspace,
            kind=AccountKind.WORKSPACE,
            stripes=settings.CREDIT_BALANCE_STRIPES,
        )
    return account


def system_account_ids(organization_id: int) -> dict[str, int]:
    rows = Account.objects.filter(organization_id=organization_id, kind__in=ORGANIZATION_KINDS)
    return {kind: pk for pk, kind in rows.values_list("pk", "kind")}


@dataclass(frozen=True)
class PayingAccount:
    """Where a workspace's spending comes from: its own balance (budget mode) or the pool (shared mode)."""

    account_id: int
    limit: LimitName
    workspace_account_id: int
    primary_account_id: int
    balance: int  # as read (the ledger never relies on it: debits are conditional updates)


def paying_account(workspace: Workspace, organization: Organization) -> PayingAccount:
    rows = Account.objects.filter(kind=AccountKind.WORKSPACE, organization_id=organization.pk).filter(
        Q(workspace_id=workspace.pk) | Q(workspace__is_primary=True)
    )
    own = primary = None
    balances: dict[int, int] = {}
    annotated = rows.annotate(live_balance=balance_of("pk"))
    for pk, ws_id, is_primary, balance in annotated.values_list(
        "pk", "workspace_id", "workspace__is_primary", "live_balance"
    ):
        balances[pk] = balance
        if ws_id == workspace.pk:
            own = pk
        if is_primary:
            primary = pk
    if own is None or primary is None:
        raise LedgerError("This workspace has no credit account.")
    if organization.credit_mode == CreditMode.SHARED:
        return PayingAccount(primary, "pool", own, primary, balances[primary])
    return PayingAccount(own, "workspace_balance", own, primary, balances[own])


def available_credits(workspace: Workspace, organization: Organization) -> int:
    """What the workspace can spend right now (its balance or the pool), before any monthly limit."""
    return paying_account(workspace, organization).balance


# --- the write primitive -------------------------------------------------------------------------------------


class _Insufficient(Exception):
    def __init__(self, account_id: int) -> None:
        self.account_id = account_id


class _CounterFull(Exception):
    def __init__(self, user_id: int | None) -> None:
        self.user_id = user_id


@dataclass(frozen=True)
class CounterMove:
    """Add `amount` (negative to give back) to a spend counter; with `limit`, refuse to go past it."""

    workspace_id: int
    user_id: int | None
    period_start: date
    amount: int
    limit: int | None


def _move_counter(move: CounterMove) -> None:
    """Portable SQL (PostgreSQL and SQLite): a conditional upsert going up, a floor-at-zero update going down."""
    table = SpendCounter._meta.db_table
    if move.user_id is None:
        target, who, who_params = "(workspace_id, period_start) WHERE user_id IS NULL", "user_id IS NULL", []
    else:
        target, who, who_params = (
            "(workspace_id, user_id, period_start) WHERE user_id IS NOT NULL",
            "user_id = %s",
            [move.user_id],
        )
    with connection.cursor() as cursor:
        if move.amount >= 0:
            if move.limit is not None and move.amount > move.limit:
                raise _CounterFull(move.user_id)
            guard = "" if move.limit is None else f"WHERE {table}.spent + excluded.spent <= %s"
            cursor.execute(
                f"INSERT INTO {table} (workspace_id, user_id, period_start, spent) VALUES (%s, %s, %s, %s) "  # noqa: S608
                f"ON CONFLICT {target} DO UPDATE SET spent = {table}.spent + excluded.spent {guard} RETURNING spent",
                [move.workspace_id, move.user_id, move.period_start, move.amount]
                + ([] if move.limit is None else [move.limit]),
            )
            if cursor.fetchone() is None:
                raise _CounterFull(move.user_id)
        else:
            cursor.execute(
                f"UPDATE {table} SET spent = CASE WHEN spent + %s < 0 THEN 0 ELSE spent + %s END "  # noqa: S608
                f"WHERE workspace_id = %s AND period_start = %s AND {who}",
                [move.amount, move.amount, move.workspace_id, move.period_start, *who_params],
            )


_DEBIT_LOCK_SPACE = 0x51C0  # advisory-lock namespace: "debiting this account outside the one-statement charge"


def lock_for_debit(account_ids: Iterable[int]) -> None:
    """Queue, in ascending account id, on each account's transaction-scoped debit lock.

    A conditional UPDATE that waits for a row and then fails its recheck keeps the row lock it took, so a
    debit that falls back to locking every stripe could otherwise hold one stripe while waiting for the rest.
    Debits other than the one-statement charge (which never waits while holding a lock) therefore take this lock
    first; together with ascending order it keeps the lock order total."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for account_id in sorted(set(account_ids)):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_DEBIT_LOCK_SPACE, account_id])


def _my_stripe(stripes: int) -> int:
    """The stripe this database connection debits: spreads concurrent spenders over different rows."""
    if stripes <= 1:
        return 0
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql" and db.connection is not None:
        return int(db.connection.info.backend_pid) % stripes
    return os.getpid() % stripes


def _collect(cursor: Any, account_id: int, need: int, stripes: int) -> None:
    """Take `need` from the account as a whole: lock every stripe, then spread what is left evenly.

    The caller holds the account's debit lock (`lock_for_debit`)."""
    table = AccountStripe._meta.db_table
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    cursor.execute(
        f"SELECT balance FROM {table} WHERE account_id = %s ORDER BY stripe{lock}",  # noqa: S608
        [account_id],
    )
    total = sum(row[0] for row in cursor.fetchall())
    if total < need:
        raise _Insufficient(account_id)
    left = total - need
    cursor.execute(
        f"UPDATE {table} SET balance = CASE WHEN stripe < %s THEN %s ELSE %s END WHERE account_id = %s",  # noqa: S608
        [left % stripes, left // stripes + 1, left // stripes, account_id],
    )


def _apply_balances(deltas: Mapping[int, int]) -> dict[int, int]:
    """Apply signed deltas to cached balances in ascending account id; no balance ever goes below zero."""
    table = AccountStripe._meta.db_table
    stripes_of = dict(Account.objects.filter(pk__in=list(deltas)).values_list("pk", "stripes"))
    balances: dict[int, int] = {}
    with connection.cursor() as cursor:
        for account_id in sorted(deltas):
            delta, stripes = deltas[account_id], stripes_of[account_id]
            mine = _my_stripe(stripes)
            if delta > 0:
                cursor.execute(
                    f"UPDATE {table} SET balance = balance + %s WHERE account_id = %s AND stripe = %s",  # noqa: S608
                    [delta, account_id, mine],
                )
            else:
                if stripes > 1:
                    lock_for_debit([account_id])
                cursor.execute(
                    f"UPDATE {table} SET balance = balance + %s "  # noqa: S608
                    "WHERE account_id = %s AND stripe = %s AND balance >= %s RETURNING balance",
                    [delta, account_id, mine, -delta],
                )
                if cursor.fetchone() is None:
                    _collect(cursor, account_id, -delta, stripes)
            cursor.execute(f"SELECT SUM(balance) FROM {table} WHERE account_id = %s", [account_id])  # noqa: S608
            balances[account_id] = int(cursor.fetchone()[0])
    return balances


Movement = tuple[int, int, int]  # (from account id, to account id, credits)


def post_transaction(
    *,
    organization_id: int,
    kind: TransactionKind,
    amount: int,
    movements: Iterable[Movement],
    cached_account_ids: set[int],
    actor: User | None = None,
    workspace_id: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str = "",
    memo: str = "",
    reverses: LedgerTransaction | None = None,
    period_start: date | None = None,
    counters: Iterable[CounterMove] = (),
    counted: list[list[int | None]] | None = None,
) -> tuple[LedgerTransaction, dict[int, int]]:
    """Write one transaction of movements (inside transaction.atomic). Returns it and the new cached balances."""
    lines = [(source, target, value) for source, target, value in movements if value != 0]
    if any(value < 0 for _, _, value in lines) or sum(value for _, _, value in lines) != amount:
        raise LedgerError("A ledger transaction's movements must be positive and add up to its amount.")
    txn = LedgerTransaction.objects.create(
        organization_id=organization_id,
        kind=kind,
        amount=amount,
        actor=actor,
        workspace_id=workspace_id,
        idempotency_key=idempotency_key or "",
        request_hash=request_hash,
        memo=memo[:255],
        reverses=reverses,
        period_start=period_start,
        counted=counted or [],
    )
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=txn, from_account_id=src, to_account_id=dst, amount=value)
            for src, dst, value in lines
        ]
    )
    for move in counters:
        _move_counter(move)
    deltas: dict[int, int] = defaultdict(int)
    for source, target, value in lines:
        if source in cached_account_ids:
            deltas[source] -= value
        if target in cached_account_ids:
            deltas[target] += value
    return txn, _apply_balances({k: v for k, v in deltas.items() if v != 0})


def request_fingerprint(**fields: Any) -> str:
    """What a request asked for, so that a replayed idempotency key can be told apart from a reused one."""
    canonical = "|".join(f"{name}={fields[name]!r}" for name in sorted(fields))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(organization_id: int, key: str | None, fingerprint: str) -> LedgerTransaction | None:
    if not key:
        return None
    existing = LedgerTransaction.objects.filter(organization_id=organization_id, idempotency_key=key).first()
    if existing is not None and existing.request_hash != fingerprint:
        raise IdempotencyConflict("This idempotency key was already used for a different request.")
    return existing


MAX_AMOUNT = 10**15  # far above any real movement, far below BIGINT


def _replay_or_raise(organization_id: int, key: str | None, fingerprint: str, error: Exception) -> LedgerTransaction:
    """After a unique violation: a concurrent request with the same key won the race — answer with its result."""
    raced = _replay(organization_id, key, fingerprint)
    if raced is None:
        raise error
    return raced


def _require_positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount("The amount must be a whole number of credits greater than zero.")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"The amount can be at most {MAX_AMOUNT:,} credits.")


def _share_lock(organization: Organization, workspaces: Iterable[Workspace] = ()) -> None:
    """Inside a transaction: hold the organization (and workspaces) steady for this movement.

    A share lock makes a credit-mode switch (which updates the organization row) or a workspace archive (which
    updates the workspace row) wait for the movement, or the movement for them; the mode and `archived_at` are
    then read as they are in force. Lock order: organization, workspaces by id, counters, accounts by id."""
    ids = sorted({ws.pk for ws in workspaces})
    share = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT credit_mode FROM orgs_organization WHERE id = %s{share}", [organization.pk])  # noqa: S608
        organization.credit_mode = cursor.fetchone()[0]
        if ids:
            placeholders = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"SELECT id, archived_at FROM workspaces_workspace WHERE id IN ({placeholders}) ORDER BY id{share}",  # noqa: S608
                ids,
            )
            archived = {pk for pk, archived_at in cursor.fetchall() if archived_at is not None}
            for workspace in workspaces:
                if workspace.pk in archived:
                    workspace.archived_at = workspace.archived_at or now()
                    raise LedgerError("Deleted workspaces cannot send, receive or spend credits.")


# --- spending ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendResult:
    transaction_id: int
    available: int
    replayed: bool = False
    hold: Hold | None = None


def _limit_moves(
    *, organization: Organization, workspace: Workspace, user: User | None, amount: int, period_start: date
) -> list[CounterMove]:
    """Counter moves for the monthly limits that apply (workspace limit only in shared mode)."""
    filters = Q(user__isnull=True) if user is None else Q(user__isnull=True) | Q(user=user)
    moves = []
    for limit_user_id, monthly_limit in WorkspaceLimit.objects.filter(filters, workspace=workspace).values_list(
        "user_id", "monthly_limit"
    ):
        if limit_user_id is None and organization.credit_mode != CreditMode.SHARED:
            continue
        moves.append(CounterMove(workspace.pk, limit_user_id, period_start, amount, monthly_limit))
    # Workspace counter first, then the member's: one fixed lock order.
    return sorted(moves, key=lambda move: (move.user_id is not None, move.user_id or 0))


def _refusal(
    error: _Insufficient | _CounterFull, *, paying: PayingAccount, organization: Organization, workspace: Workspace
) -> CreditLimitReached:
    period_start, resets_at = period_bounds(organization)
    if isinstance(error, _Insufficient):
        return CreditLimitReached(limit=paying.limit, available=account_balance(paying.account_id), resets_at=None)
    who = Q(user__isnull=True) if error.user_id is None else Q(user_id=error.user_id)
    limit = WorkspaceLimit.objects.get(who, workspace=workspace).monthly_limit
    spent = (
        SpendCounter.objects.filter(who, workspace=workspace, period_start=period_start)
        .values_list("spent", flat=True)
        .first()
        or 0
    )
    name: LimitName = "workspace_monthly_limit" if error.user_id is None else "member_monthly_limit"
    return CreditLimitReached(limit=name, available=limit - spent, resets_at=resets_at)


def _spend(
    *,
    kind: Literal["charge", "hold"],
    organization: Organization,
    workspace: Workspace,
    user: User | None,
    amount: int,
    idempotency_key: str | None,
    fingerprint: str,
    memo: str,
    ttl: timedelta | None = None,
) -> SpendResult:
    _require_positive(amount)
    existing = _replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return _replayed(existing, workspace, organization)
    system = system_account_ids(organization.pk)
    period_start, _ = period_bounds(organization)
    target = system[AccountKind.SINK] if kind == "charge" else system[AccountKind.HOLDS]
    paying: PayingAccount | None = None
    try:
        with transaction.atomic():
            _share_lock(organization, [workspace])
            paying = paying_account(workspace, organization)
            counter_moves = _limit_moves(
                organization=organization, workspace=workspace, user=user, amount=amount, period_start=period_start
            )
            txn, balances = post_transaction(
                organization_id=organization.pk,
                kind=TransactionKind.CHARGE if kind == "charge" else TransactionKind.HOLD,
                amount=amount,
                movements=[(paying.account_id, target, amount)],
                cached_account_ids={paying.account_id},
                actor=user,
                workspace_id=workspace.pk,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                memo=memo,
                period_start=period_start,
                counters=counter_moves,
                counted=[[move.workspace_id, move.user_id] for move in counter_moves],
            )
            hold = None
            if kind == "hold":
                hold = Hold.objects.create(
                    organization=organization,
                    workspace=workspace,
                    account_id=paying.account_id,
                    user=user,
                    amount=amount,
                    period_start=period_start,
                    expires_at=now() + (ttl or HOLD_TTL_DEFAULT),
                    hold_transaction=txn,
                )
    except (_Insufficient, _CounterFull) as error:
        assert paying is not None  # noqa: S101 (refusals come after the paying account is known)
        raise _refusal(error, paying=paying, organization=organization, workspace=workspace) from None
    except IntegrityError as error:
        # A concurrent request with the same idempotency key won the race: answer as a replay.
        return _replayed(
            _replay_or_raise(organization.pk, idempotency_key, fingerprint, error), workspace, organization
        )
    return SpendResult(transaction_id=txn.pk, available=balances[paying.account_id], hold=hold)


def _replayed(existing: LedgerTransaction, workspace: Workspace, organization: Organization) -> SpendResult:
    hold = Hold.objects.filter(hold_transaction=existing).first()
    return SpendResult(
        transaction_id=existing.pk, available=available_credits(workspace, organization), replayed=True, hold=hold
    )


# The one-shot charge on PostgreSQL, as a single statement in autocommit: resolve the paying account from the
# credit mode, debit it conditionally, record the balanced transaction. The contended row is locked from its
# UPDATE to the COMMIT of this one statement. Workspaces with monthly limits take the general path (no row).
_CHARGE_STATEMENT = Statement("""
WITH ctx AS (
    SELECT
        CASE WHEN o.credit_mode = 'shared'
            THEN (SELECT a.id FROM billing_account a JOIN workspaces_workspace w ON w.id = a.workspace_id
                  WHERE w.organization_id = o.id AND w.is_primary)
            ELSE (SELECT a.id FROM billing_account a WHERE a.workspace_id = %(workspace)s)
        END AS paying,
        o.credit_mode AS mode,
        (SELECT a.id FROM billing_account a WHERE a.organization_id = o.id AND a.kind = 'sink') AS sink,
        EXISTS (SELECT 1 FROM billing_workspacelimit l WHERE l.workspace_id = %(workspace)s
                AND (l.user_id IS NULL OR l.user_id = %(user)s))
        OR EXISTS (SELECT 1 FROM workspaces_workspace w WHERE w.id = %(workspace)s AND w.archived_at IS NOT NULL)
        AS limited
    FROM orgs_organization o WHERE o.id = %(organization)s
), pay AS (
    SELECT ctx.paying, ctx.mode, ctx.sink, ctx.limited, a.stripes
    FROM ctx JOIN billing_account a ON a.id = ctx.paying
), debit AS (
    UPDATE billing_accountstripe s SET balance = s.balance - %(amount)s
    FROM pay
    WHERE s.account_id = pay.paying AND s.stripe = pg_backend_pid() %% pay.stripes
      AND s.balance >= %(amount)s AND NOT pay.limited
    RETURNING s.account_id
), txn AS (
    INSERT INTO billing_ledgertransaction
        (organization_id, kind, amount, actor_id, workspace_id, idempotency_key, request_hash, memo,
         created_at, period_start, reverses_id, counted)
    SELECT %(organization)s, 'charge', %(amount)s, %(user)s, %(workspace)s, %(key)s, %(fingerprint)s, %(memo)s,
           %(created)s, %(period)s, NULL, '[]'::jsonb
    FROM debit
    RETURNING id
), movement AS (
    INSERT INTO billing_ledgerentry (transaction_id, from_account_id, to_account_id, amount)
    SELECT txn.id, debit.account_id, pay.sink, %(amount)s FROM txn, debit, pay
)
SELECT pay.paying, pay.mode, pay.limited,
       (SELECT SUM(balance) FROM billing_accountstripe WHERE account_id = pay.paying) - %(amount)s,
       txn.id
FROM pay LEFT JOIN debit ON TRUE LEFT JOIN txn ON TRUE
""")


def _charge_postgresql(
    *,
    organization: Organization,
    workspace: Workspace,
    user: User | None,
    amount: int,
    idempotency_key: str | None,
    fingerprint: str,
    memo: str,
) -> SpendResult | None:
    """The single-statement charge; None when the general path must decide (limits, or a short stripe)."""
    params = {
        "organization": organization.pk,
        "workspace": workspace.pk,
        "user": user.pk if user is not None else None,
        "amount": amount,
        "key": idempotency_key or "",
        "fingerprint": fingerprint,
        "memo": memo[:255],
        "period": period_bounds(organization)[0],
        "created": now(),
    }
    try:
        row = execute_prepared_once(_CHARGE_STATEMENT, params, done=lambda row: row is not None and row[4] is not None)
    except (IntegrityError, psycopg.errors.UniqueViolation) as error:
        return _replayed(
            _replay_or_raise(organization.pk, idempotency_key, fingerprint, error), workspace, organization
        )
    if row is None or row[0] is None:
        raise LedgerError("This workspace has no credit account.")
    _, _, limited, available, txn_id = row
    if limited or txn_id is None:
        # Monthly limits apply, or this connection's stripe is short: the general path checks the whole balance
        # (and refuses only if that is short).
        return None
    return SpendResult(transaction_id=txn_id, available=int(available))


def charge(
    *,
    organization: Organization,
    workspace: Workspace,
    user: User | None,
    amount: int,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    memo: str = "",
) -> SpendResult:
    """One-shot charge of a fixed price: paying balance → consumption, limits checked in the same transaction."""
    fingerprint = fingerprint or request_fingerprint(op="charge", ws=workspace.pk, user=user and user.pk, amount=amount)
    _require_positive(amount)
    if connection.vendor == "postgresql":
        fast = _charge_postgresql(
            organization=organization,
            workspace=workspace,
            user=user,
            amount=amount,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            memo=memo,
        )
        if fast is not None:
            return fast
    return _spend(
        kind="charge",
        organization=organization,
        workspace=workspace,
        user=user,
        amount=amount,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        memo=memo,
    )


def hold_place(
    *,
    organization: Organization,
    workspace: Workspace,
    user: User | None,
    amount: int,
    ttl: timedelta = HOLD_TTL_DEFAULT,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    memo: str = "",
) -> SpendResult:
    """Reserve credits for a long job; they count against balances and limits until captured or released."""
    if ttl <= timedelta(0) or ttl > HOLD_TTL_MAX:
        raise InvalidAmount("A hold lasts between 1 second and 24 hours.")
    fingerprint = fingerprint or request_fingerprint(
        op="hold", ws=workspace.pk, user=user and user.pk, amount=amount, ttl=ttl.total_seconds()
    )
    return _spend(
        kind="hold",
        organization=organization,
        workspace=workspace,
        user=user,
        amount=amount,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        memo=memo,
        ttl=ttl,
    )


def _giving_back_to(organization: Organization, account_id: int) -> int:
    """Where credits given back (hold remainder, refund) go: the account that paid, unless the organization has
    since switched to the shared pool or that workspace was deleted — then the pool (Primary Workspace)."""
    account = Account.objects.select_related("workspace").get(pk=account_id)
    assert account.workspace is not None  # noqa: S101 (paying accounts are workspace accounts)
    if account.workspace.is_primary:
        return account_id
    if organization.credit_mode == CreditMode.SHARED or account.workspace.archived_at is not None:
        return primary_account_id(organization)
    return account_id


def _settle(
    *,
    hold: Hold,
    captured: int,
    kind: TransactionKind,
    idempotency_key: str | None,
    fingerprint: str,
) -> SpendResult:
    organization = hold.organization
    existing = _replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return _replayed(existing, hold.workspace, organization)
    try:
        with transaction.atomic():
            locked = Hold.objects.select_for_update().select_related("hold_transaction").get(pk=hold.pk)
            if locked.status != HoldStatus.PENDING:
                raced = _replay(organization.pk, idempotency_key, fingerprint)
                if raced is not None:  # the same request, answered by a concurrent retry
                    return _replayed(raced, hold.workspace, organization)
                raise HoldNotPending(f"This hold was already {locked.get_status_display().lower()}.")
            _share_lock(organization)
            if captured > locked.amount:
                raise InvalidAmount(f"Cannot capture more than the {locked.amount} credits held.")
            system = system_account_ids(organization.pk)
            returned = locked.amount - captured
            back_to = _giving_back_to(organization, locked.account_id)
            holds = system[AccountKind.HOLDS]
            movements = [(holds, system[AccountKind.SINK], captured), (holds, back_to, returned)]
            counted = locked.hold_transaction.counted
            moves = []
            if returned:
                moves = [
                    CounterMove(workspace_id, user_id, locked.period_start, -returned, None)
                    for workspace_id, user_id in counted
                ]
            txn, _ = post_transaction(
                organization_id=organization.pk,
                kind=kind,
                amount=locked.amount,
                movements=movements,
                cached_account_ids={back_to},
                actor=locked.user,
                workspace_id=locked.workspace_id,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                period_start=locked.period_start,
                counters=moves,
                counted=counted if kind == TransactionKind.CAPTURE and captured else [],
            )
            locked.status = HoldStatus.CAPTURED if kind == TransactionKind.CAPTURE else HoldStatus.RELEASED
            locked.captured_amount = captured
            locked.settle_transaction = txn
            locked.settled_at = now()
            locked.save(update_fields=["status", "captured_amount", "settle_transaction", "settled_at"])
    except IntegrityError as error:
        # A concurrent request with the same idempotency key won the race: answer as a replay.
        return _replayed(
            _replay_or_raise(organization.pk, idempotency_key, fingerprint, error), hold.workspace, organization
        )
    available = available_credits(hold.workspace, organization)
    return SpendResult(transaction_id=txn.pk, available=available, hold=locked)


def hold_capture(*, hold: Hold, amount: int, idempotency_key: str | None = None) -> SpendResult:
    """Charge `amount` (≤ held) of a pending hold, exactly once; the rest goes back to the paying balance."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise InvalidAmount("The amount must be a whole number of credits.")
    fingerprint = request_fingerprint(op="capture", hold=hold.pk, amount=amount)
    return _settle(
        hold=hold,
        captured=amount,
        kind=TransactionKind.CAPTURE,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


def hold_release(*, hold: Hold, idempotency_key: str | None = None) -> SpendResult:
    fingerprint = request_fingerprint(op="release", hold=hold.pk)
    return _settle(
        hold=hold, captured=0, kind=TransactionKind.RELEASE, idempotency_key=idempotency_key, fingerprint=fingerprint
    )


def refund(
    *, original: LedgerTransaction, amount: int, actor: User | None, reason: str, idempotency_key: str | None = None
) -> LedgerTransaction:
    """Give back up to what a charge or capture consumed, to the balance that paid for it."""
    _require_positive(amount)
    if original.kind not in (TransactionKind.CHARGE, TransactionKind.CAPTURE):
        raise LedgerError("Only charges and captures can be refunded.")
    fingerprint = request_fingerprint(op="refund", original=original.pk, amount=amount)
    existing = _replay(original.organization_id, idempotency_key, fingerprint)
    if existing is not None:
        return existing
    system = system_account_ids(original.organization_id)
    try:
        with transaction.atomic():
            locked = LedgerTransaction.objects.select_for_update().get(pk=original.pk)
            consumed_line = locked.entries.filter(to_account_id=system[AccountKind.SINK]).first()
            if consumed_line is None:
                raise InvalidAmount("Nothing was consumed by this transaction, so there is nothing to refund.")
            if locked.kind == TransactionKind.CAPTURE:
                paid_by_account = Hold.objects.get(settle_transaction=locked).account_id
            else:
                paid_by_account = consumed_line.from_account_id
            owner_org = Organization.objects.get(pk=locked.organization_id)
            _share_lock(owner_org)
            paid_by_account = _giving_back_to(owner_org, paid_by_account)
            already = locked.reversals.aggregate(total=Sum("amount"))["total"] or 0
            if amount > consumed_line.amount - already:
                raise InvalidAmount(f"At most {consumed_line.amount - already} credits of this charge can be refunded.")
            moves = []
            if locked.period_start is not None:
                moves = [
                    CounterMove(workspace_id, user_id, locked.period_start, -amount, None)
                    for workspace_id, user_id in locked.counted
                ]
            txn, _ = post_transaction(
                organization_id=locked.organization_id,
                kind=TransactionKind.REFUND,
                amount=amount,
                movements=[(system[AccountKind.SINK], paid_by_account, amount)],
                cached_account_ids={paid_by_account},
                actor=actor,
                workspace_id=locked.workspace_id,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                memo=reason,
                reverses=locked,
                counters=moves,
            )
    except IntegrityError as error:
        return _replay_or_raise(original.organization_id, idempotency_key, fingerprint, error)
    return txn


# --- funding and moving ----------------------------------------------------------------------------------------


def primary_account_id(organization: Organization) -> int:
    return Account.objects.values_list("pk", flat=True).get(
        organization=organization, kind=AccountKind.WORKSPACE, workspace__is_primary=True
    )


def credits_grant(
    *,
    organization: Organization,
    amount: int,
    actor: User | None,
    kind: TransactionKind = TransactionKind.GRANT,
    memo: str = "",
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Credits enter the organization: purchases, plan renewals and grants all land in the Primary Workspace."""
    _require_positive(amount)
    fingerprint = request_fingerprint(op=str(kind), org=organization.pk, amount=amount)
    existing = _replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return existing
    system = system_account_ids(organization.pk)
    primary = primary_account_id(organization)
    try:
        with transaction.atomic():
            txn, _ = post_transaction(
                organization_id=organization.pk,
                kind=kind,
                amount=amount,
                movements=[(system[AccountKind.SOURCE], primary, amount)],
                cached_account_ids={primary},
                actor=actor,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                memo=memo,
            )
    except IntegrityError as error:
        return _replay_or_raise(organization.pk, idempotency_key, fingerprint, error)
    return txn


def credits_transfer(
    *,
    organization: Organization,
    source: Workspace,
    target: Workspace,
    amount: int,
    actor: User | None,
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Move credits between two workspaces' balances (workspace budget mode); never more than the source has."""
    _require_positive(amount)
    fingerprint = request_fingerprint(op="transfer", source=source.pk, target=target.pk, amount=amount)
    existing = _replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return existing
    accounts = dict(Account.objects.filter(workspace__in=[source, target]).values_list("workspace_id", "pk"))
    try:
        with transaction.atomic():
            _share_lock(organization)
            if organization.credit_mode != CreditMode.BUDGET:
                raise ModeMismatch("Credits are moved between workspaces in workspace budget mode only.")
            if source.pk == target.pk:
                raise LedgerError("Pick two different workspaces.")
            if source.organization_id != organization.pk or target.organization_id != organization.pk:
                raise LedgerError("Both workspaces must belong to the organization.")
            _share_lock(organization, [source, target])  # re-reads the mode too: unchanged under the lock
            txn, _ = post_transaction(
                organization_id=organization.pk,
                kind=TransactionKind.TRANSFER,
                amount=amount,
                movements=[(accounts[source.pk], accounts[target.pk], amount)],
                cached_account_ids=set(accounts.values()),
                actor=actor,
                workspace_id=target.pk,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                memo=f"{source.name} → {target.name}",
            )
    except _Insufficient:
        available = account_balance(accounts[source.pk])
        raise CreditLimitReached(limit="workspace_balance", available=available, resets_at=None) from None
    except IntegrityError as error:
        return _replay_or_raise(organization.pk, idempotency_key, fingerprint, error)
    return txn


def sweep_to_primary(
    *,
    organization: Organization,
    actor: User | None,
    workspaces: Iterable[Workspace] | None = None,
    kind: TransactionKind = TransactionKind.SWEEP,
) -> LedgerTransaction | None:
    """Move whole balances of (some or all) non-primary workspaces back to the Primary Workspace.

    Runs inside the caller's transaction."""
    accounts = Account.objects.filter(
        organization=organization, kind=AccountKind.WORKSPACE, workspace__is_primary=False
    )
    if workspaces is not None:
        accounts = accounts.filter(workspace__in=list(workspaces))
    primary = primary_account_id(organization)
    involved = [*accounts.values_list("pk", flat=True), primary]
    lock_for_debit(involved)
    # Lock every stripe involved in (account id, stripe) order — the ledger's lock order — before reading them.
    stripes = list(
        AccountStripe.objects.select_for_update()
        .filter(account_id__in=involved)
        .order_by("account_id", "stripe")
        .values_list("account_id", "balance")
    )
    totals: dict[int, int] = defaultdict(int)
    for account_id, balance in stripes:
        totals[account_id] += balance
    locked = sorted(totals.items())
    moving = [(pk, balance) for pk, balance in locked if pk != primary and balance > 0]
    total = sum(balance for _, balance in moving)
    if total == 0:
        return None
    txn, _ = post_transaction(
        organization_id=organization.pk,
        kind=kind,
        amount=total,
        movements=[(pk, primary, balance) for pk, balance in moving],
        cached_account_ids={pk for pk, _ in locked},
        actor=actor,
    )
    return txn
