"""The metering API's request and response bodies (pydantic, through django-ninja): they validate what comes in and
are the OpenAPI document's schemas; the Idempotency-Key header and the error answers every write can give; the usage
reports' answers and query parameters (`usage_parameters`, for the document: `usage.api.reports` checks them).

The answer to a charge or a capture, `ChargeOut`, is in `usage.answers`: the one-statement charge builds it too."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Header, Schema
from pydantic import ConfigDict, Strict

from billing.ledger import HOLD_TTL_MAX
from usage.api.reports import BUCKETS, DEFAULT_BUCKET, FIRST_DATE, LAST_DATE, MAX_DAYS, MAX_HOURLY_DAYS
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


# --- usage reports ---------------------------------------------------------------------------------------------


class MemberRefOut(Schema):
    id: int = Field(..., description="The member's user id: stable, the key to group on.")
    email: str | None = Field(..., description="Their sign-in email now (null if the account no longer exists).")


class WorkspaceRefOut(Schema):
    id: int
    name: str | None


class UsageFigures(Schema):
    generations: int = Field(..., description="Captured generations.")
    units: int = Field(..., description="Their units.")
    credits: int = Field(..., description="Their captured credits.")


class UsageResultOut(UsageFigures):
    tool: str | None = Field(None, description="Only with group_by=tool.")
    model: str | None = Field(None, description="Only with group_by=model.")
    member: MemberRefOut | None = Field(None, description="Only with group_by=member.")


class OrganizationUsageResultOut(UsageResultOut):
    workspace: WorkspaceRefOut | None = Field(None, description="Only with group_by=workspace.")


class _UsageBucket(Schema):
    start: datetime = Field(..., description="Local time of the organization, with its UTC offset.")
    end: datetime = Field(..., description="Excluded: the next bucket's start.")


class UsageBucketOut(_UsageBucket):
    results: list[UsageResultOut] = Field(..., description="One per group with usage; empty when nothing was used.")


class OrganizationUsageBucketOut(_UsageBucket):
    results: list[OrganizationUsageResultOut] = Field(
        ..., description="One per group with usage; empty when nothing was used."
    )


class UsageTotalsOut(UsageFigures):
    chatbot_credits: int = Field(..., description="Credits of the Chatbot tools (chat).")
    image_speech_credits: int = Field(
        ..., description="Credits of the Image & Speech tools (image, video, speech, music)."
    )


class _UsageReport(Schema):
    timezone: str = Field(..., description="The organization's time zone: dates and buckets are its days.")
    start: date
    end: date = Field(..., description="Included.")
    bucket: Literal["hour", "day", "month", "none"]
    as_of: datetime = Field(..., description="When the answer was computed: every charge committed before is in it.")
    totals: UsageTotalsOut


class UsageOut(_UsageReport):
    workspace: int = Field(..., description="The key's workspace (its id).")
    buckets: list[UsageBucketOut]


class OrganizationUsageOut(_UsageReport):
    organization: str = Field(..., description="The key's organization (its slug).")
    buckets: list[OrganizationUsageBucketOut]


def usage_parameters(groups: tuple[str, ...]) -> dict[str, Any]:
    """The report's query parameters, for the OpenAPI document (the view reads them itself, to name every problem)."""
    return {
        "parameters": [
            {
                "in": "query",
                "name": "start",
                "required": True,
                "description": f"First day (included), in the organization's time zone; {FIRST_DATE} to {LAST_DATE}.",
                "schema": {"type": "string", "format": "date"},
            },
            {
                "in": "query",
                "name": "end",
                "required": True,
                "description": f"Last day (included), on or after start; at most {MAX_DAYS} days in all "
                f"({MAX_HOURLY_DAYS} with bucket=hour).",
                "schema": {"type": "string", "format": "date"},
            },
            {
                "in": "query",
                "name": "bucket",
                "required": False,
                "description": "The periods of the answer, in the organization's time zone; none: one bucket.",
                "schema": {"type": "string", "enum": list(BUCKETS), "default": DEFAULT_BUCKET},
            },
            {
                "in": "query",
                "name": "group_by",
                "required": False,
                "description": f"Comma-separated, any of {', '.join(groups)} (each at most once); absent: no groups.",
                "schema": {"type": "string"},
                "example": ",".join(groups[-2:]),
            },
        ]
    }
