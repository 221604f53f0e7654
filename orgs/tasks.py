from celery import Task, shared_task

from orgs.models import Invitation, Organization
from orgs.services import invitation_email, organization_welcome_email, organizations_purge_deleted
from qolaba.outbox.services import outbox_once

# Tasks that services enqueue go through the outbox (`qolaba.outbox.services.outbox_enqueue`, by task name) and are
# idempotent: `outbox_once` does their work once per outbox message, however often the message is delivered.


@shared_task(bind=True)
def organization_welcome_email_send(self: Task, organization_id: int) -> int:
    with outbox_once(self.request.id) as todo:
        organization = Organization.objects.filter(pk=organization_id).first()
        if not todo or organization is None:
            return 0
        return organization_welcome_email(organization=organization)


@shared_task(bind=True)
def invitation_email_send(self: Task, invitation_id: int) -> int:
    with outbox_once(self.request.id) as todo:
        invitation = Invitation.objects.filter(pk=invitation_id).first()
        if not todo or invitation is None:
            return 0
        return invitation_email(invitation=invitation)


@shared_task
def organizations_purge_deleted_run() -> int:
    return organizations_purge_deleted()
