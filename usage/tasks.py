from dataclasses import asdict
from typing import Any

from celery import shared_task

from usage.partitions import partitions_maintain
from usage.rollup import rollup_update
from usage.services import holds_expire, idempotent_requests_prune
from usage.statements import statements_close_due


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
    return asdict(rollup_update())


@shared_task
def statements_close_due_run() -> int:
    return statements_close_due()


@shared_task
def partitions_maintain_run() -> dict[str, Any]:
    """Create the usage event partitions ahead and apply retention (beat, daily). Idempotent."""
    done = partitions_maintain()
    return {"created": done.created, "dropped": done.retention.dropped, "kept": done.retention.kept}
