import logging

from celery import Task, shared_task
from django.core.mail import send_mass_mail

from billing.alerts import alerts_evaluate_all
from billing.reconcile import reconcile
from billing.services import packs_expire_due, subscriptions_renew_due
from qolaba.outbox.services import outbox_once

logger = logging.getLogger(__name__)


@shared_task
def subscriptions_renew_due_run() -> int:
    return subscriptions_renew_due()


@shared_task
def packs_expire_due_run() -> int:
    return packs_expire_due()


@shared_task
def ledger_reconcile_run() -> int:
    problems = reconcile()
    for problem in problems:
        logger.error("ledger reconciliation: %s", problem)
    return len(problems)


@shared_task
def alerts_evaluate_run() -> int:
    return alerts_evaluate_all()


@shared_task(bind=True)
def alert_emails_send(self: Task, subject: str, body: str, recipients: list[str]) -> int:
    """The email of one credit alert, one message per Owner/Admin (enqueued through the outbox; sent once)."""
    with outbox_once(self.request.id) as todo:
        if not todo:
            return 0
        return send_mass_mail([(subject, body, None, [email]) for email in recipients], fail_silently=False)
