"""The ledger's accounts: opened with an organization or a workspace, and looked up by the movements (the system
accounts, the Primary Workspace's account, and the account a workspace's spending comes from)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q

from billing.ledger.errors import LedgerError, LimitName
from billing.models import CACHED_KINDS, ORGANIZATION_KINDS, Account, AccountKind, AccountStripe, balance_of
from orgs.models import CreditMode, Organization
from workspaces.models import Workspace


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


def primary_account_id(organization: Organization) -> int:
    return Account.objects.values_list("pk", flat=True).get(
        organization=organization, kind=AccountKind.WORKSPACE, workspace__is_primary=True
    )


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
