"""The ledger under concurrency, on real PostgreSQL: committed data (transaction=True), one database connection per
thread, workers released together by a barrier, joins with a timeout (a hung worker fails the test).

- many charges against a balance that allows only some of them never overspend, and every charge that could
  succeed did (single-statement path and general path with monthly limits);
- transfers racing charges, and mode switches racing charges, conserve every credit and never deadlock;
- concurrent replays of one idempotency key charge once;
- deterministic races (a worker provably waiting on a row lock held by an uncommitted mode switch or archive).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from django.db.models import Sum

from billing.ledger import (
    CreditLimitReached,
    HoldNotPending,
    InvalidAmount,
    charge,
    credits_grant,
    credits_transfer,
    hold_capture,
    hold_place,
    hold_release,
    refund,
)
from billing.models import Account, AccountKind, Hold, LedgerEntry, LedgerTransaction, SpendCounter, TransactionKind
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, workspace_limit_set
from orgs.models import CreditMode, Organization, User
from qolaba.lifecycle import workspace_archive
from tests.concurrency import race_against, run_together
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 16


# --- helpers -----------------------------------------------------------------------------------------------------


def make_ctx(*, grant: int) -> SimpleNamespace:
    owner = UserFactory()
    org = make_organization(owner=owner)
    primary = Workspace.objects.get(organization=org, is_primary=True)
    a = make_workspace(org, name="A")
    b = make_workspace(org, name="B")
    member = make_member(org, workspaces={a: WorkspaceRole.MEMBER, b: WorkspaceRole.MEMBER}).user
    credits_grant(organization=org, amount=grant, actor=owner)
    return SimpleNamespace(org=org, owner=owner, member=member, primary=primary, a=a, b=b, granted=grant)


def bal(workspace: Workspace) -> int:
    return Account.objects.get(workspace=workspace).balance


def all_balances(org: Organization) -> int:
    return Account.objects.filter(organization=org, kind=AccountKind.WORKSPACE).aggregate(s=Sum("balance"))["s"]


def system_total(org: Organization, kind: AccountKind) -> int:
    account = Account.objects.get(organization=org, kind=kind)
    into = LedgerEntry.objects.filter(to_account=account).aggregate(s=Sum("amount"))["s"] or 0
    out = LedgerEntry.objects.filter(from_account=account).aggregate(s=Sum("amount"))["s"] or 0
    return into - out


def fresh(ctx: SimpleNamespace) -> SimpleNamespace:
    """The context's rows loaded again on this thread's connection (nothing shared between threads)."""
    return SimpleNamespace(
        org=Organization.objects.get(pk=ctx.org.pk),
        owner=User.objects.get(pk=ctx.owner.pk),
        member=User.objects.get(pk=ctx.member.pk),
        primary=Workspace.objects.get(pk=ctx.primary.pk),
        a=Workspace.objects.get(pk=ctx.a.pk),
        b=Workspace.objects.get(pk=ctx.b.pk),
    )


def charge_loop(
    ctx, *, workspace: str, user: str, amounts: list[int], allowed_limits: set[str], reload_organization: bool = False
):
    """A worker: charge each amount; returns (successful amounts, their results, refusals). With
    `reload_organization`, each charge loads the organization first, as a request would."""

    def worker(start):
        mine = fresh(ctx)
        ws, who = getattr(mine, workspace), getattr(mine, user)
        charged, results, refusals = [], [], []
        start()
        for amount in amounts:
            if reload_organization:
                mine.org = Organization.objects.get(pk=ctx.org.pk)
            try:
                result = charge(organization=mine.org, workspace=ws, user=who, amount=amount)
            except CreditLimitReached as error:
                refusals.append((error.limit, error.available, amount))
            else:
                charged.append(amount)
                results.append(result)
        unexpected = {limit for limit, _, _ in refusals} - allowed_limits
        assert not unexpected, f"refused by {unexpected}"
        return charged, results, refusals

    return worker


# --- (a) and (e): many charges against a balance or a limit that allows only some ---------------------------------


@pytest.mark.parametrize("mode", [CreditMode.SHARED, CreditMode.BUDGET])
def test_concurrent_charges_never_overspend_and_every_possible_charge_succeeds(mode):
    price, per_worker = 7, 200
    start_balance = price * 1_000 + 3  # room for exactly 1,000 of the 3,200 charges
    assert start_balance < WORKERS * per_worker * price
    ctx = make_ctx(grant=start_balance)
    paying = ctx.primary
    if mode == CreditMode.BUDGET:
        ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
        credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=start_balance, actor=ctx.owner)
        paying = ctx.a
    limit = "pool" if mode == CreditMode.SHARED else "workspace_balance"
    workers = [
        charge_loop(
            ctx,
            workspace="a",
            user="member" if i % 2 else "owner",
            amounts=[price] * per_worker,
            allowed_limits={limit},
        )
        for i in range(WORKERS)
    ]
    outcomes = run_together(workers)

    successes = sum(len(charged) for charged, _, _ in outcomes)
    assert successes * price <= start_balance
    assert successes == start_balance // price  # every charge that could succeed did
    assert bal(paying) == start_balance - successes * price == start_balance % price
    assert all_balances(ctx.org) == start_balance - successes * price
    assert system_total(ctx.org, AccountKind.SINK) == successes * price
    assert LedgerTransaction.objects.filter(organization=ctx.org, kind=TransactionKind.CHARGE).count() == successes
    # The balance is striped over several rows, so each success reports the pool as its statement saw it, less its
    # own debit: never more than the start less one price, never less than what is finally left.
    seen = [result.available for _, results, _ in outcomes for result in results]
    assert all(start_balance % price <= available <= start_balance - price for available in seen)
    refusals = [refusal for _, _, refused in outcomes for refusal in refused]
    assert len(refusals) == WORKERS * per_worker - successes
    assert all(available < price for _, available, _ in refusals)
    assert reconcile() == []


@pytest.mark.parametrize("binding", ["member_limit", "workspace_limit", "balance"])
def test_concurrent_charges_on_the_general_path_never_exceed_a_limit(binding):
    price, per_worker = 7, 100
    cap = price * 300 + 5  # room for exactly 300 of the 1,600 charges
    ctx = make_ctx(grant=cap if binding == "balance" else 1_000_000)
    if binding == "workspace_limit":
        workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=cap, actor=ctx.owner)
        limit_name = "workspace_monthly_limit"
    else:
        monthly = cap if binding == "member_limit" else 10**12
        workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=monthly, actor=ctx.owner)
        limit_name = "member_monthly_limit" if binding == "member_limit" else "pool"
    workers = [
        charge_loop(ctx, workspace="a", user="member", amounts=[price] * per_worker, allowed_limits={limit_name})
        for _ in range(WORKERS)
    ]
    outcomes = run_together(workers)

    successes = sum(len(charged) for charged, _, _ in outcomes)
    assert successes * price <= cap
    assert successes == cap // price
    assert system_total(ctx.org, AccountKind.SINK) == successes * price
    assert bal(ctx.primary) == ctx.granted - successes * price
    spent = SpendCounter.objects.get(workspace=ctx.a, user=None if binding == "workspace_limit" else ctx.member).spent
    assert spent == successes * price
    refusals = [refusal for _, _, refused in outcomes for refusal in refused]
    assert len(refusals) == WORKERS * per_worker - successes
    assert all(available < price for _, available, _ in refusals)
    assert reconcile() == []


# --- (b) transfers racing charges --------------------------------------------------------------------------------


def test_transfers_racing_charges_conserve_credits_and_never_deadlock():
    ctx = make_ctx(grant=100_000)
    ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
    for target in (ctx.a, ctx.b):
        credits_transfer(organization=ctx.org, source=ctx.primary, target=target, amount=5_000, actor=ctx.owner)
    # The member's charges in B take the general path (a member limit that is never reached).
    workspace_limit_set(workspace=ctx.b, user=ctx.member, monthly_limit=10**12, actor=ctx.owner)
    ops = 150

    def transfers(seed: int, routes: list[tuple[str, str]]):
        def worker(start):
            mine = fresh(ctx)
            rng = random.Random(seed)
            moved, refused = 0, []
            start()
            for _ in range(ops):
                source, target = rng.choice(routes)
                try:
                    credits_transfer(
                        organization=mine.org,
                        source=getattr(mine, source),
                        target=getattr(mine, target),
                        amount=rng.randint(1, 800),
                        actor=mine.owner,
                    )
                    moved += 1
                except CreditLimitReached as error:
                    refused.append((error.limit, error.resets_at))
            assert set(refused) <= {("workspace_balance", None)}, set(refused)
            return ("transfers", moved, len(refused))

        return worker

    def charges(seed: int, workspace: str, user: str):
        amounts = [random.Random(seed).randint(1, 60) for _ in range(ops)]
        inner = charge_loop(ctx, workspace=workspace, user=user, amounts=amounts, allowed_limits={"workspace_balance"})

        def worker(start):
            charged, _, refusals = inner(start)
            return ("charges", sum(charged), len(refusals))

        return worker

    workers = [
        charges(1, "a", "owner"),
        charges(2, "a", "member"),
        charges(3, "a", "owner"),
        charges(4, "b", "member"),
        charges(5, "b", "member"),
        charges(6, "b", "owner"),
        charges(7, "primary", "owner"),
        charges(8, "a", "member"),
        transfers(11, [("a", "b"), ("b", "a")]),
        transfers(12, [("a", "b"), ("b", "a")]),
        transfers(13, [("b", "a"), ("a", "b")]),
        transfers(14, [("a", "b"), ("b", "a")]),
        transfers(15, [("primary", "a"), ("primary", "b")]),
        transfers(16, [("a", "primary"), ("b", "primary")]),
        transfers(17, [("primary", "a"), ("b", "primary")]),
        transfers(18, [("primary", "b"), ("a", "primary")]),
    ]
    outcomes = run_together(workers)

    charged = sum(total for kind, total, _ in outcomes if kind == "charges")
    assert charged > 0
    assert sum(moved for kind, moved, _ in outcomes if kind == "transfers") > 0
    assert min(bal(ctx.primary), bal(ctx.a), bal(ctx.b)) >= 0
    assert system_total(ctx.org, AccountKind.SINK) == charged
    assert all_balances(ctx.org) + charged == ctx.granted
    assert reconcile() == []


# --- (c) mode switches racing charges ----------------------------------------------------------------------------


def test_mode_switches_racing_charges_lose_nothing():
    ctx = make_ctx(grant=200_000)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=10**12, actor=ctx.owner)
    ops = 150
    flips = 40

    def switcher(start):
        mine = fresh(ctx)
        rng = random.Random(99)
        start()
        for _ in range(flips):
            mine.org = credit_mode_switch(
                organization=mine.org,
                mode=CreditMode.BUDGET if mine.org.credit_mode == CreditMode.SHARED else CreditMode.SHARED,
                actor=mine.owner,
            )
            if mine.org.credit_mode == CreditMode.BUDGET:
                for target in (mine.a, mine.b):
                    credits_transfer(
                        organization=mine.org,
                        source=mine.primary,
                        target=target,
                        amount=rng.randint(100, 3_000),
                        actor=mine.owner,
                    )
            time.sleep(0.005)
        return ("switcher", 0, 0)

    def charges(seed: int, workspace: str, user: str):
        amounts = [random.Random(seed).randint(1, 120) for _ in range(ops)]
        inner = charge_loop(
            ctx,
            workspace=workspace,
            user=user,
            amounts=amounts,
            allowed_limits={"pool", "workspace_balance"},
            reload_organization=True,
        )

        def worker(start):
            charged, _, refusals = inner(start)
            return ("charges", sum(charged), len(refusals))

        return worker

    spots = [("a", "owner"), ("a", "member"), ("b", "member"), ("b", "owner"), ("primary", "owner")]
    workers = [switcher] + [charges(i, *spots[i % len(spots)]) for i in range(WORKERS - 1)]
    outcomes = run_together(workers)

    charged = sum(total for kind, total, _ in outcomes if kind == "charges")
    assert charged > 0
    assert min(bal(ctx.primary), bal(ctx.a), bal(ctx.b)) >= 0
    assert system_total(ctx.org, AccountKind.SINK) == charged
    assert all_balances(ctx.org) + charged == ctx.granted
    assert reconcile() == []
    # End in shared mode: every credit is back in the pool (reconcile checks nothing is left outside it).
    organization = credit_mode_switch(organization=ctx.org, mode=CreditMode.SHARED, actor=ctx.owner)
    assert organization.credit_mode == CreditMode.SHARED
    assert bal(ctx.primary) == ctx.granted - charged
    assert reconcile() == []


# --- (d) concurrent replays of one idempotency key ---------------------------------------------------------------


@pytest.mark.parametrize("operation", ["charge", "charge_general", "hold"])
def test_concurrent_replays_of_one_key_charge_once(operation):
    ctx = make_ctx(grant=10_000)
    if operation == "charge_general":
        workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=5_000, actor=ctx.owner)

    def worker(start):
        mine = fresh(ctx)
        spend = hold_place if operation == "hold" else charge
        start()
        results = []
        for _ in range(5):
            result = spend(
                organization=mine.org, workspace=mine.a, user=mine.member, amount=700, idempotency_key="job-1"
            )
            results.append((result.transaction_id, result.replayed, result.hold.pk if result.hold else None))
        return results

    outcomes = [r for results in run_together([worker] * WORKERS) for r in results]

    assert len(outcomes) == WORKERS * 5
    (original,) = LedgerTransaction.objects.filter(organization=ctx.org, idempotency_key="job-1")
    assert {transaction_id for transaction_id, _, _ in outcomes} == {original.pk}
    assert Counter(replayed for _, replayed, _ in outcomes) == {False: 1, True: WORKERS * 5 - 1}
    assert bal(ctx.primary) == 10_000 - 700
    if operation == "hold":
        (hold,) = Hold.objects.filter(organization=ctx.org)
        assert {hold_id for _, _, hold_id in outcomes} == {hold.pk}
        assert system_total(ctx.org, AccountKind.HOLDS) == 700
        hold_release(hold=hold)
    else:
        assert system_total(ctx.org, AccountKind.SINK) == 700
    if operation == "charge_general":
        assert SpendCounter.objects.get(workspace=ctx.a, user=ctx.member).spent == 700
    assert reconcile() == []


# --- deterministic races: a worker waits on a row lock held by an uncommitted switch or archive ---------------------


@pytest.mark.parametrize(
    "operation",
    [
        "charge",
        "charge_general",
        "hold",
        "capture",
        "release",
        "refund",
        "grant",
        "transfer",
    ],
)
def test_a_retry_racing_the_original_request_is_answered_as_a_replay(operation):
    ctx = make_ctx(grant=10_000)
    if operation == "charge_general":
        workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=5_000, actor=ctx.owner)
    held = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=500).hold
    paid = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300)
    if operation == "transfer":
        ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
    key = "retry-1"

    def request():
        mine = fresh(ctx)
        if operation in ("charge", "charge_general", "hold"):
            spend = hold_place if operation == "hold" else charge
            return spend(organization=mine.org, workspace=mine.a, user=mine.member, amount=70, idempotency_key=key)
        if operation == "capture":
            return hold_capture(hold=Hold.objects.get(pk=held.pk), amount=200, idempotency_key=key)
        if operation == "release":
            return hold_release(hold=Hold.objects.get(pk=held.pk), idempotency_key=key)
        if operation == "refund":
            original = LedgerTransaction.objects.get(pk=paid.transaction_id)
            return refund(original=original, amount=100, actor=mine.owner, reason="retry", idempotency_key=key)
        if operation == "grant":
            return credits_grant(organization=mine.org, amount=100, actor=mine.owner, idempotency_key=key)
        return credits_transfer(
            organization=mine.org, source=mine.primary, target=mine.a, amount=100, actor=mine.owner, idempotency_key=key
        )

    def answer(result) -> tuple:
        if isinstance(result, LedgerTransaction):
            return (result.pk,)
        return (result.transaction_id, result.replayed)

    original, retried = race_against(request, request)
    (original_id,) = LedgerTransaction.objects.filter(organization=ctx.org, idempotency_key=key).values_list(
        "pk", flat=True
    )
    assert len(retried) == 1
    assert not isinstance(retried[0], Exception), repr(retried[0])
    assert answer(original)[0] == answer(retried[0])[0] == original_id
    if operation in ("charge", "charge_general", "hold", "capture", "release"):
        assert (answer(original)[1], answer(retried[0])[1]) == (False, True)
    if Hold.objects.filter(pk=held.pk, status="pending").exists():
        hold_release(hold=Hold.objects.get(pk=held.pk))
    for extra in Hold.objects.filter(organization=ctx.org, status="pending"):
        hold_release(hold=extra)
    assert reconcile() == []


# --- exactly once under concurrency: captures of one hold, refunds of one charge ----------------------------------


def test_concurrent_settlements_of_one_hold_settle_it_once():
    ctx = make_ctx(grant=10_000)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_000).hold

    def settle(index: int):
        def worker(start):
            mine = Hold.objects.get(pk=hold.pk)
            start()
            try:
                if index % 4 == 3:
                    return ("released", hold_release(hold=mine).transaction_id)
                return ("captured", hold_capture(hold=mine, amount=100 + index).transaction_id)
            except HoldNotPending:
                return ("refused", None)

        return worker

    outcomes = run_together([settle(i) for i in range(WORKERS)])

    winners = [outcome for outcome in outcomes if outcome[0] != "refused"]
    assert len(winners) == 1
    ((how, transaction_id),) = winners
    hold.refresh_from_db()
    assert hold.settle_transaction_id == transaction_id
    assert hold.status == how
    consumed = hold.captured_amount
    assert system_total(ctx.org, AccountKind.SINK) == consumed
    assert system_total(ctx.org, AccountKind.HOLDS) == 0
    assert bal(ctx.primary) == 10_000 - consumed
    assert reconcile() == []


def test_concurrent_refunds_never_exceed_what_was_consumed():
    ctx = make_ctx(grant=10_000)
    paid = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_000)

    def worker(start):
        original = LedgerTransaction.objects.get(pk=paid.transaction_id)
        owner = User.objects.get(pk=ctx.owner.pk)
        start()
        refunded = 0
        for _ in range(4):
            try:
                refund(original=original, amount=30, actor=owner, reason="concurrent")
                refunded += 30
            except InvalidAmount:
                pass
        return refunded

    refunded = sum(run_together([worker] * WORKERS))

    assert refunded == 990  # 33 refunds of 30 fit in 1,000; the 34th never does
    assert LedgerTransaction.objects.filter(reverses_id=paid.transaction_id).count() == 33
    assert system_total(ctx.org, AccountKind.SINK) == 10
    assert bal(ctx.primary) == 9_990
    assert reconcile() == []


def test_release_racing_a_switch_to_shared_leaves_nothing_outside_the_pool():
    ctx = make_ctx(grant=1_000)
    ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
    credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=500, actor=ctx.owner)
    hold = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300).hold

    _, outcome = race_against(
        lambda: credit_mode_switch(organization=ctx.org, mode=CreditMode.SHARED, actor=ctx.owner),
        lambda: hold_release(hold=Hold.objects.select_related("organization", "workspace").get(pk=hold.pk)),
    )
    assert len(outcome) == 1
    assert (bal(ctx.primary), bal(ctx.a)) == (1_000, 0)
    assert reconcile() == []


def test_transfer_racing_a_switch_to_shared_leaves_nothing_outside_the_pool():
    ctx = make_ctx(grant=1_000)
    ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)

    def transfer():
        mine = fresh(ctx)  # read while the switch is not committed: budget mode
        return credits_transfer(organization=mine.org, source=mine.primary, target=mine.a, amount=100, actor=mine.owner)

    _, outcome = race_against(
        lambda: credit_mode_switch(organization=ctx.org, mode=CreditMode.SHARED, actor=ctx.owner), transfer
    )
    assert len(outcome) == 1
    assert (bal(ctx.primary), bal(ctx.a)) == (1_000, 0)
    assert reconcile() == []


def test_transfer_racing_an_archive_strands_no_credits():
    ctx = make_ctx(grant=1_000)
    ctx.org = credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
    credits_transfer(organization=ctx.org, source=ctx.primary, target=ctx.a, amount=300, actor=ctx.owner)

    def transfer():
        mine = fresh(ctx)  # read while the archive is not committed: A is live
        return credits_transfer(organization=mine.org, source=mine.primary, target=mine.a, amount=100, actor=mine.owner)

    _, outcome = race_against(lambda: workspace_archive(workspace=ctx.a, actor=ctx.owner), transfer)
    assert len(outcome) == 1
    assert bal(ctx.a) == 0
    assert bal(ctx.primary) == 1_000
    assert reconcile() == []
