"""The ledger's refusals: each one means nothing was written."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from qolaba.refusals import Refusal

LimitName = Literal["workspace_balance", "pool", "workspace_monthly_limit", "member_monthly_limit"]


class LedgerError(Refusal):
    """A refusal of the ledger: nothing was written."""

    code = "ledger_error"


class InvalidAmount(LedgerError):
    code = "invalid_amount"


class CreditLimitReached(LedgerError):
    """Which limit stopped a spend, what is left under it, and when it resets (None: it does not reset)."""

    code = "insufficient_credits"

    def __init__(self, *, limit: LimitName, available: int, resets_at: datetime | None) -> None:
        self.limit, self.available, self.resets_at = limit, max(available, 0), resets_at
        labels = {
            "workspace_balance": "The workspace's credit balance",
            "pool": "The organization's shared credit pool",
            "workspace_monthly_limit": "The workspace's monthly spend limit",
            "member_monthly_limit": "Your monthly spend limit in this workspace",
        }
        when = f"; it resets on {resets_at:%Y-%m-%d %H:%M %Z}" if resets_at else ""
        super().__init__(f"{labels[limit]} has {self.available} credits left{when}.")


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"


class HoldNotPending(LedgerError):
    code = "hold_not_pending"


class ModeMismatch(LedgerError):
    code = "wrong_credit_mode"
