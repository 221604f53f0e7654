"""Every Celery task of the project is idempotent: a redelivery (acks_late + reject_on_worker_lost after a worker
died), a duplicate publication or a second beat process running the same schedule does its work once. Each task
has a test that runs it (or the one service it calls) twice; this file lists them, and fails when a task is added
without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import current_app

from billing.reconcile import reconcile
from billing.tasks import ledger_reconcile_run
from tests.usage.conftest import make_metered_workspace

ROOT = Path(__file__).resolve().parent.parent

RUN_TWICE = {
    # Enqueued through the outbox: done once per message (`outbox_once`).
    "orgs.tasks.organization_welcome_email_send": (
        "tests/qolaba/test_outbox.py",
        "test_the_welcome_email_task_run_twice_sends_one_email",
    ),
    "orgs.tasks.invitation_email_send": (
        "tests/qolaba/test_outbox.py",
        "test_the_invitation_email_task_run_twice_sends_one_email_whose_link_works",
    ),
    "billing.tasks.alert_emails_send": (
        "tests/qolaba/test_outbox.py",
        "test_the_alert_email_task_run_twice_sends_each_admin_one_email",
    ),
    "qolaba.outbox.tasks.outbox_relay_run": (
        "tests/qolaba/test_outbox.py",
        "test_the_relay_task_run_twice_publishes_each_message_once",
    ),
    "qolaba.outbox.tasks.outbox_prune_run": (
        "tests/qolaba/test_outbox.py",
        "test_done_messages_are_pruned_after_a_week_and_the_prune_task_run_twice_prunes_once",
    ),
    # Beat tasks: each calls one service whose second run finds nothing left to do.
    "orgs.tasks.organizations_purge_deleted_run": (
        "tests/orgs/test_profile_and_deletion.py",
        "test_purge_deletes_only_orgs_past_the_retention_window",
    ),
    "billing.tasks.subscriptions_renew_due_run": (
        "tests/billing/test_plans.py",
        "test_the_renewal_job_opens_one_invoice_per_period_and_its_payment_grants_once",
    ),
    "billing.tasks.packs_expire_due_run": (
        "tests/billing/test_plans.py",
        "test_at_expiry_the_unused_pack_credits_move_to_the_credit_bank_once",
    ),
    "billing.tasks.alerts_evaluate_run": (
        "tests/billing/test_alerts.py",
        "test_a_budget_crossing_80_percent_alerts_owners_and_admins_once",
    ),
    "billing.tasks.ledger_reconcile_run": (
        "tests/test_tasks_idempotent.py",
        "test_the_reconciliation_task_run_twice_reports_the_same_and_writes_nothing",
    ),
    "usage.tasks.holds_expire_run": (
        "tests/usage/test_services.py",
        "test_holds_expire_releases_expired_holds_and_leaves_the_others",
    ),
    "usage.tasks.idempotent_requests_prune_run": (
        "tests/usage/test_services.py",
        "test_idempotent_requests_prune_forgets_old_answers",
    ),
    "usage.tasks.rollup_update_run": (
        "tests/usage/test_rollups.py",
        "test_a_second_run_changes_nothing",
    ),
    "usage.tasks.statements_close_due_run": (
        "tests/usage/test_statements.py",
        "test_statements_close_due_runs_in_month_order_and_a_second_run_closes_nothing",
    ),
    "usage.studio.tasks.chat_turn_run_task": (
        "tests/usage/studio/test_chat.py",
        "test_a_run_delivered_twice_charges_once",
    ),
    "usage.studio.tasks.chat_turns_abandon_run": (
        "tests/usage/studio/test_chat.py",
        "test_a_lost_run_is_released_by_the_sweeper_and_closed_never_charged",
    ),
    "usage.studio.tasks.studio_job_run_task": (
        "tests/usage/studio/test_media.py",
        "test_a_run_delivered_twice_runs_once",
    ),
    "usage.studio.tasks.studio_jobs_abandon_run": (
        "tests/usage/studio/test_media.py",
        "test_a_lost_job_is_released_by_the_sweeper_and_closed_never_charged",
    ),
    "usage.tasks.usage_export_run": (
        "tests/usage/test_exports.py",
        "test_the_task_is_idempotent_a_redelivery_writes_no_second_file",
    ),
    "usage.tasks.usage_exports_expire_run": (
        "tests/usage/test_exports.py",
        "test_after_the_window_the_download_is_refused_and_the_cleanup_deletes_the_file",
    ),
    "usage.tasks.runway_alerts_evaluate_run": (
        "tests/usage/test_forecast.py",
        "test_the_runway_alert_fires_once_per_period_in_the_app_and_by_email",
    ),
    "usage.tasks.partitions_maintain_run": (
        "tests/usage/test_partitions.py",
        "test_the_task_creates_months_ahead_once",
    ),
}


def test_every_task_has_a_test_that_runs_it_twice():
    current_app.loader.import_default_modules()
    apps = {"orgs", "workspaces", "billing", "usage", "qolaba"}
    ours = {name for name in current_app.tasks if name.split(".")[0] in apps}
    assert ours == set(RUN_TWICE)
    for path, name in RUN_TWICE.values():
        assert f"def {name}(" in (ROOT / path).read_text(), (path, name)


@pytest.mark.django_db
def test_the_reconciliation_task_run_twice_reports_the_same_and_writes_nothing():
    make_metered_workspace()
    assert [ledger_reconcile_run.apply().get() for _ in range(2)] == [0, 0]
    assert reconcile() == []
