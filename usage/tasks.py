from dataclasses import asdict
from typing import Any

from celery import shared_task

from usage.services import holds_expire, idempotent_requests_prune


@shared_task
def holds_expire_run() -> int:
    return holds_expire()


@shared_task
def idempotent_requests_prune_run() -> int:
    return idempotent_requests_prune()


@shared_task
def rollup_update_run() -> dict[str, Any]:
    """Bring the usage roll-up up to date (beat, every 30 s). Idempotent: a redelivered or duplicate run finds the
    work done, or skips while another run holds the lock; a run killed midway rolled back and is simply done again.
    """
    # Imported when it runs, as each app's tasks import their services (docs/architecture.md).
    from usage.rollup import rollup_update

    return asdict(rollup_update())
