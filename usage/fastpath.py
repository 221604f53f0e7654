"""The metering charge as one prepared PostgreSQL statement: the hot path of `POST /api/v1/charges`.

It does, in one statement and one round trip (so in one transaction, in autocommit): check the API key (live, its
workspace and organization live), find the member's `use_workspace` permission row and the active price, debit
the paying balance (the ledger's conditional stripe debit), write the ledger transaction and its movement, the
usage event, the history item, and the stored answer under the Idempotency-Key.

It only ever *succeeds*; everything else falls back to the general path
(`usage.api.endpoints._charge_create_general`), which answers every refusal properly: an unknown or revoked key, a
member or price that is not there, monthly limits, a short stripe, and a reused Idempotency-Key (the answer's unique
index rejects the whole statement, so nothing is written, and the general path replays the stored answer or refuses
a different request).

The statement writes the same rows `usage.services.usage_charge` writes through the ORM: the tests compare every
column of every row both paths write, and `reconcile_ledger` checks the ledger either way. Its INSERTs take their
table and column names from the models and give each column an expression by field name (`_insert`); a test fails
when a model gains a column that one of them does not write. Enum values come from the models' TextChoices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection, models
from psycopg import sql

from billing.models import AccountKind, LedgerEntry, LedgerTransaction, TransactionKind
from orgs.models import CreditMode
from qolaba.db import Statement, execute_prepared_once
from usage.answers import ChargeOut
from usage.models import IdempotentRequest, UsageEvent, UsageStatus
from usage.services import generation_memo
from workspaces.models import HistoryItem
from workspaces.roles import SPEND_PERMISSION


def _literal(value: str) -> str:
    return sql.Literal(str(value)).as_string()


def _insert(model: type[models.Model], values: dict[str, str]) -> str:
    """`INSERT INTO` the model's table the SQL expression given for each of its fields (by name), as a SELECT."""
    columns = {field.name: field.column for field in model._meta.concrete_fields}
    names = ", ".join(columns[name] for name in values)
    return f"INSERT INTO {model._meta.db_table} ({names})\n    SELECT {', '.join(values.values())}"


_TRANSACTION = _insert(
    LedgerTransaction,
    {
        "organization": "pay.organization_id",
        "kind": _literal(TransactionKind.CHARGE),
        "amount": "pay.amount",
        "actor": "pay.user_id",
        "workspace": "pay.workspace_id",
        "idempotency_key": "''",  # the request's key is the usage event's and the stored answer's
        "request_hash": "%(fingerprint)s",
        "memo": "%(memo)s",
        "created_at": "%(created)s",
        "period_start": "pay.period",
        "reverses": "NULL",
        "counted": "'[]'::jsonb",
    },
)
_MOVEMENT = _insert(
    LedgerEntry,
    {"transaction": "txn.id", "from_account": "pay.paying", "to_account": "pay.sink", "amount": "pay.amount"},
)
_EVENT = _insert(
    UsageEvent,
    {
        "organization": "pay.organization_id",
        "workspace": "pay.workspace_id",
        "user": "pay.user_id",
        "tool": "pay.tool",
        "model": "pay.model",
        "units": "%(units)s",
        "credits": "pay.amount",
        "status": _literal(UsageStatus.CAPTURED),
        "idempotency_key": "%(key)s",
        "ledger_transaction": "txn.id",
        "hold": "NULL",
        "history_draft": "NULL",
        "created_at": "%(created)s",
        "settled_at": "%(created)s",
    },
)
_HISTORY = _insert(
    HistoryItem,
    {
        "organization": "pay.organization_id",
        "workspace": "pay.workspace_id",
        "author": "pay.user_id",
        "tool": "pay.tool",
        "model": "pay.model",
        "prompt": "%(prompt)s",
        "output_text": "%(output_text)s",
        "metadata": "%(metadata)s::jsonb",
        "media": "''",
        "media_content_type": "''",
        "credits": "pay.amount",
        "usage_event_id": "event.id",
        "created_at": "%(created)s",
        "deleted_at": "NULL",
        "deleted_by": "NULL",
    },
)
_ANSWER = _insert(
    IdempotentRequest,
    {
        "workspace": "pay.workspace_id",
        "key": "%(key)s",
        "request_hash": "%(fingerprint)s",
        "status_code": "201",
        "response": ChargeOut.jsonb(id="event.id", credits="pay.amount", available_credits="available.credits"),
        "created_at": "%(created)s",
    },
)

_CHARGE = Statement(f"""
WITH k AS (
    SELECT ak.id AS key_id, ak.last_used_at, w.id AS workspace_id, w.organization_id, o.credit_mode, o.timezone
    FROM workspaces_apikey ak
    JOIN workspaces_workspace w ON w.id = ak.workspace_id
    JOIN orgs_organization o ON o.id = w.organization_id
    WHERE ak.prefix = %(prefix)s::text AND ak.secret_hash = %(secret_hash)s::text AND ak.revoked_at IS NULL
      AND w.archived_at IS NULL AND o.deleted_at IS NULL
), m AS (
    SELECT p.user_id FROM k
    JOIN workspaces_workspaceuserobjectpermission p ON p.content_object_id = k.workspace_id
    JOIN auth_permission ap ON ap.id = p.permission_id AND ap.codename = '{SPEND_PERMISSION}'
    JOIN orgs_user u ON u.id = p.user_id AND u.email = %(email)s::text AND u.is_active
    LIMIT 1
), pr AS (
    -- Parameters compared as text: a prepared statement would type them as the columns (varchar(n)) and fail on
    -- longer input instead of finding nothing.
    SELECT tool, model, credits_per_unit::bigint * %(units)s AS amount FROM usage_price
    WHERE tool = %(tool)s::text AND model = %(model)s::text AND is_active
), ctx AS (
    SELECT k.workspace_id, k.organization_id, m.user_id, pr.tool, pr.model, pr.amount,
        CASE WHEN k.credit_mode = {_literal(CreditMode.SHARED)}
            THEN (SELECT a.id FROM billing_account a JOIN workspaces_workspace pw ON pw.id = a.workspace_id
                  WHERE pw.organization_id = k.organization_id AND pw.is_primary)
            ELSE (SELECT a.id FROM billing_account a WHERE a.workspace_id = k.workspace_id)
        END AS paying,
        (SELECT a.id FROM billing_account a
         WHERE a.organization_id = k.organization_id AND a.kind = {_literal(AccountKind.SINK)}) AS sink,
        EXISTS (SELECT 1 FROM billing_workspacelimit l WHERE l.workspace_id = k.workspace_id
                AND (l.user_id IS NULL OR l.user_id = m.user_id)) AS limited,
        date_trunc('month', %(created)s::timestamptz AT TIME ZONE k.timezone)::date AS period
    FROM k, m, pr
), pay AS (
    SELECT ctx.*, a.stripes, (SELECT MIN(z.fence) FROM billing_accountstripe z WHERE z.account_id = a.id) AS fence
    FROM ctx JOIN billing_account a ON a.id = ctx.paying
), debit AS (
    -- The first stripe that can pay and that no other transaction holds, starting from this connection's own:
    -- the statement never waits for a row (when every such stripe is busy, the general path waits its turn).
    -- The fence is rechecked on the row as it is when locked: a monthly limit set since this statement's snapshot
    -- raised it, and the general path (which sees the limit) decides (billing.ledger.counters).
    UPDATE billing_accountstripe s SET balance = s.balance - pay.amount
    FROM pay
    WHERE s.id = (
        SELECT f.id FROM billing_accountstripe f
        WHERE f.account_id = pay.paying AND f.balance >= pay.amount AND NOT pay.limited AND f.fence = pay.fence
        ORDER BY (f.stripe + pay.stripes - pg_backend_pid() %% pay.stripes) %% pay.stripes
        LIMIT 1 FOR UPDATE SKIP LOCKED
    ) AND s.balance >= pay.amount AND s.fence = pay.fence
    RETURNING s.account_id
), txn AS (
    {_TRANSACTION}
    FROM pay, debit
    RETURNING id
), movement AS (
    {_MOVEMENT}
    FROM txn, pay
), event AS (
    {_EVENT}
    FROM txn, pay
    RETURNING id
), history AS (
    {_HISTORY}
    FROM event, pay
), available AS (
    -- The statement's snapshot does not see its own debit.
    SELECT (SELECT SUM(balance) FROM billing_accountstripe WHERE account_id = pay.paying) - pay.amount AS credits
    FROM pay
), answer AS (
    {_ANSWER}
    FROM event, pay, available
)
SELECT k.key_id, k.last_used_at, event.id, pay.amount, available.credits
FROM (SELECT 1) one
LEFT JOIN k ON TRUE LEFT JOIN pay ON TRUE LEFT JOIN event ON TRUE LEFT JOIN available ON TRUE
""")  # noqa: S608 (what is formatted in is code's, never a request's: those are the %(name)s parameters)


@dataclass(frozen=True)
class FastCharge:
    key_id: int
    key_last_used_at: datetime | None
    event_id: int
    credits: int
    available: int


def charge_fast(
    *,
    prefix: str,
    secret_hash: str,
    email: str,
    tool: str,
    model: str,
    units: int,
    idempotency_key: str,
    fingerprint: str,
    prompt: str,
    output_text: str,
    metadata: dict[str, Any],
    created: datetime,
) -> FastCharge | None:
    """The charge done and answered, or None: then the general path decides (and answers any refusal)."""
    if connection.vendor != "postgresql":
        return None
    params = {
        "prefix": prefix,
        "secret_hash": secret_hash,
        "email": email,
        "tool": tool,
        "model": model,
        "units": units,
        "key": idempotency_key,
        "fingerprint": fingerprint,
        "memo": generation_memo(tool, model, units),
        "prompt": prompt,
        "output_text": output_text,
        "metadata": json.dumps(metadata),
        "created": created,
    }
    try:
        row = execute_prepared_once(_CHARGE, params, done=lambda row: row is not None and row[2] is not None)
    except psycopg.errors.UniqueViolation:
        return None  # the Idempotency-Key was used before: the general path replays or refuses
    if row is None or row[2] is None:
        return None
    key_id, last_used_at, event_id, credits, available = row
    return FastCharge(key_id, last_used_at, event_id, int(credits), int(available))
