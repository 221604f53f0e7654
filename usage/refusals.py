"""The metering refusals (`MeteringError` and its kinds): raised by the usage selectors and services, answered by
the metering API with their `code` (see `usage.api.errors`)."""

from __future__ import annotations

from qolaba.refusals import Refusal


class MeteringError(Refusal):
    """A refusal of the metering services: nothing was written."""

    code = "metering_error"


class UnknownPrice(MeteringError):
    code = "unknown_price"


class HoldNotFound(MeteringError):
    code = "not_found"


class IdempotencyKeyReused(MeteringError):
    code = "idempotency_conflict"


class UnitsAboveHeld(MeteringError):
    code = "invalid_request"
