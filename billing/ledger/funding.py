"""Credits entering the organization and moving within it: grants (purchases, renewals, staff grants) into the
Primary Workspace, transfers between workspace budgets, and sweeps of workspace balances back to the Primary
Workspace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, transaction

from billing.ledger.accounts import primary_account_id, system_account_ids
from billing.ledger.errors import CreditLimitReached, LedgerError, ModeMismatch
from billing.ledger.posting import (
    Insufficient,
    lock_for_debit,
    post_transaction,
    replay,
    replay_or_raise,
    request_fingerprint,
    require_positive,
    share_lock,
)
from billing.models import Account, AccountKind, AccountStripe, LedgerTransaction, TransactionKind, account_balance
from orgs.models import CreditMode, Organization, User
from workspaces.models import Workspace


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
    require_positive(amount)
    fingerprint = request_fingerprint(op=str(kind), org=organization.pk, amount=amount)
    existing = replay(organization.pk, idempotency_key, fingerprint)
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
        return replay_or_raise(organization.pk, idempotency_key, fingerprint, error)
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
    require_positive(amount)
    fingerprint = request_fingerprint(op="transfer", source=source.pk, target=target.pk, amount=amount)
    existing = replay(organization.pk, idempotency_key, fingerprint)
    if existing is not None:
        return existing
    accounts = dict(Account.objects.filter(workspace__in=[source, target]).values_list("workspace_id", "pk"))
    try:
        with transaction.atomic():
            share_lock(organization)
            if organization.credit_mode != CreditMode.BUDGET:
                raise ModeMismatch("Credits are moved between workspaces in workspace budget mode only.")
            if source.pk == target.pk:
                raise LedgerError("Pick two different workspaces.")
            if source.organization_id != organization.pk or target.organization_id != organization.pk:
                raise LedgerError("Both workspaces must belong to the organization.")
            share_lock(organization, [source, target])  # re-reads the mode too: unchanged under the lock
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
    except Insufficient:
        available = account_balance(accounts[source.pk])
        raise CreditLimitReached(limit="workspace_balance", available=available, resets_at=None) from None
    except IntegrityError as error:
        return replay_or_raise(organization.pk, idempotency_key, fingerprint, error)
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
