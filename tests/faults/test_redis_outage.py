"""Redis (the broker) stopped: sign-in, pages and the metering API keep working, login throttling keeps refusing,
and an invitation made meanwhile succeeds; its email goes out once Redis is back and the relay runs — once, even
when the message is delivered twice."""

from __future__ import annotations

import time

import pytest
from celery import current_app
from django.urls import reverse

from orgs.models import Invitation, OrganizationRole
from qolaba.outbox.models import OutboxMessage
from qolaba.outbox.services import outbox_relay
from tests.factories import PASSWORD, UserFactory, make_member, make_organization
from tests.orgs.test_accounts import logged_in_user_id, login
from tests.test_access_matrix import MATRIX, _url
from tests.test_access_matrix import world as world  # a fixture: every kind of object each page shows
from tests.test_celery_worker import _read_emails
from tests.usage.conftest import make_metered_workspace
from workspaces.models import Workspace

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_sign_in_pages_and_the_api_work_and_login_throttling_holds_with_redis_stopped(broker, client):
    broker.stop()
    assert not broker.is_up()

    metered = make_metered_workspace()
    member = metered.member
    assert login(client, member.email).status_code == 302
    assert logged_in_user_id(client) == member.pk
    org = metered.organization
    workspace = metered.workspace
    for url in (
        reverse("home"),
        f"/o/{org.slug}/",
        f"/o/{org.slug}/w/{workspace.slug}/",
        reverse("account_email"),
    ):
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
    response = client.post(
        "/api/v1/charges",
        {"member": member.email, "tool": "chat", "model": "gpt-4o", "units": 3},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="redis-down-1",
        **metered.auth(),
    )
    assert response.status_code == 201, response.content

    # Throttling still protects: after 5 wrong passwords for an address, even the right one is refused.
    client.logout()
    target = UserFactory(email="target@example.com")
    for _ in range(5):
        assert login(client, target.email, password="wrong-password").status_code == 200
    response = login(client, target.email, password=PASSWORD)
    assert "Too many failed login attempts" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_every_page_answers_with_redis_stopped(broker, client, world):
    broker.stop()
    client.force_login(world["personas"]["owner"])
    pages = [name for name, route in MATRIX.items() if "GET" in route.methods and route.level != "public"]
    failures = []
    for name in pages:
        response = client.get(_url(name, world["own"]))
        if response.status_code not in (200, 302):
            failures.append(f"{name}: {response.status_code}")
    assert not failures
    assert len(pages) > 30


def test_an_invitation_made_while_redis_is_down_is_emailed_once_when_it_is_back(broker, worker_on, client):
    org = make_organization(name="Northwind")
    admin = make_member(org, role=OrganizationRole.ADMIN).user
    primary = Workspace.objects.get(organization=org, is_primary=True)
    OutboxMessage.objects.all().delete()  # the welcome email of the organization: not what this test follows
    broker.stop()

    client.force_login(admin)
    started = time.monotonic()
    response = client.post(
        reverse("orgs:invitations_create", args=[org.slug]),
        {
            "emails": "nina@example.com",
            "role": OrganizationRole.MEMBER,
            "workspaces": [primary.pk],
            "workspace_role": "member",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert time.monotonic() - started < 5  # the failed relay after commit fails fast
    invitation = Invitation.objects.get(email="nina@example.com")
    message = OutboxMessage.objects.get(task="orgs.tasks.invitation_email_send")
    assert message.args == [invitation.pk]
    assert message.sent_at is None
    assert "Error" in message.last_error  # the broker was unreachable

    # A retry by the user is refused as a duplicate, as before; nothing is lost meanwhile.
    assert outbox_relay() == 0

    broker.start()
    worker = worker_on(broker)
    assert outbox_relay() == 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and OutboxMessage.objects.get(pk=message.pk).done_at is None:
        time.sleep(0.1)  # the email is sent, then the task's transaction marks the message done
    emails = _read_emails(worker.mail_dir)
    assert [e["To"] for e in emails] == ["nina@example.com"], worker.log()[-3000:]
    message.refresh_from_db()
    assert message.done_at is not None

    # The same message delivered again (a redelivery after a crash, or a second relay): no second email.
    current_app.signature(message.task, args=message.args).apply_async(task_id=message.celery_task_id)
    assert worker.wait_for_log(f"[{message.celery_task_id}] succeeded in", timeout=30)
    deadline = time.monotonic() + 15
    while worker.log().count(f"[{message.celery_task_id}] succeeded") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.log().count(f"[{message.celery_task_id}] succeeded") == 2, worker.log()[-3000:]
    assert len(_read_emails(worker.mail_dir)) == 1
    assert outbox_relay() == 0
