from celery import shared_task

from orgs.models import Organization
from orgs.services import organization_welcome_email


@shared_task
def organization_welcome_email_send(organization_id: int) -> int:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return 0
    return organization_welcome_email(organization=organization)
