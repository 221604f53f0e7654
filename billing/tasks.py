import logging

from celery import shared_task

from billing.alerts import alerts_evaluate_all
from billing.reconcile import reconcile
from billing.services import packs_expire_due, subscriptions_renew_due

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
