"""The outbox: a task a service enqueues is a row of its transaction (none for a rolled-back one), relayed once,
and every task it carries does its work once per message however often the message is delivered."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils.timezone import now

from billing.tasks import alert_emails_send
from orgs.models import Invitation, OrganizationRole
from orgs.selectors import invitation_for_token
from orgs.tasks import invitation_email_send, organization_welcome_email_send
from qolaba.lifecycle import organization_create
from qolaba.outbox.models import OutboxMessage
from qolaba.outbox.services import outbox_enqueue, outbox_prune, outbox_relay
from qolaba.outbox.tasks import outbox_prune_run, outbox_relay_run
from tests.factories import UserFactory, make_organization
from tests.orgs.test_invitations import token_from
from workspaces.models import Workspace
from workspaces.services import invitations_create

pytestmark = pytest.mark.django_db


def _invite(org, email="nina@example.com"):
    return invitations_create(
        organization=org,
        emails=[email],
        role=OrganizationRole.MEMBER,
        workspaces=[Workspace.objects.get(organization=org, is_primary=True)],
        workspace_role="member",
        actor=org.created_by,
    )[0]


def test_the_message_is_written_in_the_services_transaction_and_relayed_after_commit(
    django_capture_on_commit_callbacks, mailoutbox
):
    owner = UserFactory(email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        org = organization_create(name="Bluepeak", owner=owner)
    message = OutboxMessage.objects.get()
    assert (message.task, message.args) == ("orgs.tasks.organization_welcome_email_send", [org.pk])
    assert message.sent_at is None
    assert mailoutbox == []

    for callback in callbacks:
        callback()
    message.refresh_from_db()
    assert message.sent_at is not None
    assert message.done_at is not None
    assert message.attempts == 1
    assert [m.subject for m in mailoutbox] == ["[Qolaba] Bluepeak is ready"]
    assert outbox_relay() == 0  # done: never sent again
    assert len(mailoutbox) == 1


def test_a_rolled_back_transaction_leaves_no_message(mailoutbox):
    def enqueue_then_fail():
        with transaction.atomic():
            outbox_enqueue(task="orgs.tasks.organization_welcome_email_send", args=[1])
            raise RuntimeError

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    assert not OutboxMessage.objects.exists()


def test_what_the_after_commit_relay_missed_the_beat_relay_sends_once(mailoutbox):
    org = make_organization(name="Harbor")  # created without running the after-commit relay (test transaction)
    assert OutboxMessage.objects.pending().count() == 1
    assert outbox_relay_run.apply().get() == 1
    assert outbox_relay_run.apply().get() == 0
    assert [m.to for m in mailoutbox] == [[org.created_by.email]]


def test_a_message_the_broker_lost_is_published_again_and_its_work_done_once(settings, mailoutbox):
    org = make_organization(name="Harbor")
    message = OutboxMessage.objects.get()
    # Published long ago, never done: as if Redis had lost it.
    OutboxMessage.objects.filter(pk=message.pk).update(
        sent_at=now() - timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS + 1), attempts=1
    )
    assert outbox_relay() == 1
    message.refresh_from_db()
    assert (message.attempts, message.done_at is not None) == (2, True)
    assert [m.to for m in mailoutbox] == [[org.created_by.email]]


def test_the_welcome_email_task_run_twice_sends_one_email(mailoutbox):
    org = make_organization(name="Harbor")
    message = OutboxMessage.objects.get(task="orgs.tasks.organization_welcome_email_send")
    for _ in range(2):  # a redelivery (acks_late) carries the same task id
        organization_welcome_email_send.apply(args=message.args, task_id=message.celery_task_id)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [org.created_by.email]


def test_the_invitation_email_task_run_twice_sends_one_email_whose_link_works(mailoutbox):
    org = make_organization(name="Harbor")
    invitation = _invite(org)
    message = OutboxMessage.objects.get(task="orgs.tasks.invitation_email_send")
    assert message.args == [invitation.pk]  # the token is never stored, not even in the outbox
    results = [invitation_email_send.apply(args=message.args, task_id=message.celery_task_id).get() for _ in range(2)]
    assert results == [1, 0]
    (email,) = mailoutbox
    assert email.to == ["nina@example.com"]
    assert invitation_for_token(token_from(email)) == invitation


def test_an_invitation_revoked_before_its_email_leaves_is_not_sent(mailoutbox):
    org = make_organization(name="Harbor")
    invitation = _invite(org)
    Invitation.objects.filter(pk=invitation.pk).update(status="revoked")
    assert outbox_relay() == 2  # the welcome email and the invitation's message: published, the invitation skipped
    assert [m.to for m in mailoutbox] == [[org.created_by.email]]


def test_the_alert_email_task_run_twice_sends_each_admin_one_email(mailoutbox):
    message = outbox_enqueue(
        task="billing.tasks.alert_emails_send",
        args=["[Qolaba] The pool is used up", "1,000 of 1,000 credits used.", ["a@x.test", "b@x.test"]],
    )
    results = [alert_emails_send.apply(args=message.args, task_id=message.celery_task_id).get() for _ in range(2)]
    assert results == [2, 0]
    assert sorted(m.to[0] for m in mailoutbox) == ["a@x.test", "b@x.test"]


def test_the_relay_task_run_twice_publishes_each_message_once(mailoutbox):
    make_organization(name="Harbor")
    make_organization(name="Lumen")
    assert [outbox_relay_run.apply().get() for _ in range(2)] == [2, 0]
    assert len(mailoutbox) == 2


def test_a_failing_task_stays_pending_with_its_error_and_is_retried(mailoutbox, monkeypatch):
    org = make_organization(name="Harbor")

    def refuse(**kwargs):
        raise ValueError("the mail server said no")

    monkeypatch.setattr("orgs.tasks.organization_welcome_email", refuse)
    assert outbox_relay() == 0
    message = OutboxMessage.objects.get()
    assert (message.sent_at, message.done_at, message.attempts) == (None, None, 1)
    assert "the mail server said no" in message.last_error
    monkeypatch.undo()
    assert outbox_relay() == 1
    assert [m.to for m in mailoutbox] == [[org.created_by.email]]


def test_done_messages_are_pruned_after_a_week_and_the_prune_task_run_twice_prunes_once():
    make_organization(name="Harbor")
    outbox_relay()
    assert outbox_prune() == 0
    OutboxMessage.objects.update(done_at=now() - timedelta(days=8))
    assert [outbox_prune_run.apply().get() for _ in range(2)] == [1, 0]


def test_a_fresh_process_finds_every_task_the_services_name():
    """The services name their tasks instead of importing them: a web process that never imported a tasks module
    (the demo runs tasks in-process) must still find each of them, or the message would go nowhere."""
    names = ["orgs.tasks.invitation_email_send", "orgs.tasks.organization_welcome_email_send"]
    names += ["billing.tasks.alert_emails_send"]
    script = (
        "import django, sys; django.setup(); from qolaba.outbox.services import _task; "
        "assert not {'orgs.tasks', 'billing.tasks'} & set(sys.modules), 'imported'; "
        f"print([_task(n).name for n in {names!r}])"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "qolaba.settings.development", "DATABASE_URL": "sqlite://"}
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", script], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == repr(names)


def test_a_message_for_an_unknown_task_is_kept_with_its_error_and_not_published():
    message = outbox_enqueue(task="orgs.tasks.no_such_task", args=[])
    assert outbox_relay() == 0
    message.refresh_from_db()
    assert (message.sent_at, message.attempts) == (None, 1)
    assert "No task is called 'orgs.tasks.no_such_task'" in message.last_error


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_never_publish_a_message_twice(monkeypatch):
    """The beat relay and an after-commit relay (or two beat processes) running together: the second skips the rows
    the first has claimed (FOR UPDATE SKIP LOCKED) instead of publishing them again."""
    message = OutboxMessage.objects.create(task="orgs.tasks.organization_welcome_email_send", args=[0])
    publishing, release = threading.Event(), threading.Event()
    published: list[str | None] = []

    class SlowTask:
        def apply_async(self, **options):
            published.append(options["task_id"])
            publishing.set()
            assert release.wait(10)

    monkeypatch.setattr("qolaba.outbox.services._task", lambda name: SlowTask())
    results: list[int] = []

    def first_relay():
        try:
            results.append(outbox_relay())
        finally:
            connection.close()

    thread = threading.Thread(target=first_relay)
    thread.start()
    assert publishing.wait(10)
    assert outbox_relay() == 0  # the row is claimed by the first relay
    release.set()
    thread.join(10)
    assert results == [1]
    assert published == [message.celery_task_id]
    message.refresh_from_db()
    assert message.sent_at is not None
    assert outbox_relay() == 0  # published, not yet done by a worker: not again before the redelivery delay
