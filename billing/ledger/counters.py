"""Monthly spend counters: what a workspace, or one member in it, spent in a budget period.

What was spent in a period is read from the ledger (`period_spending`): the charges of the period, plus its holds
(what a pending hold reserves, what a settled one captured: nothing once released), less the refunds of those.
It is the same figure as the usage of the month (usage events count a charge, a held or captured hold, and a
released hold as nothing, at the time it was made) as long as nothing was refunded (usage keeps a refunded
generation); tests/billing/test_counters.py compares the two.

A counter (`SpendCounter`) is only kept while a monthly limit exists. Setting a limit (`limit_counter_start`)
starts its counter of the current period at what was already spent, race-free against concurrent spending:

- the organization row is locked FOR NO KEY UPDATE, which waits for every movement on the general path in flight
  (they hold it FOR SHARE, `posting.share_lock`) and makes new ones wait until the limit is committed — they then
  see the limit and move the counter themselves;
- the one-statement charges (`spend._CHARGE_STATEMENT`, `usage.fastpath`) take no such lock: they read in their
  snapshot that no limit applies and debit a stripe. So the limit raises the `fence` of every stripe of the accounts
  that pay for the workspace (an UPDATE: it waits for the one-statement charges that already debited a stripe, so
  the count below sees them), and those statements debit only a stripe whose fence is the one they read: one that
  read 'no limit' before the change finds the fence raised, debits nothing and falls back to the general path;
- then the spending is read (a new statement: it sees every charge committed so far) and written to the counter.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import BigIntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.ledger.accounts import primary_account_id
from billing.ledger.periods import period_bounds
from billing.ledger.posting import lock_for_debit
from billing.models import (
    Account,
    AccountStripe,
    Hold,
    LedgerTransaction,
    SpendCounter,
    TransactionKind,
    WorkspaceLimit,
)
from orgs.models import Organization
from workspaces.models import Workspace


def period_starts_at(organization: Organization, period_start: date) -> datetime:
    """The instant a budget period starts (midnight of its first day in the organization's time zone)."""
    return datetime(period_start.year, period_start.month, period_start.day, tzinfo=ZoneInfo(organization.timezone))


def period_spending(
    *, organization: Organization, workspace_ids: list[int], period_start: date | None = None
) -> dict[tuple[int, int | None], int]:
    """What was spent in the period (the current one by default), from the ledger (three grouped queries):
    {(workspace id, member id): credits} and {(workspace id, None): the workspace's total}."""
    period = period_start or period_bounds(organization)[0]
    # Transactions of a period are made from its first instant on (a day of slack for a spend made a moment
    # before midnight that took the old period): the organization's time index serves.
    since = period_starts_at(organization, period) - timedelta(days=1)
    spent: dict[tuple[int, int | None], int] = defaultdict(int)
    if not workspace_ids:
        return spent

    def add(rows: list[tuple[int, int | None, int | None]], sign: int) -> None:
        for workspace_id, user_id, total in rows:
            spent[(workspace_id, user_id)] += sign * (total or 0)
            spent[(workspace_id, None)] += sign * (total or 0)

    charges = LedgerTransaction.objects.filter(
        organization=organization,
        created_at__gte=since,
        kind=TransactionKind.CHARGE,
        workspace_id__in=workspace_ids,
        period_start=period,
    )
    add(list(charges.values_list("workspace_id", "actor_id").annotate(s=Sum("amount")).order_by()), 1)
    holds = Hold.objects.filter(organization=organization, workspace_id__in=workspace_ids, period_start=period)
    kept = Sum(Coalesce("captured_amount", "amount"))  # pending: all it holds; settled: what it captured
    add(list(holds.values_list("workspace_id", "user_id").annotate(s=kept).order_by()), 1)
    refunds = LedgerTransaction.objects.filter(
        organization=organization,
        created_at__gte=since,
        kind=TransactionKind.REFUND,
        reverses__workspace_id__in=workspace_ids,
        reverses__period_start=period,
    )
    add(
        list(refunds.values_list("reverses__workspace_id", "reverses__actor_id").annotate(s=Sum("amount")).order_by()),
        -1,
    )
    return spent


def spent_in_period(*, organization: Organization, workspace: Workspace, user_id: int | None = None) -> int:
    """What the workspace (user_id None) or one member in it spent in the current period: `period_spending`'s
    figure, in one query (three sums as subqueries)."""
    period, _ = period_bounds(organization)
    since = period_starts_at(organization, period) - timedelta(days=1)
    actor = {} if user_id is None else {"actor_id": user_id}
    spends = LedgerTransaction.objects.filter(organization=organization, created_at__gte=since)
    charges = spends.filter(kind=TransactionKind.CHARGE, workspace_id=OuterRef("pk"), period_start=period, **actor)
    holds = Hold.objects.filter(
        organization=organization,
        workspace_id=OuterRef("pk"),
        period_start=period,
        **({} if user_id is None else {"user_id": user_id}),
    )
    refunds = spends.filter(
        kind=TransactionKind.REFUND,
        reverses__workspace_id=OuterRef("pk"),
        reverses__period_start=period,
        **({} if user_id is None else {"reverses__actor_id": user_id}),
    )

    def total(rows: QuerySet[Any], credits: Any) -> Coalesce:
        summed = rows.order_by().values("organization").annotate(s=Sum(credits)).values("s")
        return Coalesce(Subquery(summed), Value(0), output_field=BigIntegerField())

    row = (
        Workspace.objects.filter(pk=workspace.pk)
        .annotate(
            charged=total(charges, "amount"),
            held=total(holds, Coalesce("captured_amount", "amount")),
            refunded=total(refunds, "amount"),
        )
        .values_list("charged", "held", "refunded")
        .first()
    )
    return 0 if row is None else int(row[0] + row[1] - row[2])


def limits_lock(organization: Organization) -> None:
    """Inside a transaction, before a monthly limit changes: wait for the movements in flight and hold new ones."""
    Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).values_list("pk").first()


def _fence(organization: Organization, workspace: Workspace) -> None:
    """Raise the fence of every stripe that pays for the workspace's charges (its own account and the pool)."""
    accounts = sorted(
        {primary_account_id(organization), *Account.objects.filter(workspace=workspace).values_list("pk", flat=True)}
    )
    lock_for_debit(accounts)
    table = AccountStripe._meta.db_table
    placeholders = ", ".join(["%s"] * len(accounts))
    with connection.cursor() as cursor:
        # Stripe rows locked in (account, stripe) order, the ledger's lock order.
        lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
        cursor.execute(
            f"SELECT id FROM {table} WHERE account_id IN ({placeholders}) ORDER BY account_id, stripe{lock}",  # noqa: S608
            accounts,
        )
        cursor.execute(f"UPDATE {table} SET fence = fence + 1 WHERE account_id IN ({placeholders})", accounts)  # noqa: S608


def limit_counter_start(*, organization: Organization, workspace: Workspace, user_id: int | None) -> int:
    """After a monthly limit was set (inside the transaction that set it, after `limits_lock`): start its counter
    of the current period at what the ledger says was already spent. Returns that figure."""
    _fence(organization, workspace)
    period, _ = period_bounds(organization)
    spent = period_spending(organization=organization, workspace_ids=[workspace.pk], period_start=period).get(
        (workspace.pk, user_id), 0
    )
    who = Q(user__isnull=True) if user_id is None else Q(user_id=user_id)
    updated = SpendCounter.objects.filter(who, workspace=workspace, period_start=period).update(spent=spent)
    if not updated and spent:  # nothing spent yet: the first spend creates the row (no row reads as 0)
        SpendCounter.objects.create(workspace=workspace, user_id=user_id, period_start=period, spent=spent)
    return spent


def limit_counter_stop(*, organization: Organization, workspace: Workspace, user_id: int | None) -> None:
    """After a monthly limit was removed: its counter of the current period goes (counters exist with limits)."""
    period, _ = period_bounds(organization)
    who = Q(user__isnull=True) if user_id is None else Q(user_id=user_id)
    SpendCounter.objects.filter(who, workspace=workspace, period_start=period).delete()


def counters_mismatched(*, organizations: list[Organization]) -> list[str]:
    """Every monthly limit whose counter of the current period differs from what the ledger says was spent."""
    problems = []
    limits = WorkspaceLimit.objects.filter(workspace__organization__in=organizations).values_list(
        "workspace_id", "workspace__organization_id", "user_id"
    )
    by_org: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    for workspace_id, organization_id, user_id in limits:
        by_org[organization_id].append((workspace_id, user_id))
    for organization in organizations:
        keys = by_org.get(organization.pk)
        if not keys:
            continue
        period, _ = period_bounds(organization)
        workspace_ids = sorted({workspace_id for workspace_id, _ in keys})
        spent = period_spending(organization=organization, workspace_ids=workspace_ids, period_start=period)
        counters: dict[tuple[int, int | None], int] = {
            (workspace_id, user_id): value
            for workspace_id, user_id, value in SpendCounter.objects.filter(
                workspace_id__in=workspace_ids, period_start=period
            ).values_list("workspace_id", "user_id", "spent")
        }
        problems += [
            f"workspace {workspace_id}{f', member {user_id}' if user_id else ''}: spend counter "
            f"{counters.get((workspace_id, user_id), 0)} != {spent.get((workspace_id, user_id), 0)} spent this period"
            for workspace_id, user_id in keys
            if counters.get((workspace_id, user_id), 0) != spent.get((workspace_id, user_id), 0)
        ]
    return problems
