"""The metering API's request and response bodies (pydantic, through django-ninja): they validate what comes in and
are the OpenAPI document's schemas; the Idempotency-Key header and the error answers every write can give.

The answer to a charge or a capture, `ChargeOut`, is in `usage.answers`: the one-statement charge builds it too."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Field, Header, Schema
from pydantic import ConfigDict, Strict

from billing.ledger import HOLD_TTL_MAX
from usage.models import MAX_UNITS, UsageStatus
from usage.services import HistoryContent
from workspaces.services import HISTORY_OUTPUT_MAX, HISTORY_PROMPT_MAX

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"

StrictInt = Annotated[int, Strict()]


class Strict_(Schema):
    model_config = ConfigDict(extra="forbid")


class HealthOut(Schema):
    status: Literal["ok"]


class OrganizationOut(Schema):
    slug: str
    name: str


class WorkspaceOut(Schema):
    id: int
    name: str
    organization: OrganizationOut
    credit_mode: Literal["shared", "budget"]
    available_credits: int


class PriceOut(Schema):
    tool: str
    model: str
    unit: str
    credits_per_unit: int


class PricesOut(Schema):
    prices: list[PriceOut]


class HistoryIn(Strict_):
    prompt: str = Field("", max_length=HISTORY_PROMPT_MAX)
    output_text: str = Field("", max_length=HISTORY_OUTPUT_MAX)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def content(self) -> HistoryContent:
        return HistoryContent(prompt=self.prompt, output_text=self.output_text, metadata=self.metadata)


class ChargeIn(Strict_):
    member: str = Field(..., min_length=3, max_length=254, description="Email of the member who ran it.")
    tool: str = Field(..., min_length=1, max_length=50)
    model: str = Field(..., min_length=1, max_length=100)
    units: StrictInt = Field(..., ge=1, le=MAX_UNITS)
    history: HistoryIn | None = None


class HoldIn(ChargeIn):
    ttl_seconds: StrictInt = Field(
        900, ge=1, le=int(HOLD_TTL_MAX.total_seconds()), description="Released automatically after this."
    )


class CaptureIn(Strict_):
    units: StrictInt | None = Field(None, ge=1, le=MAX_UNITS, description="At most the held units; default all.")
    history: HistoryIn | None = None


class HoldOut(Schema):
    id: int
    credits: int
    expires_at: str
    status: Literal[UsageStatus.HELD]


class ReleaseOut(Schema):
    id: int
    status: Literal["released"]


class ErrorDetail(Schema):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 402, 403, 404, 409, 413), ErrorOut)
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN, max_length=255)]
