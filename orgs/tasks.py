from celery import shared_task

from orgs.models import Invitation, InvitationStatus, Organization

# The services enqueue these tasks, so each task imports its service when it runs: importing `orgs.services` here
# at import time would be a cycle (orgs.services -> orgs.tasks -> orgs.services).


@shared_task
def organization_welcome_email_send(organization_id: int) -> int:
    from orgs.services import organization_welcome_email

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    return organization_welcome_email(organization=organization)


@shared_task
def invitation_email_send(invitation_id: int, token: str) -> int:
    from orgs.services import invitation_email

    invitation = Invitation.objects.select_related("organization", "invited_by").filter(pk=invitation_id).first()
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        return 0
    return invitation_email(invitation=invitation, token=token)


@shared_task
def organizations_purge_deleted_run() -> int:
    from orgs.services import organizations_purge_deleted

    return organizations_purge_deleted()
