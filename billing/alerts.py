"""Credit alerts: when a workspace budget, a monthly limit or the shared pool crosses one of the organization's
thresholds (default 80% and 100% used), its Owners and Admins get an in-app notification and an email — once per
threshold per budget period. Evaluated by a scheduled task, so spending itself does no extra work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils.timezone import now

from billing.ledger import period_bounds, system_account_ids
from billing.models import AccountKind, AlertState, LedgerEntry, SpendCounter, WorkspaceLimit
from billing.selectors import workspace_balances
from orgs.models import CreditMode, Membership, Notification, Organization, OrganizationRole
from qolaba.outbox.services import outbox_enqueue
from workspaces.models import Workspace


@dataclass(frozen=True)
class Usage:
    """How much of something was used: `used` out of `total` credits."""

    subject: str
    label: str
    used: int
    total: int
    url: str

    @property
    def percent(self) -> float:
        return 100.0 if self.total <= 0 and self.used > 0 else (100.0 * self.used / self.total if self.total else 0.0)


def _consumed_by_workspace(organization: Organization, since: datetime) -> dict[int | None, int]:
    sink = system_account_ids(organization.pk)[AccountKind.SINK]
    spent = (
        LedgerEntry.objects.filter(to_account_id=sink, transaction__created_at__gte=since)
        .values_list("transaction__workspace_id")
        .annotate(total=Sum("amount"))
    )
    refunded = (
        LedgerEntry.objects.filter(from_account_id=sink, transaction__created_at__gte=since)
        .values_list("transaction__workspace_id")
        .annotate(total=Sum("amount"))
    )
    consumed: dict[int | None, int] = dict(spent)
    for workspace_id, total in refunded:
        consumed[workspace_id] = consumed.get(workspace_id, 0) - total
    return consumed


def organization_usages(organization: Organization, at: datetime | None = None) -> list[Usage]:
    """Everything alerts watch in the current period: the pool or each budget, and every monthly limit."""
    period_start, resets_at = period_bounds(organization, at)
    starts_at = resets_at.replace(year=period_start.year, month=period_start.month, day=1)
    consumed = _consumed_by_workspace(organization, starts_at)
    workspaces = {ws.pk: ws for ws in Workspace.objects.live().filter(organization=organization)}
    balances = workspace_balances(organization=organization)
    slug = organization.slug
    usages: list[Usage] = []
    if organization.credit_mode == CreditMode.SHARED:
        pool = next((balances[pk] for pk, ws in workspaces.items() if ws.is_primary), 0)
        used = sum(consumed.values())
        usages.append(Usage("pool", "The shared credit pool", used, used + pool, reverse("billing:page", args=[slug])))
    else:
        for pk, workspace in workspaces.items():
            used = consumed.get(pk, 0)
            usages.append(
                Usage(
                    f"budget:{pk}",
                    f"The budget of {workspace.name}",
                    used,
                    used + balances.get(pk, 0),
                    reverse("workspaces:list", args=[slug]),
                )
            )
    counters = {
        (c.workspace_id, c.user_id): c.spent
        for c in SpendCounter.objects.filter(workspace__in=list(workspaces), period_start=period_start)
    }
    for limit in WorkspaceLimit.objects.filter(workspace__in=list(workspaces)).select_related("user"):
        if limit.user_id is None and organization.credit_mode != CreditMode.SHARED:
            continue
        workspace = workspaces[limit.workspace_id]
        who = f"{limit.user.email}'s" if limit.user else "The"
        usages.append(
            Usage(
                f"limit:{limit.workspace_id}:{limit.user_id or 0}",
                f"{who} monthly limit in {workspace.name}",
                counters.get((limit.workspace_id, limit.user_id), 0),
                limit.monthly_limit,
                reverse("billing:workspace_limit_set", args=[slug, workspace.slug]),
            )
        )
    return usages


def alerts_evaluate(*, organization: Organization, at: datetime | None = None) -> int:
    """Raise every alert newly due in the organization. Returns how many fired."""
    period_start, _ = period_bounds(organization, at)
    thresholds = sorted({int(t) for t in organization.alert_thresholds if 0 < int(t) <= 100})
    fired = 0
    for usage in organization_usages(organization, at):
        crossed = [t for t in thresholds if usage.used > 0 and usage.percent >= t]
        if not crossed:
            continue
        threshold = max(crossed)
        try:
            with transaction.atomic():
                AlertState.objects.create(
                    organization=organization, subject=usage.subject, threshold=threshold, period_start=period_start
                )
                # Lower thresholds crossed at the same time count as fired too: one alert, the highest.
                AlertState.objects.bulk_create(
                    [
                        AlertState(
                            organization=organization, subject=usage.subject, threshold=t, period_start=period_start
                        )
                        for t in crossed
                        if t != threshold
                    ],
                    ignore_conflicts=True,
                )
                _notify_admins(organization=organization, usage=usage, threshold=threshold)
        except IntegrityError:
            continue  # this threshold already fired this period
        fired += 1
    return fired


def _notify_admins(*, organization: Organization, usage: Usage, threshold: int) -> None:
    title = f"{usage.label} is {threshold}% used" if threshold < 100 else f"{usage.label} is used up"
    body = f"{usage.used:,} of {usage.total:,} credits used this period in {organization.name}."
    admins_notify(organization=organization, kind="credits.alert", title=title, body=body, url=usage.url)


def admins_notify(*, organization: Organization, kind: str, title: str, body: str, url: str) -> None:
    """Tell the organization's Owners and Admins: a notification in the app (the bell) and an email, sent when the
    transaction commits. Every credit alert goes out this way."""
    admins = [
        m.user
        for m in Membership.objects.active()
        .filter(organization=organization, role__gte=OrganizationRole.ADMIN)
        .select_related("user")
    ]
    Notification.objects.bulk_create(
        [
            Notification(organization=organization, user=user, kind=kind, title=title, body=body, url=url)
            for user in admins
        ]
    )
    link = settings.SITE_URL + url
    if admins:
        outbox_enqueue(
            task="billing.tasks.alert_emails_send",
            args=[f"[Qolaba] {title}", f"{body}\n\nSee it in Qolaba: {link}\n", [user.email for user in admins]],
        )


def alerts_evaluate_all(*, at: datetime | None = None) -> int:
    fired = 0
    for organization in Organization.objects.alive().iterator():
        fired += alerts_evaluate(organization=organization, at=at or now())
    return fired
