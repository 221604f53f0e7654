"""What monthly limits count (billing reads it from the ledger, `billing.ledger.period_spending`: billing may not
import usage) is the month's usage as the live usage read gives it (`usage.rollup.usage_totals`, captured plus
held credits), per member and per workspace — charges, holds pending, captured and released, last month's usage
left out, in the organization's time zone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils.timezone import now

from billing.ledger import period_bounds, period_spending, period_starts_at
from billing.reconcile import reconcile
from billing.services import workspace_limit_set
from tests.factories import UserFactory, make_member
from tests.usage.conftest import make_metered_workspace
from usage.rollup import usage_totals
from usage.selectors import price_find
from usage.services import usage_charge, usage_hold_capture, usage_hold_place, usage_hold_release
from workspaces.models import WorkspaceRole


@pytest.mark.django_db
def test_the_months_spend_is_the_months_usage():
    metered = make_metered_workspace(credits=100_000)
    organization, workspace = metered.organization, metered.workspace
    organization.timezone = "Pacific/Auckland"  # far from UTC: the month's edges are not UTC's
    organization.save(update_fields=["timezone"])
    other = make_member(organization, user=UserFactory(), workspaces={workspace: WorkspaceRole.MEMBER}).user
    flux, kling = price_find(tool="image", model="flux-pro"), price_find(tool="video", model="kling-1.6")
    with time_machine.travel(now() - timedelta(days=40)):
        usage_charge(workspace=workspace, user=metered.member, price=flux, units=9, idempotency_key="last-month")
    usage_charge(workspace=workspace, user=metered.member, price=flux, units=3, idempotency_key="c1")
    usage_charge(workspace=workspace, user=other, price=flux, units=1, idempotency_key="c2")
    pending = usage_hold_place(
        workspace=workspace, user=metered.member, price=kling, units=5, ttl=timedelta(hours=1), idempotency_key="h1"
    ).event
    captured = usage_hold_place(
        workspace=workspace, user=other, price=kling, units=6, ttl=timedelta(hours=1), idempotency_key="h2"
    ).event
    released = usage_hold_place(
        workspace=workspace, user=metered.member, price=kling, units=4, ttl=timedelta(hours=1), idempotency_key="h3"
    ).event
    usage_hold_capture(event=captured, workspace=workspace, units=2)
    usage_hold_release(event=released)
    assert pending.status == "held"

    period_start, resets_at = period_bounds(organization)
    usage = usage_totals(
        organization=organization,
        start=period_starts_at(organization, period_start),
        end=resets_at,
        workspace_ids=[workspace.pk],
        group_by=["user"],
    )
    from_usage = {row.user_id: row.credits + row.held_credits for row in usage.rows}
    spent = period_spending(organization=organization, workspace_ids=[workspace.pk])
    assert from_usage == {metered.member.pk: 36 + 100, other.pk: 12 + 40}
    assert {user_id: spent[(workspace.pk, user_id)] for user_id in from_usage} == from_usage
    assert spent[(workspace.pk, None)] == sum(from_usage.values())
    # A limit set now starts from that figure.
    workspace_limit_set(workspace=workspace, user=metered.member, monthly_limit=1_000, actor=metered.owner)
    workspace_limit_set(workspace=workspace, user=None, monthly_limit=1_000, actor=metered.owner)
    assert reconcile() == []
