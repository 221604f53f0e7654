"""The usage roll-up: usage events summed in 15-minute UTC buckets per organization, workspace, member, tool and
model (`usage.models.UsageRollup`), brought up to date every 30 s by a Celery task, and the live read that adds the
few events newer than its watermark, so every total is exact to the last committed charge.

- `run`: `rollup_update` (the incremental run) and `rollup_rebuild` (from the events) — the writes;
- `read`: `usage_totals` and `rollup_state` — the reads;
- `sql`: the SQL of both, for PostgreSQL and SQLite, with names from the models.

docs/architecture.md ("Usage roll-ups") says why the watermark is a transaction number.
"""

from usage.rollup.read import (
    GROUPS,
    PERIODS,
    Group,
    Period,
    RollupState,
    UsageTotal,
    UsageTotals,
    period_start,
    periods_fold,
    rollup_state,
    usage_totals,
)
from usage.rollup.run import RollupRun, rollup_rebuild, rollup_update

__all__ = [
    "GROUPS",
    "PERIODS",
    "Group",
    "Period",
    "RollupRun",
    "RollupState",
    "UsageTotal",
    "UsageTotals",
    "period_start",
    "periods_fold",
    "rollup_rebuild",
    "rollup_state",
    "rollup_update",
    "usage_totals",
]
