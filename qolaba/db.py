"""Server-side prepared statements on Django's own PostgreSQL connection, for the few hot statements (charges).

Django binds parameters on the client, so PostgreSQL would parse and plan a long statement again on every call;
these helpers run it through psycopg with `prepare=True` (the connection's `prepare_threshold` is set high so that
nothing else is prepared).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections

Row = tuple[Any, ...]
_SAVEPOINT = "qolaba_prepared"


def execute_prepared(sql: str, params: dict[str, Any]) -> Row | None:
    db = connections[DEFAULT_DB_ALIAS]  # resolve the thread's connection once, not per attribute
    db.ensure_connection()
    with psycopg.Cursor(db.connection) as cursor:
        return cursor.execute(sql, params, prepare=True).fetchone()


def execute_prepared_once(sql: str, params: dict[str, Any], *, done: Callable[[Row | None], bool]) -> Row | None:
    """Run one statement as if alone: in autocommit it is its own transaction; inside the caller's transaction it
    runs under a savepoint (sent in the same round trip) that is rolled back when it fails or when `done(row)`
    says it did not do its work. That also releases the row lock PostgreSQL keeps for a conditional UPDATE whose
    recheck failed, which a fallback path must not hold while it waits for other locks."""
    if not connection.in_atomic_block:
        return execute_prepared(sql, params)
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    raw = db.connection
    with psycopg.Cursor(raw) as cursor:
        try:
            with raw.pipeline():
                cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
                cursor.execute(sql, params, prepare=True)
            row = cursor.fetchone()
        except psycopg.Error:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            raise
        if not done(row):
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    return row
