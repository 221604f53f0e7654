"""The ledger's write primitive, and what every movement service does around it.

Every movement goes through `post_transaction`, inside the caller's transaction:

1. insert the LedgerTransaction and its entries (no lock on any balance row yet);
2. move the monthly spend counters, each with a conditional upsert (limits can never be exceeded);
3. apply the cached balances, in ascending account id. A balance is striped over several rows (AccountStripe):
   a debit is a conditional `UPDATE … SET balance = balance - x WHERE … AND balance >= x` on the stripe of this
   database connection; when that stripe is short, every stripe of the account is locked in stripe order, the
   total checked (a refusal happens only when the whole balance is short) and what is left spread evenly again.

Locks are therefore always taken in one order — counters, then (account id, stripe) — so concurrent charges,
transfers and sweeps never deadlock; concurrent spenders of one pool mostly update different rows.

Around it, the movement services share: the amount check, idempotency (a request's fingerprint, the replay of a
key already used) and the share lock that holds the organization's credit mode and its workspaces steady.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.timezone import now

from billing.ledger.errors import IdempotencyConflict, InvalidAmount, LedgerError
from billing.models import Account, AccountStripe, LedgerEntry, LedgerTransaction, SpendCounter, TransactionKind
from orgs.models import Organization, User
from workspaces.models import Workspace


class Insufficient(Exception):
    """An account's whole balance is short: the movement services answer it with a refusal."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id


class CounterFull(Exception):
    """A monthly limit would be passed: the spend services answer it with a refusal."""

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
                raise CounterFull(move.user_id)
            guard = "" if move.limit is None else f"WHERE {table}.spent + excluded.spent <= %s"
            cursor.execute(
                f"INSERT INTO {table} (workspace_id, user_id, period_start, spent) VALUES (%s, %s, %s, %s) "  # noqa: S608
                f"ON CONFLICT {target} DO UPDATE SET spent = {table}.spent + excluded.spent {guard} RETURNING spent",
                [move.workspace_id, move.user_id, move.period_start, move.amount]
                + ([] if move.limit is None else [move.limit]),
            )
            if cursor.fetchone() is None:
                raise CounterFull(move.user_id)
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
        raise Insufficient(account_id)
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


def replay(organization_id: int, key: str | None, fingerprint: str) -> LedgerTransaction | None:
    if not key:
        return None
    existing = LedgerTransaction.objects.filter(organization_id=organization_id, idempotency_key=key).first()
    if existing is not None and existing.request_hash != fingerprint:
        raise IdempotencyConflict("This idempotency key was already used for a different request.")
    return existing


def replay_or_raise(organization_id: int, key: str | None, fingerprint: str, error: Exception) -> LedgerTransaction:
    """After a unique violation: a concurrent request with the same key won the race — answer with its result."""
    raced = replay(organization_id, key, fingerprint)
    if raced is None:
        raise error
    return raced


MAX_AMOUNT = 10**15  # far above any real movement, far below BIGINT


def require_positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount("The amount must be a whole number of credits greater than zero.")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"The amount can be at most {MAX_AMOUNT:,} credits.")


def share_lock(organization: Organization, workspaces: Iterable[Workspace] = ()) -> None:
    """Inside a transaction: hold the organization (and workspaces) steady for this movement.

    A share lock makes a credit-mode switch (which updates the organization row) or a workspace archive (which
    updates the workspace row) wait for the movement, or the movement for them; the mode and `archived_at` are
    then read as they are in force. Lock order: organization, workspaces by id, counters, accounts by id."""
    ids = sorted({ws.pk for ws in workspaces})
    share = " FOR SHARE" if connection.vendor == "postgresql" else ""
    organizations, workspace_table = Organization._meta.db_table, Workspace._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT credit_mode FROM {organizations} WHERE id = %s{share}", [organization.pk])  # noqa: S608
        organization.credit_mode = cursor.fetchone()[0]
        if ids:
            placeholders = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"SELECT id, archived_at FROM {workspace_table} WHERE id IN ({placeholders}) ORDER BY id{share}",  # noqa: S608
                ids,
            )
            archived = {pk for pk, archived_at in cursor.fetchall() if archived_at is not None}
            for workspace in workspaces:
                if workspace.pk in archived:
                    workspace.archived_at = workspace.archived_at or now()
                    raise LedgerError("Deleted workspaces cannot send, receive or spend credits.")
