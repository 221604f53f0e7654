"""Credit operations people perform (Owner/Admin in the app, staff in the admin): atomic and audited.

The ledger primitives live in billing.ledger; these services add the business rules and the audit event.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from billing.ledger import (
    credits_grant,
    credits_transfer,
    refund,
    sweep_to_primary,
)
from billing.models import Account, LedgerTransaction, TransactionKind, WorkspaceLimit
from orgs.audit import audit_record
from orgs.models import CreditMode, Membership, Organization, User
from workspaces.models import Workspace


@transaction.atomic
def credit_mode_switch(*, organization: Organization, mode: str, actor: User) -> Organization:
    """Shared pool ⇄ workspace budgets. Budget → shared sweeps every workspace balance back to the Primary
    Workspace; shared → budget starts every other workspace at zero. Nothing is lost either way."""
    if mode not in CreditMode.values:
        raise ValidationError({"mode": "Choose the shared pool or workspace budgets."})
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.credit_mode == mode:
        return organization
    before = organization.credit_mode
    swept = None
    if mode == CreditMode.SHARED:
        swept = sweep_to_primary(organization=organization, actor=actor)
    organization.credit_mode = mode
    organization.save(update_fields=["credit_mode"])
    audit_record(
        organization=organization,
        actor=actor,
        action="credits.mode_switched",
        target=organization,
        before={"credit_mode": before},
        after={"credit_mode": mode, "swept_to_primary": swept.amount if swept else 0},
    )
    return organization


@transaction.atomic
def credits_move(
    *, organization: Organization, source: Workspace, target: Workspace, amount: int, actor: User
) -> LedgerTransaction:
    """Manage credits (workspace budget mode): from one workspace to another, applied at once."""
    txn = credits_transfer(organization=organization, source=source, target=target, amount=amount, actor=actor)
    audit_record(
        organization=organization,
        actor=actor,
        action="credits.transferred",
        target=txn,
        after={"from": source.name, "to": target.name, "amount": amount},
    )
    return txn


@transaction.atomic
def credits_grant_by_staff(*, organization: Organization, amount: int, actor: User, reason: str) -> LedgerTransaction:
    """Support grants credits (goodwill, corrections): they land in the Primary Workspace, with a reason."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the credits are granted."})
    txn = credits_grant(organization=organization, amount=amount, actor=actor, memo=reason.strip())
    audit_record(
        organization=organization,
        actor=actor,
        action="credits.granted",
        target=txn,
        after={"amount": amount, "reason": reason.strip()},
    )
    return txn


@transaction.atomic
def credits_refund_by_staff(*, original: LedgerTransaction, amount: int, actor: User, reason: str) -> LedgerTransaction:
    if not reason.strip():
        raise ValidationError({"reason": "Say why the credits are refunded."})
    txn = refund(original=original, amount=amount, actor=actor, reason=reason.strip())
    audit_record(
        organization=original.organization,
        actor=actor,
        action="credits.refunded",
        target=txn,
        after={"amount": amount, "of_transaction": original.pk, "reason": reason.strip()},
    )
    return txn


def workspace_credits_return(*, workspace: Workspace, actor: User | None) -> LedgerTransaction | None:
    """A deleted workspace's remaining credits go back to the Primary Workspace (inside the caller's transaction)."""
    return sweep_to_primary(
        organization=workspace.organization, actor=actor, workspaces=[workspace], kind=TransactionKind.RETURN
    )


@transaction.atomic
def workspace_limit_set(
    *, workspace: Workspace, user: User | None, monthly_limit: int | None, actor: User
) -> WorkspaceLimit | None:
    """Set (or with None, remove) the monthly spend limit of a workspace, or of one member in it."""
    if monthly_limit is not None and (isinstance(monthly_limit, bool) or monthly_limit < 0):
        raise ValidationError({"monthly_limit": "A limit is a whole number of credits, zero or more."})
    if (
        user is not None
        and not Membership.objects.active().filter(organization_id=workspace.organization_id, user=user).exists()
    ):
        raise ValidationError("Limits apply to members of the organization.")
    existing = WorkspaceLimit.objects.filter(workspace=workspace, user=user).first()
    before = {"monthly_limit": existing.monthly_limit} if existing else {}
    result: WorkspaceLimit | None
    if monthly_limit is None:
        WorkspaceLimit.objects.filter(workspace=workspace, user=user).delete()
        result = None
    else:
        result, _ = WorkspaceLimit.objects.update_or_create(
            workspace=workspace, user=user, defaults={"monthly_limit": monthly_limit}
        )
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action="credits.limit_set",
        target=workspace,
        before=before,
        after={"monthly_limit": monthly_limit, "member": user.email if user else None},
    )
    return result


def workspace_balances(*, organization: Organization) -> dict[int, int]:
    """Live balance of every workspace of the organization, by workspace id."""
    return dict(
        Account.objects.filter(organization=organization, workspace__isnull=False).values_list(
            "workspace_id", "balance"
        )
    )
