"""Spending credits: one-shot charges, holds (captured or released exactly once) and refunds.

On PostgreSQL a charge first tries one statement (`_CHARGE_STATEMENT`); monthly limits, a short stripe and every
refusal take the general path (`_spend`), which writes through `post_transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils.timezone import now

from billing.ledger.accounts import (
    PayingAccount,
    available_credits,
    paying_account,
    primary_account_id,
    system_account_ids,
)
from billing.ledger.errors import CreditLimitReached, HoldNotPending, InvalidAmount, LedgerError, LimitName
from billing.ledger.periods import period_bounds
from billing.ledger.posting import (
    CounterFull,
    CounterMove,
    Insufficient,
    post_transaction,
    replay,
    replay_or_raise,
    request_fingerprint,
    require_positive,
    share_lock,
)
from billing.models import (
    Account,
    AccountKind,
    Hold,
    HoldStatus,
    LedgerTransaction,
    SpendCounter,
    TransactionKind,
    WorkspaceLimit,
    account_balance,
)
from orgs.models import CreditMode, Organization, User
from qolaba.db import Statement, execute_prepared_once
from workspaces.models import Workspace

HOLD_TTL_DEFAULT = timedelta(seconds=900)
HOLD_TTL_MAX = timedelta(seconds=86400)


@dataclass(frozen=True)
class SpendResult:
    transaction_id: int
    available: int
    replayed: bool = False
    hold: Hold | None = None


def _limit_moves(
    *, organization: Organization, workspace: Workspace, user: User | None, amount: int, period_start: date
) -> list[CounterMove]:
    """Counter moves for the monthly limits that exist: every one counts, the workspace's own limit only binds in
    shared mode (so its counter is right when the organization switches to it)."""
    filters = Q(user__isnull=True) if user is None else Q(user__isnull=True) | Q(user=user)
    moves = []
    for limit_user_id, monthly_limit in WorkspaceLimit.objects.filter(filters, workspace=workspace).values_list(
        "user_id", "monthly_limit"
    ):
        binds = limit_user_id is not None or organization.credit_mode == CreditMode.SHARED
        moves.append(CounterMove(workspace.pk, limit_user_id, period_start, amount, monthly_limit if binds else None))
    # Workspace counter first, then the member's: one fixed lock order.
    return sorted(moves, key=lambda move: (move.user_id is not None, move.user_id or 0))


def _give_back_moves(*, workspace_id: int, user_id: int | None, period_start: date, amount: int) -> list[CounterMove]:
    """Credits given back (a hold's remainder, a refund) leave the counters of the limits in force, in the spend's
    own period: each of those counters counted the spend, whether it moved them or was started after it
    (`counters.limit_counter_start`). A counter of another period is not touched, and the usage of the spend's
    period goes down by the same amount."""
    who = Q(user__isnull=True) if user_id is None else Q(user__isnull=True) | Q(user_id=user_id)
    limit_users = WorkspaceLimit.objects.filter(who, workspace_id=workspace_id).values_list("user_id", flat=True)
    return [
        CounterMove(workspace_id, limit_user_id, period_start, -amount, None)
        for limit_user_id in sorted(limit_users, key=lambda uid: (uid is not None, uid or 0))
    ]


def _refusal(
    error: Insufficient | CounterFull, *, paying: PayingAccount, organization: Organization, workspace: Workspace
) -> CreditLimitReached:
    period_start, resets_at = period_bounds(organization)
    if isinstance(error, Insufficient):
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
    return CreditLimitReached(limit=name, available=max(0, limit - spent), resets_at=resets_at)


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
    require_positive(amount)
    existing = replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return _replayed(existing, workspace, organization)
    system = system_account_ids(organization.pk)
    period_start, _ = period_bounds(organization)
    target = system[AccountKind.SINK] if kind == "charge" else system[AccountKind.HOLDS]
    paying: PayingAccount | None = None
    try:
        with transaction.atomic():
            share_lock(organization, [workspace])
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
    except (Insufficient, CounterFull) as error:
        assert paying is not None  # noqa: S101 (refusals come after the paying account is known)
        raise _refusal(error, paying=paying, organization=organization, workspace=workspace) from None
    except IntegrityError as error:
        # A concurrent request with the same idempotency key won the race: answer as a replay.
        return _replayed(replay_or_raise(organization.pk, idempotency_key, fingerprint, error), workspace, organization)
    return SpendResult(transaction_id=txn.pk, available=balances[paying.account_id], hold=hold)


def _replayed(existing: LedgerTransaction, workspace: Workspace, organization: Organization) -> SpendResult:
    hold = Hold.objects.filter(hold_transaction=existing).first()
    return SpendResult(
        transaction_id=existing.pk, available=available_credits(workspace, organization), replayed=True, hold=hold
    )


# The one-shot charge on PostgreSQL, as a single statement: resolve the paying account from the credit mode, debit
# it conditionally, record the balanced transaction. In autocommit the contended row is locked from its UPDATE to
# the COMMIT of this one statement; inside a caller's transaction it runs under a savepoint that is rolled back when
# it does not charge (`execute_prepared_once`). Workspaces with monthly limits take the general path (no row).
# Its enum values come from the models; tests/billing/test_ledger_sql.py checks its tables and INSERT columns.
# It is worth its SQL even behind the metering API's own one-statement charge (usage.fastpath): the general path
# queues every debit of a striped account on one lock (lock_for_debit), and on bench/charges.py (8 to 64 clients
# charging one pool) it managed 2.5 to 40 times fewer charges a second.
_CHARGE_STATEMENT = Statement(f"""
WITH ctx AS (
    SELECT
        CASE WHEN o.credit_mode = '{CreditMode.SHARED.value}'
            THEN (SELECT a.id FROM billing_account a JOIN workspaces_workspace w ON w.id = a.workspace_id
                  WHERE w.organization_id = o.id AND w.is_primary)
            ELSE (SELECT a.id FROM billing_account a WHERE a.workspace_id = %(workspace)s)
        END AS paying,
        o.credit_mode AS mode,
        (SELECT a.id FROM billing_account a
         WHERE a.organization_id = o.id AND a.kind = '{AccountKind.SINK.value}') AS sink,
        EXISTS (SELECT 1 FROM billing_workspacelimit l WHERE l.workspace_id = %(workspace)s
                AND (l.user_id IS NULL OR l.user_id = %(user)s))
        OR EXISTS (SELECT 1 FROM workspaces_workspace w WHERE w.id = %(workspace)s AND w.archived_at IS NOT NULL)
        AS limited
    FROM orgs_organization o WHERE o.id = %(organization)s
), pay AS (
    SELECT ctx.paying, ctx.mode, ctx.sink, ctx.limited, a.stripes, f.fence
    FROM ctx JOIN billing_account a ON a.id = ctx.paying
    JOIN billing_accountstripe f ON f.account_id = a.id AND f.stripe = pg_backend_pid() %% a.stripes
), debit AS (
    -- The fence is rechecked on the row as it is when locked: a monthly limit set since this statement's snapshot
    -- raised it, and the general path (which sees the limit) decides (billing.ledger.counters).
    UPDATE billing_accountstripe s SET balance = s.balance - %(amount)s
    FROM pay
    WHERE s.account_id = pay.paying AND s.stripe = pg_backend_pid() %% pay.stripes
      AND s.balance >= %(amount)s AND NOT pay.limited AND s.fence = pay.fence
    RETURNING s.account_id
), txn AS (
    INSERT INTO billing_ledgertransaction
        (organization_id, kind, amount, actor_id, workspace_id, idempotency_key, request_hash, memo,
         created_at, period_start, reverses_id, counted)
    SELECT %(organization)s, '{TransactionKind.CHARGE.value}', %(amount)s, %(user)s, %(workspace)s, %(key)s,
           %(fingerprint)s, %(memo)s, %(created)s, %(period)s, NULL, '[]'::jsonb
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
""")  # noqa: S608 (the f-string only puts the models' enum values in; every input is a parameter)


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
        return _replayed(replay_or_raise(organization.pk, idempotency_key, fingerprint, error), workspace, organization)
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
    require_positive(amount)
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
    existing = replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return _replayed(existing, hold.workspace, organization)
    try:
        with transaction.atomic():
            locked = Hold.objects.select_for_update().select_related("hold_transaction").get(pk=hold.pk)
            if locked.status != HoldStatus.PENDING:
                raced = replay(organization.pk, idempotency_key, fingerprint)
                if raced is not None:  # the same request, answered by a concurrent retry
                    return _replayed(raced, hold.workspace, organization)
                raise HoldNotPending(f"This hold was already {locked.get_status_display().lower()}.")
            share_lock(organization)
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
                moves = _give_back_moves(
                    workspace_id=locked.workspace_id,
                    user_id=locked.user_id,
                    period_start=locked.period_start,
                    amount=returned,
                )
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
            replay_or_raise(organization.pk, idempotency_key, fingerprint, error), hold.workspace, organization
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
    require_positive(amount)
    if original.kind not in (TransactionKind.CHARGE, TransactionKind.CAPTURE):
        raise LedgerError("Only charges and captures can be refunded.")
    fingerprint = request_fingerprint(op="refund", original=original.pk, amount=amount)
    existing = replay(original.organization_id, idempotency_key, fingerprint)
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
            share_lock(owner_org)
            paid_by_account = _giving_back_to(owner_org, paid_by_account)
            already = locked.reversals.aggregate(total=Sum("amount"))["total"] or 0
            if amount > consumed_line.amount - already:
                raise InvalidAmount(f"At most {consumed_line.amount - already} credits of this charge can be refunded.")
            moves = []
            if locked.period_start is not None and locked.workspace_id is not None:
                moves = _give_back_moves(
                    workspace_id=locked.workspace_id,
                    user_id=locked.actor_id,
                    period_start=locked.period_start,
                    amount=amount,
                )
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
        return replay_or_raise(original.organization_id, idempotency_key, fingerprint, error)
    return txn
