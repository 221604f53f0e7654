"""A Hypothesis state machine over the ledger: random sequences of grants, transfers, holds, captures, releases,
charges, refunds, mode switches, member monthly limits and workspace archive/restore, on PostgreSQL, against a
small in-Python model. After every step the database must match the model exactly (every workspace balance,
pending holds, what the holds account and the sink hold, the spend counters) and `reconcile()` must be clean.
Every operation must be refused exactly when the model says so, naming a limit that is really exceeded.

Each example commits (transaction=True) and its teardown truncates the ledger tables: every example starts clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from billing.ledger import (
    CreditLimitReached,
    HoldNotPending,
    InvalidAmount,
    LedgerError,
    ModeMismatch,
    account_open_for_workspace,
    accounts_open_for_organization,
    charge,
    credits_grant,
    credits_transfer,
    hold_capture,
    hold_place,
    hold_release,
    period_bounds,
    refund,
)
from billing.models import (
    Account,
    AccountKind,
    Hold,
    HoldStatus,
    LedgerEntry,
    LedgerTransaction,
    SpendCounter,
    WorkspaceLimit,
)
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, workspace_limit_set
from orgs.models import CreditMode, Organization, User
from qolaba.lifecycle import workspace_archive, workspace_restore
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole

WORKSPACES = ("primary", "w1", "w2")
USERS = ("owner", "member")
AMOUNTS = st.integers(1, 300) | st.integers(1, 5_000)
# Biased towards one workspace and one member, so that limits, holds and spends meet more often.
A_WORKSPACE = st.sampled_from(("w1", "w1", "w2", "primary"))
A_USER = st.sampled_from(("member", "member", "owner"))


@dataclass
class HoldRecord:
    pk: int
    workspace: str
    user: str
    amount: int
    paid_from: str
    status: str = HoldStatus.PENDING
    counted: bool = False  # whether the member's monthly counter counted the reservation


@dataclass
class SpendRecord:
    """A charge or a capture: what it consumed, what was refunded of it, and the balance that paid."""

    transaction_id: int
    workspace: str
    user: str
    consumed: int
    paid_from: str
    refunded: int = 0
    counted: bool = False  # whether the member's monthly counter counted the spend


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")
    spends = Bundle("spends")

    # Set by the test: the organization (Primary Workspace, W1, W2) and its two members, made once per run.
    organization_id: int
    workspace_ids: dict[str, int]
    user_ids: dict[str, int]

    def __init__(self) -> None:
        super().__init__()
        # Each example starts from the same organization in shared mode, with live workspaces and fresh accounts.
        Organization.objects.filter(pk=self.organization_id).update(credit_mode=CreditMode.SHARED)
        Workspace.objects.filter(pk__in=self.workspace_ids.values()).update(archived_at=None)
        self.org = Organization.objects.get(pk=self.organization_id)
        self.workspaces = {key: Workspace.objects.get(pk=pk) for key, pk in self.workspace_ids.items()}
        self.users = {key: User.objects.get(pk=pk) for key, pk in self.user_ids.items()}
        accounts_open_for_organization(organization=self.org)
        self.accounts = {
            key: account_open_for_workspace(workspace=workspace).pk for key, workspace in self.workspaces.items()
        }
        self.sink = Account.objects.get(organization=self.org, kind=AccountKind.SINK).pk
        self.holds_account = Account.objects.get(organization=self.org, kind=AccountKind.HOLDS).pk
        self.period = period_bounds(self.org)[0]
        # The model.
        self.mode = CreditMode.SHARED
        self.balance = dict.fromkeys(WORKSPACES, 0)
        self.granted = 0
        self.consumed = 0
        self.hold_records: dict[int, HoldRecord] = {}
        self.limits: dict[tuple[str, str], int] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.month_spent: dict[tuple[str, str], int] = {}  # everything spent this month, with a limit or not
        self.archived: set[str] = set()

    def teardown(self) -> None:
        """Empty the ledger tables for the next example (TRUNCATE: rolled-back or deleted rows would pile up as
        dead rows, and reconcile() scans the ledger entries once per account)."""
        tables = ", ".join(
            model._meta.db_table
            for model in (LedgerEntry, LedgerTransaction, Hold, SpendCounter, WorkspaceLimit, Account)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables} CASCADE")

    # --- the model's rules ---------------------------------------------------------------------------------------

    def paying(self, workspace: str) -> str:
        return "primary" if self.mode == CreditMode.SHARED else workspace

    def give_back_to(self, paid_from: str) -> str:
        """Credits given back (hold remainder, refund) go to the balance that paid, unless the organization is
        now in shared mode or that workspace is deleted: then to the pool."""
        if paid_from == "primary" or (self.mode == CreditMode.BUDGET and paid_from not in self.archived):
            return paid_from
        return "primary"

    def spend_violations(self, workspace: str, user: str, amount: int) -> dict[str, int]:
        """Every limit that `amount` would exceed, with what is left under it."""
        violations = {}
        limit = self.limits.get((workspace, user))
        if limit is not None and self.counters.get((workspace, user), 0) + amount > limit:
            violations["member_monthly_limit"] = max(limit - self.counters.get((workspace, user), 0), 0)
        paying = self.paying(workspace)
        if self.balance[paying] < amount:
            violations["pool" if self.mode == CreditMode.SHARED else "workspace_balance"] = self.balance[paying]
        return violations

    def count(self, workspace: str, user: str, amount: int) -> bool:
        """A spend counts in the month; it moves the member's counter while a limit exists (returns whether)."""
        key = (workspace, user)
        self.month_spent[key] = self.month_spent.get(key, 0) + amount
        if key not in self.limits:
            return False
        self.counters[key] = self.counters.get(key, 0) + amount
        return True

    def give_back(self, workspace: str, user: str, amount: int, counted: bool) -> None:
        """A refund or a release leaves the month's spending, and the counter of a limit in force (which counted
        the spend whether it was set before or after it)."""
        key = (workspace, user)
        self.month_spent[key] = self.month_spent.get(key, 0) - amount
        if key in self.limits:
            self.counters[key] = max(self.counters.get(key, 0) - amount, 0)

    def expect_refusal(self, violations: dict[str, int], call):
        with pytest.raises(CreditLimitReached) as refused:
            call()
        assert refused.value.limit in violations, (refused.value.limit, violations)
        event(f"refused: {refused.value.limit}")
        assert refused.value.available == violations[refused.value.limit]
        expected_reset = None if refused.value.limit in ("pool", "workspace_balance") else period_bounds(self.org)[1]
        assert refused.value.resets_at == expected_reset

    def settle(self, record: HoldRecord, captured: int) -> None:
        returned = record.amount - captured
        self.consumed += captured
        self.balance[self.give_back_to(record.paid_from)] += returned
        if returned:
            self.give_back(record.workspace, record.user, returned, record.counted)

    # --- rules ---------------------------------------------------------------------------------------------------

    @initialize(
        amount=st.integers(1_000, 20_000),
        budget=st.booleans(),
        w1=st.integers(0, 3_000),
        member_limit=st.none() | st.integers(0, 3_000),
    )
    def start(self, amount, budget, w1, member_limit):
        """A funded organization, in either mode (in budget mode, with some credits moved to W1), maybe with a
        monthly limit for the member in W1."""
        self.grant(amount)
        if budget:
            self.switch_mode(CreditMode.BUDGET)
            self.move("primary", "w1", min(w1, amount) or 1)
        if member_limit is not None:
            self.set_member_limit("w1", "member", member_limit)

    @rule(amount=st.integers(1, 10_000))
    def grant(self, amount):
        credits_grant(organization=self.org, amount=amount, actor=self.users["owner"])
        self.balance["primary"] += amount
        self.granted += amount

    @rule(source=A_WORKSPACE, destination=A_WORKSPACE, amount=st.integers(1, 2_000))
    def transfer(self, source, destination, amount):
        self.move(source, destination, amount)

    @rule(destination=st.sampled_from(("w1", "w2")), amount=st.integers(1, 5_000))
    def allocate(self, destination, amount):
        """Manage credits: from the Primary Workspace to another one."""
        self.move("primary", destination, amount)

    def move(self, source, destination, amount):
        def call():
            return credits_transfer(
                organization=self.org,
                source=self.workspaces[source],
                target=self.workspaces[destination],
                amount=amount,
                actor=self.users["owner"],
            )

        event(f"transfer in {self.mode} mode")
        if self.mode == CreditMode.SHARED:
            with pytest.raises(ModeMismatch):
                call()
        elif source == destination or {source, destination} & self.archived:
            with pytest.raises(LedgerError) as refused:
                call()
            assert type(refused.value) is LedgerError
        elif amount > self.balance[source]:
            self.expect_refusal({"workspace_balance": self.balance[source]}, call)
        else:
            call()
            self.balance[source] -= amount
            self.balance[destination] += amount

    def room(self, workspace: str, user: str) -> int:
        """The most `user` can spend in `workspace` right now."""
        room = self.balance[self.paying(workspace)]
        limit = self.limits.get((workspace, user))
        if limit is not None:
            room = min(room, limit - self.counters.get((workspace, user), 0))
        return room

    def spend(self, kind: str, workspace: str, user: str, amount: int):
        if workspace in self.archived:
            return multiple()  # a deleted workspace has no usage (not the ledger's check)
        place = hold_place if kind == "hold" else charge

        def call():
            return place(
                organization=self.org, workspace=self.workspaces[workspace], user=self.users[user], amount=amount
            )

        violations = self.spend_violations(workspace, user, amount)
        if violations:
            self.expect_refusal(violations, call)
            return multiple()
        result = call()
        event(f"{kind} in {self.mode} mode")
        paying = self.paying(workspace)
        self.balance[paying] -= amount
        counted = self.count(workspace, user, amount)
        assert (result.available, result.replayed) == (self.balance[paying], False)
        if kind == "hold":
            record = HoldRecord(result.hold.pk, workspace, user, amount, paying, counted=counted)
            self.hold_records[record.pk] = record
            return record
        self.consumed += amount
        return SpendRecord(result.transaction_id, workspace, user, amount, paying, counted=counted)

    @rule(target=spends, workspace=A_WORKSPACE, user=A_USER, amount=AMOUNTS)
    def charge(self, workspace, user, amount):
        return self.spend("charge", workspace, user, amount)

    @rule(target=holds, workspace=A_WORKSPACE, user=A_USER, amount=AMOUNTS)
    def hold(self, workspace, user, amount):
        return self.spend("hold", workspace, user, amount)

    @rule(
        target=spends,
        workspace=A_WORKSPACE,
        user=A_USER,
        beyond=st.sampled_from([-1, 0, 1]),
    )
    def charge_at_the_edge(self, workspace, user, beyond):
        """Charge one less than, exactly, or one more than what is left (balance or limit)."""
        amount = self.room(workspace, user) + beyond
        if amount < 1:
            return multiple()
        return self.spend("charge", workspace, user, amount)

    @rule(
        target=holds,
        workspace=A_WORKSPACE,
        user=A_USER,
        beyond=st.sampled_from([-1, 0, 1]),
    )
    def hold_at_the_edge(self, workspace, user, beyond):
        amount = self.room(workspace, user) + beyond
        if amount < 1:
            return multiple()
        return self.spend("hold", workspace, user, amount)

    @rule(target=spends, record=holds, data=st.data())
    def capture(self, record, data):
        amount = data.draw(st.integers(0, record.amount + 20), label="captured")
        hold = Hold.objects.get(pk=record.pk)
        if record.status != HoldStatus.PENDING:
            with pytest.raises(HoldNotPending):
                hold_capture(hold=hold, amount=amount)
            return multiple()
        if amount > record.amount:
            with pytest.raises(InvalidAmount):
                hold_capture(hold=hold, amount=amount)
            return multiple()
        result = hold_capture(hold=hold, amount=amount)
        event("captured" + (" after a mode switch" if record.paid_from != self.paying(record.workspace) else ""))
        self.settle(record, amount)
        record.status = HoldStatus.CAPTURED
        assert result.available == self.balance[self.paying(record.workspace)]
        if amount == 0:
            return multiple()  # nothing consumed, nothing to refund
        return SpendRecord(
            result.transaction_id, record.workspace, record.user, amount, record.paid_from, counted=record.counted
        )

    @rule(record=holds)
    def release(self, record):
        hold = Hold.objects.get(pk=record.pk)
        if record.status != HoldStatus.PENDING:
            with pytest.raises(HoldNotPending):
                hold_release(hold=hold)
            return
        result = hold_release(hold=hold)
        event("released" + (" after a mode switch" if record.paid_from != self.paying(record.workspace) else ""))
        self.settle(record, 0)
        record.status = HoldStatus.RELEASED
        assert result.available == self.balance[self.paying(record.workspace)]

    @rule(record=spends, data=st.data())
    def refund(self, record, data):
        left = record.consumed - record.refunded
        amount = data.draw(st.integers(1, left + 20), label="refunded")
        original = LedgerTransaction.objects.get(pk=record.transaction_id)

        def call():
            return refund(original=original, amount=amount, actor=self.users["owner"], reason="model")

        if amount > left:
            with pytest.raises(InvalidAmount):
                call()
            return
        made = call()
        event("refunded")
        assert (made.amount, made.reverses_id) == (amount, record.transaction_id)
        record.refunded += amount
        self.consumed -= amount
        self.balance[self.give_back_to(record.paid_from)] += amount
        self.give_back(record.workspace, record.user, amount, record.counted)

    @rule(mode=st.sampled_from(CreditMode.values))
    def switch_mode(self, mode):
        event("switched" if mode != self.mode else "switched to the same mode")
        self.org = credit_mode_switch(organization=self.org, mode=mode, actor=self.users["owner"])
        assert self.org.credit_mode == mode
        if mode == CreditMode.SHARED:
            for key in ("w1", "w2"):
                self.balance["primary"] += self.balance[key]
                self.balance[key] = 0
        self.mode = mode

    @rule(workspace=A_WORKSPACE, user=A_USER, monthly_limit=st.integers(0, 3_000))
    def set_member_limit(self, workspace, user, monthly_limit):
        workspace_limit_set(
            workspace=self.workspaces[workspace],
            user=self.users[user],
            monthly_limit=monthly_limit,
            actor=self.users["owner"],
        )
        self.limits[(workspace, user)] = monthly_limit
        # A limit counts the whole month: its counter starts at what was already spent.
        self.counters[(workspace, user)] = self.month_spent.get((workspace, user), 0)

    @rule(workspace=A_WORKSPACE, user=A_USER)
    def remove_member_limit(self, workspace, user):
        workspace_limit_set(
            workspace=self.workspaces[workspace], user=self.users[user], monthly_limit=None, actor=self.users["owner"]
        )
        self.limits.pop((workspace, user), None)
        self.counters.pop((workspace, user), None)  # the counter goes with its limit

    @rule(workspace=st.sampled_from(("w1", "w2")))
    def archive(self, workspace):
        if workspace in self.archived:
            with pytest.raises(ValidationError):
                workspace_archive(workspace=self.workspaces[workspace], actor=self.users["owner"])
            return
        workspace_archive(workspace=self.workspaces[workspace], actor=self.users["owner"])
        event("archived")
        self.workspaces[workspace].refresh_from_db()
        self.balance["primary"] += self.balance[workspace]
        self.balance[workspace] = 0
        self.archived.add(workspace)

    @rule(workspace=st.sampled_from(("w1", "w2")))
    def restore(self, workspace):
        if workspace not in self.archived:
            with pytest.raises(ValidationError):
                workspace_restore(workspace=self.workspaces[workspace], actor=self.users["owner"])
            return
        workspace_restore(workspace=self.workspaces[workspace], actor=self.users["owner"])
        self.workspaces[workspace].refresh_from_db()
        self.archived.discard(workspace)

    # --- after every step ----------------------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self):
        stored = dict(Account.objects.filter(pk__in=self.accounts.values()).values_list("pk", "balance"))
        assert {key: stored[pk] for key, pk in self.accounts.items()} == self.balance
        statuses = dict(Hold.objects.filter(organization=self.org).values_list("pk", "status"))
        assert statuses == {pk: record.status for pk, record in self.hold_records.items()}
        # System accounts hold the sum of their entries.
        totals = LedgerEntry.objects.aggregate(
            **{
                f"{name}_{side}": Coalesce(Sum("amount", filter=Q(**{f"{side}_account_id": pk})), 0)
                for name, pk in (("holds", self.holds_account), ("sink", self.sink))
                for side in ("to", "from")
            }
        )
        pending = sum(r.amount for r in self.hold_records.values() if r.status == HoldStatus.PENDING)
        assert totals["holds_to"] - totals["holds_from"] == pending
        assert totals["sink_to"] - totals["sink_from"] == self.consumed
        assert sum(self.balance.values()) + pending + self.consumed == self.granted
        keys = {ws.pk: key for key, ws in self.workspaces.items()}
        users = {user.pk: key for key, user in self.users.items()}
        rows = SpendCounter.objects.filter(workspace__organization=self.org).values_list(
            "workspace_id", "user_id", "period_start", "spent"
        )
        counters = {}
        for workspace_id, user_id, period_start, spent in rows:
            assert user_id is not None  # no workspace limits in this machine
            assert period_start == self.period
            if spent:
                counters[(keys[workspace_id], users[user_id])] = spent
        assert counters == {key: spent for key, spent in self.counters.items() if spent}
        assert all(self.counters.get(key, 0) == self.month_spent.get(key, 0) for key in self.limits)
        if self.mode == CreditMode.SHARED:
            assert self.balance["w1"] == self.balance["w2"] == 0
        assert reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_ledger_state_machine():
    owner = UserFactory()
    organization = make_organization(owner=owner)
    w1, w2 = make_workspace(organization, name="W1"), make_workspace(organization, name="W2")
    member = make_member(organization, workspaces={w1: WorkspaceRole.MEMBER, w2: WorkspaceRole.ADMIN}).user

    class Machine(LedgerMachine):
        organization_id = organization.pk
        workspace_ids = {
            "primary": Workspace.objects.get(organization=organization, is_primary=True).pk,
            "w1": w1.pk,
            "w2": w2.pk,
        }
        user_ids = {"owner": owner.pk, "member": member.pk}

    # A fixed mid-month clock (ticking): no period boundary is crossed during the run.
    with time_machine.travel(datetime(2026, 3, 14, 12, 0, tzinfo=ZoneInfo("UTC")), tick=True):
        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=80,
                stateful_step_count=20,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
