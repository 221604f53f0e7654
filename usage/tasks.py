from celery import shared_task

from usage.services import holds_expire, idempotent_requests_prune
from usage.statements import statements_close_due


@shared_task
def holds_expire_run() -> int:
    return holds_expire()


@shared_task
def idempotent_requests_prune_run() -> int:
    return idempotent_requests_prune()


@shared_task
def statements_close_due_run() -> int:
    return statements_close_due()
