from celery import shared_task

from qolaba.outbox.services import outbox_prune, outbox_relay


@shared_task
def outbox_relay_run() -> int:
    """Publish the outbox messages that the after-commit relay could not (beat, every few seconds)."""
    return outbox_relay()


@shared_task
def outbox_prune_run() -> int:
    return outbox_prune()
