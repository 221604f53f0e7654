"""Server-side prepared statements on Django's own PostgreSQL connection, for the few hot statements (charges).

Django binds parameters on the client, so PostgreSQL would parse and plan a long statement again on every call;
these helpers run it through psycopg with `prepare=True` (the connection's `prepare_threshold` is set high so that
nothing else is prepared).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

Row = tuple[Any, ...]
_SAVEPOINT = "qolaba_prepared"
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


class Statement:
    """A hot statement, written with psycopg's `%(name)s` placeholders and converted once, at import, to
    PostgreSQL's own `$n` ones. psycopg's `RawCursor` sends it as it is: otherwise psycopg parses the placeholders
    of a statement on every call when it is longer than its cache allows (4 KiB), as the charges are."""

    def __init__(self, sql: str) -> None:
        if "%" in _PLACEHOLDER.sub("", sql):
            raise ValueError("Write '%%' for a literal '%' and '%(name)s' for a parameter.")
        names: list[str] = []

        def native(found: re.Match[str]) -> str:
            name = found.group(1)
            if name is None:
                return "%"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _PLACEHOLDER.sub(native, sql)
        self.names = tuple(names)

    def arguments(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] for name in self.names)


def _connected() -> BaseDatabaseWrapper:
    """The thread's connection, ready: a kept connection that fails its health check (the server restarted) is
    replaced first, as Django does before its own cursors."""
    db = connections[DEFAULT_DB_ALIAS]  # resolve the thread's connection once, not per attribute
    db.close_if_health_check_failed()
    db.ensure_connection()
    return db


@contextmanager
def _connection_errors(db: BaseDatabaseWrapper) -> Iterator[None]:
    """A lost connection raised by psycopg itself (these statements bypass Django's cursor) becomes Django's
    OperationalError / InterfaceError, and the connection is marked so that Django closes it after the request:
    the outage answer (`qolaba.outage`) and the recovery are the same as for any other query. Constraint errors
    (a replayed Idempotency-Key) pass through unchanged: the callers catch psycopg's own."""
    try:
        yield
    except psycopg.OperationalError as error:
        db.errors_occurred = True
        raise OperationalError(*error.args) from error
    except psycopg.InterfaceError as error:
        db.errors_occurred = True
        raise InterfaceError(*error.args) from error


def execute_prepared(statement: Statement, params: Mapping[str, Any]) -> Row | None:
    db = _connected()
    with _connection_errors(db), psycopg.RawCursor(db.connection) as cursor:
        return cursor.execute(statement.sql, statement.arguments(params), prepare=True).fetchone()


def execute_prepared_once(
    statement: Statement, params: Mapping[str, Any], *, done: Callable[[Row | None], bool]
) -> Row | None:
    """Run one statement as if alone: in autocommit it is its own transaction; inside the caller's transaction it
    runs under a savepoint (sent in the same round trip) that is rolled back when it fails or when `done(row)`
    says it did not do its work. That also releases the row lock PostgreSQL keeps for a conditional UPDATE whose
    recheck failed, which a fallback path must not hold while it waits for other locks."""
    if not connection.in_atomic_block:
        return execute_prepared(statement, params)
    db = _connected()
    raw = db.connection
    with _connection_errors(db), psycopg.RawCursor(raw) as cursor:
        try:
            with raw.pipeline():
                cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
                cursor.execute(statement.sql, statement.arguments(params), prepare=True)
            row = cursor.fetchone()
        except psycopg.Error:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            raise
        if not done(row):
            cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    return row
