"""Ledger invariants, checked in bulk SQL (reconcile_ledger command, nightly task, tests, benchmarks)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

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

    def summed(field: str) -> Coalesce:
        rows = LedgerEntry.objects.filter(**{field: OuterRef("pk")}).values(field).annotate(s=Sum("amount"))
        return Coalesce(Subquery(rows.values("s")), Value(0))

    accounts = Account.objects.filter(scope).annotate(
        entries_total=summed("to_account") - summed("from_account"), live=balance_of("pk")
    )
    drifted = accounts.filter(kind__in=CACHED_KINDS).exclude(live=F("entries_total"))
    problems += [
        f"account {pk} ({kind}): cached balance {balance} != sum of entries {total}"
        for pk, kind, balance, total in drifted.values_list("pk", "kind", "live", "entries_total")
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

    pending = (
        Hold.objects.filter(organization=OuterRef("organization"), status=HoldStatus.PENDING)
        .values("organization")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    escrow = accounts.filter(kind=AccountKind.HOLDS).annotate(pending=Coalesce(Subquery(pending), Value(0)))
    problems += [
        f"organization {org_id}: holds account holds {total}, pending holds add up to {held}"
        for org_id, total, held in escrow.exclude(entries_total=F("pending")).values_list(
            "organization_id", "entries_total", "pending"
        )
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
    return problems


def reconcile_organization(organization: Organization) -> list[str]:
    return reconcile(organization=organization)
