"""The credits ledger: the only code that moves credits.

- `errors`: its refusals (nothing was written);
- `periods`: budget periods, the months monthly limits count over;
- `accounts`: opening accounts and finding the ones a movement uses;
- `posting`: the write primitive (`post_transaction`) and what every movement does around it;
- `spend`: charges, holds and refunds;
- `counters`: what was spent in a period, and the monthly spend counters that limits start from it;
- `funding`: grants, transfers and sweeps.

Callers import from the package (`from billing.ledger import charge`, or `ledger.charge(...)`): it re-exports
every public name of its modules.
"""

from billing.ledger.accounts import (
    PayingAccount,
    account_open_for_workspace,
    accounts_open_for_organization,
    available_credits,
    paying_account,
    primary_account_id,
    system_account_ids,
)
from billing.ledger.counters import (
    counters_mismatched,
    limit_counter_start,
    limit_counter_stop,
    limits_lock,
    period_spending,
    period_starts_at,
    spent_in_period,
)
from billing.ledger.errors import (
    CreditLimitReached,
    HoldNotPending,
    IdempotencyConflict,
    InvalidAmount,
    LedgerError,
    LimitName,
    ModeMismatch,
)
from billing.ledger.funding import credits_grant, credits_transfer, sweep_to_primary
from billing.ledger.periods import period_bounds
from billing.ledger.posting import (
    MAX_AMOUNT,
    CounterMove,
    Movement,
    lock_for_debit,
    post_transaction,
    request_fingerprint,
)
from billing.ledger.spend import (
    HOLD_TTL_DEFAULT,
    HOLD_TTL_MAX,
    SpendResult,
    charge,
    hold_capture,
    hold_place,
    hold_release,
    refund,
)

__all__ = [
    "HOLD_TTL_DEFAULT",
    "HOLD_TTL_MAX",
    "MAX_AMOUNT",
    "CounterMove",
    "CreditLimitReached",
    "HoldNotPending",
    "IdempotencyConflict",
    "InvalidAmount",
    "LedgerError",
    "LimitName",
    "ModeMismatch",
    "Movement",
    "PayingAccount",
    "SpendResult",
    "account_open_for_workspace",
    "accounts_open_for_organization",
    "available_credits",
    "charge",
    "counters_mismatched",
    "credits_grant",
    "credits_transfer",
    "hold_capture",
    "hold_place",
    "hold_release",
    "limit_counter_start",
    "limit_counter_stop",
    "limits_lock",
    "lock_for_debit",
    "paying_account",
    "period_bounds",
    "period_spending",
    "period_starts_at",
    "post_transaction",
    "primary_account_id",
    "refund",
    "request_fingerprint",
    "spent_in_period",
    "sweep_to_primary",
    "system_account_ids",
]
