"""Ledger invariants, checked in bulk SQL (reconcile_ledger command, nightly task, tests, benchmarks)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from billing.ledger import counters_mismatched
from billing.models import (
    CACHED_KINDS,
    Account,
    AccountKind,
    AccountStripe,
    Hold,
    HoldStatus,
    LedgerEntry,
    LedgerTransaction,
    balance_of,
)
from orgs.models import CreditMode, Organization


def reconcile(*, organization: Organization | None = None, at: datetime | None = None) -> list[str]:
    """Every broken invariant, as a readable line; an empty list means the ledger is sound."""
    problems: list[str] = []
    scope = Q() if organization is None else Q(organization=organization)

    mismatched = (
        LedgerTransaction.objects.filter(scope)
        .annotate(moved=Coalesce(Sum("entries__amount"), Value(0)), lines=Count("entries"))
        .filter(~Q(moved=F("amount")) | Q(lines=0))
        .values_list("pk", "amount", "moved")
    )
    problems += [f"transaction {pk}: amount {amount} but its entries move {moved}" for pk, amount, moved in mismatched]

    # The ledger tables carry no database foreign keys (see billing.models): check every reference here.
    accounts_ids = Account.objects.values("pk")
    orphans = LedgerEntry.objects.filter(
        ~Q(transaction__in=LedgerTransaction.objects.values("pk"))
        | ~Q(from_account__in=accounts_ids)
        | ~Q(to_account__in=accounts_ids)
    )
    problems += [
        f"transaction {pk}: belongs to a missing organization"
        for pk in LedgerTransaction.objects.filter(scope)
        .exclude(organization__in=Organization.objects.values("pk"))
        .values_list("pk", flat=True)
    ]
    if organization is None:
        problems += [
            f"entry {pk}: refers to a missing transaction or account" for pk in orphans.values_list("pk", flat=True)
        ]

    # Net of every account in one pass over the entries (two grouped scans), not one scan per account.
    entries = LedgerEntry.objects.all()
    if organization is not None:
        entries = entries.filter(transaction__organization=organization)
    net: dict[int, int] = defaultdict(int)
    for account_id, total in entries.values_list("to_account").annotate(s=Sum("amount")).values_list("to_account", "s"):
        net[account_id] += total
    for account_id, total in (
        entries.values_list("from_account").annotate(s=Sum("amount")).values_list("from_account", "s")
    ):
        net[account_id] -= total
    accounts = list(
        Account.objects.filter(scope)
        .annotate(live=balance_of("pk"))
        .values_list("pk", "kind", "live", "organization_id")
    )
    problems += [
        f"account {pk} ({kind}): cached balance {live} != sum of entries {net.get(pk, 0)}"
        for pk, kind, live, _ in accounts
        if kind in CACHED_KINDS and live != net.get(pk, 0)
    ]
    problems += [
        f"account {pk}, stripe {stripe}: negative balance {balance}"
        for pk, stripe, balance in AccountStripe.objects.filter(balance__lt=0).values_list(
            "account_id", "stripe", "balance"
        )
    ]
    missing_stripes = (
        Account.objects.filter(scope, kind__in=CACHED_KINDS)
        .annotate(rows=Count("balance_stripes"))
        .exclude(rows=F("stripes"))
    )
    problems += [
        f"account {pk}: {rows} balance stripes, expected {stripes}"
        for pk, rows, stripes in missing_stripes.values_list("pk", "rows", "stripes")
    ]

    pending = dict(
        Hold.objects.filter(scope, status=HoldStatus.PENDING)
        .values_list("organization")
        .annotate(s=Sum("amount"))
        .values_list("organization", "s")
    )
    problems += [
        f"organization {org_id}: holds account holds {net.get(pk, 0)}, pending holds add up to {pending.get(org_id, 0)}"
        for pk, kind, _, org_id in accounts
        if kind == AccountKind.HOLDS and net.get(pk, 0) != pending.get(org_id, 0)
    ]

    expired = Hold.objects.filter(scope, status=HoldStatus.PENDING, expires_at__lt=at or now())
    problems += [
        f"hold {pk}: expired at {expires:%Y-%m-%d %H:%M:%S} but still pending"
        for pk, expires in expired.values_list("pk", "expires_at")
    ]

    shared_leftovers = (
        Account.objects.filter(
            scope,
            kind=AccountKind.WORKSPACE,
            workspace__is_primary=False,
            organization__credit_mode=CreditMode.SHARED,
        )
        .annotate(live=balance_of("pk"))
        .filter(live__gt=0)
    )
    problems += [
        f"account {pk}: {balance} credits outside the pool while the organization is in shared mode"
        for pk, balance in shared_leftovers.values_list("pk", "live")
    ]

    # Every monthly limit's counter of the current period is what the ledger says was spent in it.
    limited = Organization.objects.filter(workspaces__limits__isnull=False).distinct()
    if organization is not None:
        limited = limited.filter(pk=organization.pk)
    problems += counters_mismatched(organizations=list(limited))
    return problems


def reconcile_organization(organization: Organization) -> list[str]:
    return reconcile(organization=organization)
