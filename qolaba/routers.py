"""Reads of dashboards and exports on a read replica, when one is configured (`DATABASE_REPLICA_URL`).

Explicit, never implicit: only code that asks goes to the replica —

- `with reading_from_replica():` around the reads of a page or a download: the ORM's reads in the block go to the
  `replica` alias (this module's `ReplicaRouter`);
- `replica_alias()` for raw SQL (`usage.rollup.usage_totals(using=...)`) and `.using(...)`.

Everything else stays on `default`: every write, and every read made inside a transaction on `default` (a
transaction must see its own writes and take its locks where it writes). Without a replica, both give `default`.
A replica lags behind: a page read from it shows the roll-up's "as of" time read from the replica too, so the
lag shows instead of hiding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
_reading: ContextVar[bool] = ContextVar("qolaba_reading_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def replica_alias() -> str:
    """Where a dashboard's or export's read goes now: the replica when there is one and no transaction is open on
    `default`, else `default`."""
    if replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


def replica_as_of(alias: str, at: datetime) -> datetime:
    """What a read on `alias` at `at` is exact as of: `at` on `default`, or on a replica that has replayed all it
    received; else the time of the last transaction the replica replayed, so that a lagging replica shows its lag."""
    if alias == DEFAULT_DB_ALIAS or connections[alias].vendor != "postgresql":
        return at
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS DISTINCT FROM"
            " pg_last_wal_replay_lsn() THEN pg_last_xact_replay_timestamp() END"
        )
        replayed = cursor.fetchone()[0]
    return min(at, replayed) if replayed is not None else at


@contextmanager
def reading_from_replica() -> Iterator[None]:
    """The ORM reads inside the block go to the replica (see `replica_alias` for when they do not)."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


class ReplicaRouter:
    """`DATABASE_ROUTERS`: reads inside `reading_from_replica()` to the replica; everything else to `default`."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return replica_alias() if _reading.get() else DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two connections

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema by replication
