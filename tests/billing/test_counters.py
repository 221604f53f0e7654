"""Monthly limits count the whole month: a limit set (raised, lowered, re-added) in the middle of a month starts
from what was already spent in it, race-free against charges running at the same time; releases and refunds give
back to the counter of the spend's own period; the Limits page and reconcile_ledger agree with the ledger.

Concurrency tests use committed data and one database connection per thread (tests/concurrency.py)."""

from __future__ import annotations

import random
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.utils.timezone import now

from billing.ledger import (
    CreditLimitReached,
    charge,
    credits_grant,
    hold_capture,
    hold_place,
    hold_release,
    period_bounds,
    period_spending,
    primary_account_id,
    refund,
    spent_in_period,
)
from billing.models import AccountStripe, LedgerTransaction, SpendCounter
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, workspace_limit_set
from orgs.models import CreditMode, Organization, User
from tests.concurrency import race_against, run_together
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole


def make_ctx(*, grant: int = 100_000) -> SimpleNamespace:
    owner = UserFactory()
    org = make_organization(owner=owner)
    a = make_workspace(org, name="A")
    member = make_member(org, workspaces={a: WorkspaceRole.MEMBER}).user
    credits_grant(organization=org, amount=grant, actor=owner)
    spread_evenly(primary_account_id(org))
    return SimpleNamespace(org=org, owner=owner, member=member, a=a)


def spread_evenly(account_id: int) -> None:
    """The grant landed on this connection's stripe: spread it over every stripe (the total unchanged), so that
    other connections' one-statement charges find credits on their own stripe and do not fall back for that."""
    stripes = list(AccountStripe.objects.filter(account_id=account_id).order_by("stripe"))
    total = sum(stripe.balance for stripe in stripes)
    for stripe in stripes:
        stripe.balance = total // len(stripes) + (1 if stripe.stripe < total % len(stripes) else 0)
    AccountStripe.objects.bulk_update(stripes, ["balance"])


def counter(ctx: SimpleNamespace, user: User | None) -> int | None:
    period_start, _ = period_bounds(ctx.org)
    return (
        SpendCounter.objects.filter(workspace=ctx.a, user=user, period_start=period_start)
        .values_list("spent", flat=True)
        .first()
    )


def spent(ctx: SimpleNamespace, user: User | None) -> int:
    return period_spending(organization=ctx.org, workspace_ids=[ctx.a.pk]).get((ctx.a.pk, user and user.pk), 0)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["member", "workspace"])
def test_a_limit_set_after_spending_counts_what_was_spent_this_month(who):
    ctx = make_ctx()
    user = ctx.member if who == "member" else None
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_800)
    workspace_limit_set(workspace=ctx.a, user=user, monthly_limit=2_000, actor=ctx.owner)
    assert counter(ctx, user) == 1_800
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=201)
    limit_name = "member_monthly_limit" if who == "member" else "workspace_monthly_limit"
    assert (refused.value.limit, refused.value.available) == (limit_name, 200)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    assert counter(ctx, user) == spent(ctx, user) == 2_000
    assert reconcile() == []


@pytest.mark.django_db
def test_last_months_spending_does_not_count_and_holds_count_what_they_keep():
    ctx = make_ctx()
    period_start, _ = period_bounds(ctx.org)
    with time_machine.travel(now() - timedelta(days=40)):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=5_000)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
    pending = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300).hold
    captured = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold
    released = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=500).hold
    hold_capture(hold=captured, amount=250)
    hold_release(hold=released)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=10_000, actor=ctx.owner)
    # 100 charged, 300 still held, 250 captured; the released hold and last month's charge count nothing.
    assert counter(ctx, ctx.member) == 650
    hold_release(hold=pending)
    assert counter(ctx, ctx.member) == spent(ctx, ctx.member) == 350
    # The one-query read the Overview makes says the same.
    assert spent_in_period(organization=ctx.org, workspace=ctx.a, user_id=ctx.member.pk) == 350
    assert spent_in_period(organization=ctx.org, workspace=ctx.a) == spent(ctx, None) == 350
    assert SpendCounter.objects.filter(workspace=ctx.a).exclude(period_start=period_start).count() == 0
    assert reconcile() == []


@pytest.mark.django_db
def test_raise_lower_remove_and_re_add_keep_the_whole_month():
    ctx = make_ctx()
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=700)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=1_000, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=200)
    assert counter(ctx, ctx.member) == 900
    # Lowered below what was spent: nothing more this month.
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=800, actor=ctx.owner)
    assert counter(ctx, ctx.member) == 900
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1)
    assert refused.value.available == 0
    # Raised: only the difference is left.
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=1_500, actor=ctx.owner)
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=601)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=600)
    # Removed: spending goes on uncounted (the one-statement charge); re-added: the whole month counts again.
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=None, actor=ctx.owner)
    assert counter(ctx, ctx.member) is None
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=300)
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=2_000, actor=ctx.owner)
    assert counter(ctx, ctx.member) == spent(ctx, ctx.member) == 1_800
    with pytest.raises(CreditLimitReached) as refused:
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=201)
    assert refused.value.available == 200
    assert reconcile() == []


@pytest.mark.django_db
def test_refunds_and_releases_give_back_to_the_counter_of_the_spends_own_period():
    ctx = make_ctx()
    charged = charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=600)
    held = hold_place(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=400).hold
    # Set after both: its counter counted them, so giving back reaches it (the spends did not move it).
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=1_000, actor=ctx.owner)
    assert counter(ctx, ctx.member) == 1_000
    refund(original=LedgerTransaction.objects.get(pk=charged.transaction_id), amount=250, actor=ctx.owner, reason="x")
    hold_release(hold=held)
    assert counter(ctx, ctx.member) == spent(ctx, ctx.member) == 350
    # A refund now of last month's charge leaves this month's counter alone.
    with time_machine.travel(now() - timedelta(days=40)):
        old = charge(organization=ctx.org, workspace=ctx.a, user=ctx.owner, amount=900)
    workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=5_000, actor=ctx.owner)
    assert counter(ctx, None) == 350
    refund(original=LedgerTransaction.objects.get(pk=old.transaction_id), amount=900, actor=ctx.owner, reason="x")
    assert counter(ctx, None) == spent(ctx, None) == 350
    assert spent_in_period(organization=ctx.org, workspace=ctx.a) == 350
    assert reconcile() == []


@pytest.mark.django_db
def test_the_workspace_limit_counts_in_budget_mode_too_and_binds_back_in_shared_mode():
    ctx = make_ctx()
    workspace_limit_set(workspace=ctx.a, user=None, monthly_limit=1_000, actor=ctx.owner)
    credit_mode_switch(organization=ctx.org, mode=CreditMode.BUDGET, actor=ctx.owner)
    ctx.org.refresh_from_db()
    primary = Workspace.objects.get(organization=ctx.org, is_primary=True)
    from billing.ledger import credits_transfer

    credits_transfer(organization=ctx.org, source=primary, target=ctx.a, amount=5_000, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1_200)  # not bound in budget mode
    assert counter(ctx, None) == spent(ctx, None) == 1_200
    assert reconcile() == []
    credit_mode_switch(organization=ctx.org, mode=CreditMode.SHARED, actor=ctx.owner)
    ctx.org.refresh_from_db()
    with pytest.raises(CreditLimitReached):
        charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=1)


@pytest.mark.django_db
def test_reconcile_reports_a_counter_that_differs_from_the_ledger():
    ctx = make_ctx()
    workspace_limit_set(workspace=ctx.a, user=ctx.member, monthly_limit=1_000, actor=ctx.owner)
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=100)
    assert reconcile() == []
    SpendCounter.objects.filter(workspace=ctx.a, user=ctx.member).update(spent=0)
    assert reconcile() == [f"workspace {ctx.a.pk}, member {ctx.member.pk}: spend counter 0 != 100 spent this period"]


# --- concurrency -------------------------------------------------------------------------------------------------


def _fresh(ctx: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(
        org=Organization.objects.get(pk=ctx.org.pk),
        owner=User.objects.get(pk=ctx.owner.pk),
        member=User.objects.get(pk=ctx.member.pk),
        a=Workspace.objects.get(pk=ctx.a.pk),
    )


@pytest.mark.django_db(transaction=True)
def test_a_one_statement_charge_that_read_no_limit_is_counted_when_the_limit_commits_first():
    """Deterministic: the limit is set and left uncommitted; a charge starts (its snapshot sees no limit) and waits
    on the stripe the limit fenced; the limit commits; the charge must not slip through uncounted."""
    ctx = make_ctx()
    charge(organization=ctx.org, workspace=ctx.a, user=ctx.member, amount=500)

    def set_limit():
        mine = _fresh(ctx)
        return workspace_limit_set(workspace=mine.a, user=mine.member, monthly_limit=10_000, actor=mine.owner)

    def charge_now():
        mine = _fresh(ctx)
        return charge(organization=mine.org, workspace=mine.a, user=mine.member, amount=70)

    _, outcome = race_against(set_limit, charge_now)
    assert not isinstance(outcome[0], Exception), repr(outcome[0])
    # It waited for the limit (on the fenced stripe), then took the general path, which counted it.
    assert LedgerTransaction.objects.get(pk=outcome[0].transaction_id).counted == [[ctx.a.pk, ctx.member.pk]]
    assert spent(ctx, ctx.member) == 570
    assert counter(ctx, ctx.member) == 570
    assert reconcile() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["member", "workspace"])
def test_charges_running_while_the_limit_is_set_are_all_counted(who):
    ctx = make_ctx(grant=1_000_000)
    other = make_member(ctx.org, workspaces={ctx.a: WorkspaceRole.MEMBER}).user
    user = ctx.member if who == "member" else None

    def spender(seed: int, user_pk: int):
        def work(start):
            mine = _fresh(ctx)
            person = User.objects.get(pk=user_pk)
            rng = random.Random(seed)
            start()
            for _ in range(25):
                amount = rng.randint(1, 40)
                if rng.random() < 0.3:
                    hold = hold_place(organization=mine.org, workspace=mine.a, user=person, amount=amount).hold
                    if rng.random() < 0.5:
                        hold_capture(hold=hold, amount=rng.randint(0, amount))
                    else:
                        hold_release(hold=hold)
                else:
                    charge(organization=mine.org, workspace=mine.a, user=person, amount=amount)

        return work

    def limit_setter(start):
        mine = _fresh(ctx)
        limit_user = mine.member if who == "member" else None
        start()
        for limit in (1_000_000, 900_000, None, 800_000, 1_000_000):
            workspace_limit_set(workspace=mine.a, user=limit_user, monthly_limit=limit, actor=mine.owner)

    workers = [spender(seed, ctx.member.pk) for seed in range(4)] + [spender(9, other.pk), limit_setter]
    run_together(workers)
    assert spent(ctx, user) > 0
    assert counter(ctx, user) == spent(ctx, user)
    assert reconcile() == []
