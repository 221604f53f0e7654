from dataclasses import asdict
from typing import Any

from celery import shared_task

from usage.exports import usage_export_build, usage_exports_expire
from usage.forecast import runway_alerts_evaluate_all
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


@shared_task(acks_late=True, reject_on_worker_lost=True)
def usage_export_run(export_id: int) -> str:
    """Write a usage export's file. Idempotent: a redelivery of a finished export does nothing (no second file);
    one that finds it half done starts it again and only the latest run reports progress and saves."""
    export = usage_export_build(export_id=export_id)
    return export.status if export is not None else "missing"


@shared_task
def usage_exports_expire_run() -> int:
    return usage_exports_expire()


@shared_task
def runway_alerts_evaluate_run() -> int:
    """Alert Owners and Admins whose pool or workspace budget is forecast to run out soon (beat, every 15 minutes)."""
    return runway_alerts_evaluate_all()


@shared_task
def partitions_maintain_run() -> dict[str, Any]:
    """Create the usage event partitions ahead and apply retention (beat, daily). Idempotent."""
    done = partitions_maintain()
    return {"created": done.created, "dropped": done.retention.dropped, "kept": done.retention.kept}
