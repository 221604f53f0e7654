"""Billing reads (they write nothing): credits overviews, balances, the billing page, limits and spend counters,
and what moved through the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet, Sum, Value

from billing.ledger import PayingAccount, paying_account, period_bounds, period_spending
from billing.models import (
    AccountKind,
    AccountStripe,
    Invoice,
    LedgerEntry,
    Plan,
    PlanKind,
    Subscription,
    WorkspaceLimit,
    balance_of,
)
from orgs.models import Membership, MembershipStatus, Organization, OrganizationRole, User
from workspaces.models import Workspace


@dataclass(frozen=True)
class CreditsOverview:
    available: int
    paying: PayingAccount
    period_start: datetime
    resets_at: datetime
    my_limit: int | None
    workspace_limit: int | None


def credits_moved(
    *, from_account: int | None = None, to_account: int | None = None, until: datetime | None = None
) -> int:
    """Credits moved out of `from_account` and/or into `to_account` (up to `until`), over the whole ledger."""
    entries = LedgerEntry.objects.all()
    if from_account is not None:
        entries = entries.filter(from_account_id=from_account)
    if to_account is not None:
        entries = entries.filter(to_account_id=to_account)
    if until is not None:
        entries = entries.filter(transaction__created_at__lte=until)
    return entries.aggregate(total=Sum("amount"))["total"] or 0


def credits_overview(*, workspace: Workspace, organization: Organization, user: User) -> CreditsOverview:
    paying = paying_account(workspace, organization)
    period_start, resets_at = period_bounds(organization)
    starts_at = resets_at.replace(year=period_start.year, month=period_start.month, day=1)
    limits: dict[int | None, int] = dict(
        WorkspaceLimit.objects.filter(Q(user__isnull=True) | Q(user=user), workspace=workspace).values_list(
            "user_id", "monthly_limit"
        )
    )
    return CreditsOverview(
        available=paying.balance,
        paying=paying,
        period_start=starts_at,
        resets_at=resets_at,
        my_limit=limits.get(user.pk),
        workspace_limit=limits.get(None),
    )


def workspace_balances(*, organization: Organization) -> dict[int, int]:
    """Live balance of every workspace account of the organization, by workspace id."""
    stripes = AccountStripe.objects.filter(account__organization=organization, account__kind=AccountKind.WORKSPACE)
    totals = stripes.values_list("account__workspace_id").annotate(total=Sum("balance"))
    return dict(totals.values_list("account__workspace_id", "total"))


@dataclass(frozen=True)
class BillingSummary:
    subscription: Subscription | None
    monthly_plans: list[Plan]
    packs: list[Plan]
    invoices: list[Invoice]
    credit_bank: int
    total_credits: int


def plans_on_offer() -> list[Plan]:
    """The monthly plans one can subscribe to, cheapest first."""
    return list(Plan.objects.filter(is_active=True, kind=PlanKind.MONTHLY).order_by("price_cents", "sort_order"))


def billing_summary(*, organization: Organization) -> BillingSummary:
    plans = list(Plan.objects.filter(is_active=True))
    balances = dict(
        AccountStripe.objects.filter(
            account__organization=organization, account__kind__in=[AccountKind.WORKSPACE, AccountKind.BANK]
        )
        .values_list("account__kind")
        .annotate(total=Sum("balance"))
        .values_list("account__kind", "total")
    )
    return BillingSummary(
        subscription=Subscription.objects.select_related("plan").filter(organization=organization).first(),
        monthly_plans=[plan for plan in plans if plan.kind == PlanKind.MONTHLY],
        packs=[plan for plan in plans if plan.kind == PlanKind.PACK],
        invoices=list(Invoice.objects.filter(organization=organization).select_related("plan")[:50]),
        credit_bank=balances.get(AccountKind.BANK, 0),
        total_credits=balances.get(AccountKind.WORKSPACE, 0),
    )


@dataclass(frozen=True)
class PlanChange:
    """What subscribing to `plan` means for the organization, for the confirmation that comes before it."""

    plan: Plan
    current: Plan | None  # the plan in force (an active subscription), if any

    @property
    def is_new(self) -> bool:
        return self.current is None

    @property
    def is_downgrade(self) -> bool:
        return self.current is not None and (
            self.plan.credits < self.current.credits or self.plan.price_cents < self.current.price_cents
        )

    @property
    def fewer_credits(self) -> int:
        return max(0, self.current.credits - self.plan.credits) if self.current else 0


def plan_change(*, organization: Organization, plan: Plan) -> PlanChange:
    subscription = Subscription.objects.select_related("plan").filter(organization=organization).first()
    current = subscription.plan if subscription is not None and subscription.is_active else None
    return PlanChange(plan=plan, current=current)


def member_limits(*, workspace: Workspace) -> dict[int | None, int]:
    return dict(WorkspaceLimit.objects.filter(workspace=workspace).values_list("user_id", "monthly_limit"))


def spending_this_month(*, workspace: Workspace, organization: Organization) -> dict[int | None, int]:
    """What the workspace (key None) and each member in it (by user id) spent in the current period: the figure
    monthly limits count (billing.ledger.counters), the same as the month's usage."""
    spent = period_spending(organization=organization, workspace_ids=[workspace.pk])
    return {user_id: value for (_, user_id), value in spent.items()}


def workspaces_for_management(*, organization: Organization) -> QuerySet[Workspace]:
    """Live workspaces with their people count (assigned Members + the org's Owner/Admins) and credit balance, for
    the Workspaces tab."""
    admins = Membership.objects.active().filter(organization=organization, role__gte=OrganizationRole.ADMIN).count()
    return (
        Workspace.objects.live()
        .filter(organization=organization)
        .select_related("created_by")
        .annotate(
            assigned=Count(
                "memberships",
                filter=Q(
                    memberships__user__memberships__organization=organization,
                    memberships__user__memberships__status=MembershipStatus.ACTIVE,
                    memberships__user__memberships__role=OrganizationRole.MEMBER,
                ),
            ),
            people=F("assigned") + Value(admins),
            balance=balance_of("credit_account"),
        )
        .order_by("-is_primary", "name")
    )
