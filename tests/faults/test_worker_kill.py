"""A Celery worker SIGKILLed in the middle of a task loses no task and doubles no effect; two beat processes by
mistake double nothing. For each kind of task: renewals, pack expiry, credit alerts (and their emails), hold expiry,
invitation emails (roll-ups: tests/usage/test_rollup_worker.py).

Each runs against the throwaway Redis of tests/faults and the test database, with real prefork workers:

- **killed mid-task**: the task's message waits in the queue; the test takes a lock on the row the task is about to
  change (from a connection of its own), starts a worker, waits until the worker's transaction is blocked on that
  lock (the task is running, nothing of it committed), and SIGKILLs the worker's process group. The lock is
  released: the dead worker's transaction can only roll back (its COMMIT would come from the killed process). The
  message was never acknowledged (`acks_late`, `reject_on_worker_lost`), so a new worker gets it again after the
  visibility timeout (2 s here) and does the work: the effect is there exactly once. Running the task once more
  (the next beat tick, a duplicate publication) changes nothing; the ledger reconciles.
- **two beats**: two beat processes publish the same periodic task at the same tick. The project relies on its
  tasks being idempotent rather than on a beat lock (docs/operations.md). One test publishes each due task twice at
  once to a worker with two pool processes (two runs truly at the same time) and checks the effect once; another
  starts two real `celery beat` processes with the project's database scheduler, each firing every due task
  every 2 s (periodic tasks added to the same schedule table), and checks every effect once after each beat has
  sent each task several times.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from celery.result import AsyncResult
from django.conf import settings as django_settings
from django.utils.timezone import now
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from billing.alerts import organization_usages
from billing.catalog import plans_ensure_defaults
from billing.ledger import charge, credits_grant, credits_transfer, period_bounds
from billing.models import (
    AlertState,
    Hold,
    Invoice,
    InvoicePurpose,
    LedgerTransaction,
    PackLot,
    Plan,
    Subscription,
    TransactionKind,
)
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, credits_buy, invoice_mark_paid, plan_subscribe
from billing.tasks import alerts_evaluate_run, packs_expire_due_run, subscriptions_renew_due_run
from orgs.models import CreditMode, Invitation, Notification, OrganizationRole
from orgs.tasks import invitation_email_send
from qolaba.outbox.models import OutboxMessage
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from tests.test_celery_worker import _database_url
from usage.catalog import prices_ensure_defaults
from usage.models import Price
from usage.services import usage_hold_place
from usage.tasks import holds_expire_run
from workspaces.models import Workspace, WorkspaceRole
from workspaces.services import invitations_create

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {"CELERY_VISIBILITY_TIMEOUT": "2"}
RESULT_TIMEOUT = 60


@dataclass
class Scenario:
    lock: str  # SQL run in the test's own transaction to hold the row the task will change
    lock_params: list[object]
    publish: Callable[[], str]  # publishes the task; returns its id
    effects: Callable[[], int]  # how many times the effect happened
    emails_to: list[str]  # addresses that must get exactly one email of the run
    email_subject: str = ""  # ... with this in its subject (the Owner also got the organization's welcome email)
    stores_result: bool = True  # the outbox relay publishes with ignore_result: wait for the effect instead


def _emails(mail_dir: Path) -> list[email.message.Message]:
    if not mail_dir.exists():
        return []
    messages = []
    for path in sorted(mail_dir.iterdir()):
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk))
    return messages


def _row_lock(model) -> str:
    return f"SELECT 1 FROM {model._meta.db_table} WHERE id = %s FOR UPDATE"  # noqa: S608 (the model's own table)


def _publish(task) -> Callable[[], str]:
    return lambda: task.apply_async().id


def _renewal() -> Scenario:
    plans_ensure_defaults()
    owner = UserFactory()
    org = make_organization(owner=owner)
    invoice = plan_subscribe(organization=org, plan=Plan.objects.get(code="pro"), actor=owner, gateway_code="manual")
    invoice_mark_paid(invoice=invoice, actor=None)
    subscription = Subscription.objects.get(organization=org)
    end = now() - timedelta(hours=1)  # the period ended an hour ago: the renewal is due
    Subscription.objects.filter(pk=subscription.pk).update(
        current_period_start=end - timedelta(days=30), current_period_end=end
    )
    return Scenario(
        lock=_row_lock(Subscription),
        lock_params=[subscription.pk],
        publish=_publish(subscriptions_renew_due_run),
        effects=lambda: Invoice.objects.filter(subscription=subscription, purpose=InvoicePurpose.RENEWAL).count(),
        emails_to=[],
    )


def _pack_expiry() -> Scenario:
    plans_ensure_defaults()
    owner = UserFactory()
    org = make_organization(owner=owner)
    invoice = credits_buy(organization=org, plan=Plan.objects.get(code="pack-5k"), actor=owner, gateway_code="manual")
    invoice_mark_paid(invoice=invoice, actor=None)
    lot = PackLot.objects.get(organization=org)
    PackLot.objects.filter(pk=lot.pk).update(expires_at=now() - timedelta(hours=1))
    return Scenario(
        lock=_row_lock(PackLot),
        lock_params=[lot.pk],
        publish=_publish(packs_expire_due_run),
        effects=lambda: LedgerTransaction.objects.filter(organization=org, kind=TransactionKind.EXPIRY).count(),
        emails_to=[],
    )


def _hold_expiry() -> Scenario:
    prices_ensure_defaults()
    owner = UserFactory()
    org = make_organization(owner=owner)
    workspace = make_workspace(org, name="Video")
    member = make_member(org, workspaces={workspace: WorkspaceRole.MEMBER}).user
    credits_grant(organization=org, amount=1_000, actor=None)
    placed = usage_hold_place(
        workspace=workspace,
        user=member,
        price=Price.objects.get(tool="video", model="kling-1.6"),
        units=5,
        ttl=timedelta(seconds=60),
        idempotency_key="kill-hold",
    )
    hold_id = placed.event.hold_id
    Hold.objects.filter(pk=hold_id).update(expires_at=now() - timedelta(seconds=1))
    return Scenario(
        lock=_row_lock(Hold),
        lock_params=[hold_id],
        publish=_publish(holds_expire_run),
        effects=lambda: LedgerTransaction.objects.filter(organization=org, kind=TransactionKind.RELEASE).count(),
        emails_to=[],
    )


def _credit_alert() -> Scenario:
    owner = UserFactory(email="owner@alerts.test")
    org = make_organization(owner=owner, name="Alerts")
    make_member(org, role=OrganizationRole.ADMIN, user=UserFactory(email="admin@alerts.test"))
    studio = make_workspace(org, name="Studio")
    member = make_member(org, workspaces={studio: WorkspaceRole.MEMBER}).user
    primary = Workspace.objects.get(organization=org, is_primary=True)
    credits_grant(organization=org, amount=1_000, actor=owner)
    org = credit_mode_switch(organization=org, mode=CreditMode.BUDGET, actor=owner)
    credits_transfer(organization=org, source=primary, target=studio, amount=1_000, actor=owner)
    charge(organization=org, workspace=studio, user=member, amount=850)  # 85% of the budget: the 80% alert is due
    usage = next(usage for usage in organization_usages(org) if usage.used)
    period_start, _ = period_bounds(org, now())
    return Scenario(
        # The same alert row, uncommitted: the task's insert of it waits for this transaction.
        lock=f"INSERT INTO {AlertState._meta.db_table} (organization_id, subject, threshold, period_start,"  # noqa: S608
        " created_at) VALUES (%s, %s, 80, %s, now())",
        lock_params=[org.pk, usage.subject, period_start],
        publish=_publish(alerts_evaluate_run),
        effects=lambda: Notification.objects.filter(organization=org, user=owner, kind="credits.alert").count(),
        emails_to=["owner@alerts.test", "admin@alerts.test"],
        email_subject="% used",
    )


def _invitation_email() -> Scenario:
    owner = UserFactory()
    org = make_organization(owner=owner)
    workspace = make_workspace(org, name="Campaign")
    (invitation,) = invitations_create(
        organization=org,
        emails=["invitee@kill.test"],
        role=OrganizationRole.MEMBER,
        workspaces=[workspace],
        workspace_role="member",
        actor=owner,
    )  # its email task was published to the queue when this committed (no worker runs yet)
    message = OutboxMessage.objects.get(task="orgs.tasks.invitation_email_send", args__0=invitation.pk)
    publications = iter([False, True])

    def publish() -> str:
        # First the relay's publication (made on commit); then the same message again, as a duplicate delivery.
        if next(publications):
            invitation_email_send.apply_async(args=message.args, task_id=message.celery_task_id, ignore_result=True)
        return message.celery_task_id

    return Scenario(
        lock=_row_lock(Invitation),
        lock_params=[invitation.pk],
        publish=publish,
        effects=lambda: OutboxMessage.objects.filter(pk=message.pk, done_at__isnull=False).count(),
        emails_to=["invitee@kill.test"],
        email_subject="invited",
        stores_result=False,
    )


SCENARIOS = {
    "renewal": _renewal,
    "pack-expiry": _pack_expiry,
    "hold-expiry": _hold_expiry,
    "credit-alert": _credit_alert,
    "invitation-email": _invitation_email,
}


def _lock_waiters(cursor: psycopg.Cursor) -> int:
    cursor.execute(
        # Row locks are waited for as the holder's transaction id (no database in that row of pg_locks): the
        # waiter's session tells which database it is in.
        "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"
        " AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _wait(condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s:\n{log()[-4000:]}")
        time.sleep(0.05)


def _emails_to(mail_dir: Path, scenario: Scenario) -> dict[str, int]:
    counts = dict.fromkeys(scenario.emails_to, 0)
    for message in _emails(mail_dir):
        if message["To"] in counts and scenario.email_subject in message["Subject"]:
            counts[message["To"]] += 1
    return counts


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_a_worker_killed_mid_task_loses_nothing_and_doubles_nothing(kind, broker, worker_on, tmp_path):
    scenario = SCENARIOS[kind]()
    task_id = scenario.publish()
    assert scenario.effects() == 0

    with psycopg.connect(_database_url(), autocommit=False) as holder, psycopg.connect(_database_url()) as probe:
        holder.execute(scenario.lock, scenario.lock_params)
        first = worker_on(broker, extra_env=WORKER_ENV, name="first")
        with probe.cursor() as cursor:
            _wait(lambda: _lock_waiters(cursor) > 0, 60, "The task blocking on the held row", first.log)
        time.sleep(0.2)
        assert scenario.effects() == 0, "the task must be in the middle of its work, nothing committed"
        os.killpg(first.process.pid, signal.SIGKILL)  # the worker and its pool child, as a lost machine would
        first.process.wait(timeout=10)
        holder.rollback()  # the dead worker's transaction gets the row, and can only roll back
        with probe.cursor() as cursor:
            _wait(lambda: _lock_waiters(cursor) == 0, 60, "The killed task's transaction ending", first.log)
    assert scenario.effects() == 0, "nothing of the killed run may remain"
    assert f"[{task_id}] succeeded" not in first.log()

    second = worker_on(broker, extra_env=WORKER_ENV, name="second")
    if scenario.stores_result:
        AsyncResult(task_id).get(timeout=RESULT_TIMEOUT)  # the same message, redelivered: the same task id
    _wait(lambda: scenario.effects() >= 1, RESULT_TIMEOUT, "The redelivered task's effect", second.log)
    if scenario.emails_to:
        _wait(
            lambda: all(count >= 1 for count in _emails_to(second.mail_dir, scenario).values()),
            RESULT_TIMEOUT,
            "The emails",
            second.log,
        )

    # The next beat tick (or a duplicate publication) finds nothing left to do.
    again = scenario.publish()
    if scenario.stores_result:
        AsyncResult(again).get(timeout=RESULT_TIMEOUT)
    else:
        # The redelivery and the duplicate carry the same id: both have run when it has succeeded twice.
        _wait(lambda: second.log().count(f"[{again}] succeeded") >= 2, RESULT_TIMEOUT, "The duplicate", second.log)
    time.sleep(1.0)  # anything the runs enqueued (alert emails) has gone out by now
    assert scenario.effects() == 1
    assert _emails_to(second.mail_dir, scenario) == dict.fromkeys(scenario.emails_to, 1)
    assert reconcile() == []


BEAT_KINDS = ["renewal", "pack-expiry", "hold-expiry", "credit-alert"]


@pytest.mark.parametrize("kind", BEAT_KINDS)
def test_two_beats_publishing_the_same_tick_do_each_effect_once(kind, broker, worker_on):
    scenario = SCENARIOS[kind]()
    worker = worker_on(broker, concurrency=2, name="pair")
    ids = [scenario.publish(), scenario.publish()]  # what two beat processes send at the same tick
    for task_id in ids:
        AsyncResult(task_id).get(timeout=RESULT_TIMEOUT)
    time.sleep(1.0)
    assert scenario.effects() == 1, worker.log()[-4000:]
    assert _emails_to(worker.mail_dir, scenario) == dict.fromkeys(scenario.emails_to, 1)
    assert reconcile() == []


BEAT_TASKS = {
    "renewal": "billing.tasks.subscriptions_renew_due_run",
    "pack-expiry": "billing.tasks.packs_expire_due_run",
    "hold-expiry": "usage.tasks.holds_expire_run",
    # A credit alert enqueues its email from inside the worker: this once stopped the worker (qolaba.outbox._task).
    "credit-alert": "billing.tasks.alerts_evaluate_run",
}


def _start_beat(broker, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "qolaba.settings.development",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_RESULT_BACKEND": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": broker.queue,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "qolaba", "beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"),
        *("--loglevel", "INFO", "--pidfile", str(tmp_path / f"{name}.pid"), "-s", str(tmp_path / f"{name}-schedule")),
    ]
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 (fixed command line)
            command, cwd=django_settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def test_two_real_beat_processes_double_nothing(broker, worker_on, tmp_path):
    scenarios = {kind: SCENARIOS[kind]() for kind in BEAT_TASKS}
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    for kind, task in BEAT_TASKS.items():
        PeriodicTask.objects.create(name=f"faults-{kind}", task=task, interval=every_2s)
    worker = worker_on(broker, name="beats-worker")
    beats = [_start_beat(broker, tmp_path, f"beat-{n}") for n in (1, 2)]
    logs = [tmp_path / f"beat-{n}.log" for n in (1, 2)]

    def sent(log: Path, kind: str) -> int:
        return log.read_text(errors="replace").count(f"Sending due task faults-{kind} ") if log.exists() else 0

    try:
        _wait(
            lambda: all(sent(log, kind) >= 3 for log in logs for kind in BEAT_TASKS),
            90,
            "Each beat sending each task three times",
            lambda: "\n".join(log.read_text(errors="replace")[-2000:] for log in logs),
        )
    finally:
        for beat in beats:
            os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(timeout=20)
    # Every publication has run (or is running): wait until the worker has done as many as were sent.
    for kind, task in BEAT_TASKS.items():
        published = sum(sent(log, kind) for log in logs)
        _wait(
            lambda task=task, published=published: worker.log().count(f"Task {task}[") >= 2 * published,  # type: ignore[misc]
            RESULT_TIMEOUT,
            f"The worker running every {kind} publication",
            worker.log,
        )
    time.sleep(1.0)
    counts = {kind: scenario.effects() for kind, scenario in scenarios.items()}
    assert counts == dict.fromkeys(BEAT_TASKS, 1), worker.log()[-4000:]
    assert reconcile() == []
