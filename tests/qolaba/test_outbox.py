"""The outbox: a task a service enqueues is a row of its transaction (none for a rolled-back one), relayed once,
and every task it carries does its work once per message however often the message is delivered."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils.timezone import now

from billing.tasks import alert_emails_send
from orgs.models import Invitation, OrganizationRole
from orgs.selectors import invitation_for_token
from orgs.tasks import invitation_email_send, organization_welcome_email_send
from qolaba.lifecycle import organization_create
from qolaba.outbox.models import OutboxMessage
from qolaba.outbox.services import outbox_enqueue, outbox_prune, outbox_relay
from qolaba.outbox.tasks import outbox_relay_run
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


def test_done_messages_are_pruned_after_a_week():
    make_organization(name="Harbor")
    outbox_relay()
    assert outbox_prune() == 0
    OutboxMessage.objects.update(done_at=now() - timedelta(days=8))
    assert outbox_prune() == 1
