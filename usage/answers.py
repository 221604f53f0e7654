"""The answer to a charge or a capture (`ChargeOut`), built here only: by Python on the general path and for the
one-statement charge's reply, and by PostgreSQL inside that statement for the copy it stores under the
Idempotency-Key. It is also the OpenAPI document's schema of those answers.

A fresh answer is sent in the field order below; a replay sends the stored jsonb as PostgreSQL returns it (jsonb
orders keys by length), so the order of a replayed answer never depended on this class and does not now.
"""

from __future__ import annotations

from typing import Any, Literal

from psycopg import sql
from pydantic import BaseModel

from usage.models import UsageStatus


class ChargeOut(BaseModel):
    # A plain pydantic model, not a django-ninja Schema: this one is built on the hot path, and a Schema's
    # validator (for reading Django objects) triples the cost of building it.
    id: int
    credits: int
    available_credits: int
    status: Literal[UsageStatus.CAPTURED]

    @classmethod
    def body(cls, *, event_id: int, credits: int, available: int) -> dict[str, Any]:
        """The answer's body: the usage event, its credits, and what the paying balance has left after it."""
        answer = cls(id=event_id, credits=credits, available_credits=available, status=UsageStatus.CAPTURED)
        return answer.model_dump(mode="json")

    @classmethod
    def jsonb(cls, **expressions: str) -> str:
        """The same body as a PostgreSQL expression, from an SQL expression for each field but the status."""
        values = {**expressions, "status": sql.Literal(UsageStatus.CAPTURED.value).as_string()}
        if set(values) != set(cls.model_fields):
            raise TypeError(f"Give an SQL expression for each of {sorted(cls.model_fields)}, not {sorted(values)}.")
        pairs = ", ".join(f"{sql.Literal(name).as_string()}, {values[name]}" for name in cls.model_fields)
        return f"jsonb_build_object({pairs})"
