"""Benchmark: the usage roll-up over 1M events, against a bare INSERT … SELECT … GROUP BY … ON CONFLICT in the same run.

The script makes its own database (dropped and recreated each run), migrates it and generates N usage events
(default 1,000,000) straight in SQL (`generate_series`, in transactions of 50,000 rows: 5 organizations, 3 workspaces
and 4 members each, 5 tools x 2 models, over 7 days; 94 % captured, 5 % held, 1 % released), then VACUUM ANALYZE.
Then, for each round (default 2, alternating which goes first):

(a) baseline: one `INSERT INTO <a copy of usage_rollup> SELECT … GROUP BY … ON CONFLICT DO UPDATE` of the same events
    into the same 15-minute buckets, with the same aggregates (the copy has the same indexes and constraints);
(b) the product: `usage.rollup.rollup_update()` from an empty roll-up (lock, state, bound, the run, commit).

It prints both times and the ratio (b)/(a) (target ≤ 1.2), checks that (b) wrote exactly what (a) wrote, then inserts
10,000 more events (in 10 transactions) and times the incremental run (target < 1 s); then 10,000 more with 1,000
late captures of older holds (their buckets are recomputed) and times that run too; and checks the roll-up against the
events again. The last line is one JSON object with every figure.

    .venv/bin/python bench/rollup.py [--events 1000000] [--rounds 2] [--pg postgresql://postgres@127.0.0.1:5432]
        [--keep-db]

Exit status 0 when the roll-up is exact; the targets are reported, not enforced. The load average is printed:
other work on the same two cores skews both timings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_charges import database_drop, database_recreate, database_url, django_setup  # noqa: E402

DATABASE = "qolaba_bench_rollup"
BATCH = 50_000
ORGANIZATIONS, WORKSPACES, MEMBERS, TOOLS, MODELS = 5, 3, 4, ("chat", "image", "video", "speech", "music"), 2
DAYS = 7
START = "2026-03-01 00:00:00+00"
TARGET_RATIO, TARGET_INCREMENTAL_S = 1.2, 1.0
COPY = "bench_rollup_baseline"


def _columns() -> dict[str, str]:
    from usage.models import UsageEvent

    return {field.name: field.column for field in UsageEvent._meta.concrete_fields}


def generate(
    cursor: Any, first: int, count: int, *, days: float, start: str, organizations: list[int] | None = None
) -> None:
    """`count` usage events numbered from `first`, at random over `days` from `start`, in one statement; of
    organizations 1 to ORGANIZATIONS, or of the `organizations` given (ids of real ones, ORGANIZATIONS of them)."""
    from usage.models import UsageEvent, UsageStatus

    c = _columns()
    tools = ", ".join(f"'{tool}'" for tool in TOOLS)
    cursor.execute(
        f"""
        INSERT INTO {UsageEvent._meta.db_table} ({c["organization"]}, {c["workspace"]}, {c["user"]}, {c["tool"]},
            {c["model"]}, {c["units"]}, {c["credits"]}, {c["status"]}, {c["idempotency_key"]},
            {c["ledger_transaction"]}, {c["created_at"]}, {c["settled_at"]})
        SELECT COALESCE((%(organizations)s::bigint[])[o], o), o * 100 + w, o * 1000 + u, (ARRAY[{tools}])[t + 1],
            'model-' || m, units,
            CASE WHEN s < 0.01 THEN 0 ELSE units * (t + 2) END,
            CASE WHEN s < 0.01 THEN '{UsageStatus.RELEASED}' WHEN s < 0.06 THEN '{UsageStatus.HELD}'
                 ELSE '{UsageStatus.CAPTURED}' END,
            'bench-' || g, g, at, at
        FROM (
            SELECT g, 1 + floor(random() * %(orgs)s)::int AS o, floor(random() * %(workspaces)s)::int AS w,
                floor(random() * %(members)s)::int AS u, floor(random() * %(tools)s)::int AS t,
                floor(random() * %(models)s)::int AS m, 1 + floor(random() * 4)::int AS units, random() AS s,
                %(start)s::timestamptz + random() * (%(days)s * INTERVAL '1 day') AS at
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
        ) generated
        """,
        {
            "orgs": ORGANIZATIONS,
            "organizations": organizations,
            "workspaces": WORKSPACES,
            "members": MEMBERS,
            "tools": len(TOOLS),
            "models": MODELS,
            "start": start,
            "days": days,
            "first": first,
            "last": first + count - 1,
        },
    )


def baseline_sql() -> str:
    """The bare aggregate upsert of every event into COPY, with the roll-up's own aggregates and bucket."""
    from usage.rollup.sql import EVENT_KEY_COLUMNS, EVENTS, MEASURES, ROLLUP_COLUMNS, Dialect, counted, measures

    key = ", ".join(f"e.{column}" for column in EVENT_KEY_COLUMNS)
    bucket = Dialect("postgresql").bucket("e.created_at")
    conflict = ", ".join(ROLLUP_COLUMNS[:6])
    add = ", ".join(f"{m} = {COPY}.{m} + excluded.{m}" for m in MEASURES)
    return f"""
        INSERT INTO {COPY} ({", ".join(ROLLUP_COLUMNS)})
        SELECT {key}, {bucket}, {", ".join(measures("e"))}
        FROM {EVENTS} e WHERE {counted("e")}
        GROUP BY {key}, {bucket}
        ON CONFLICT ({conflict}) DO UPDATE SET {add}
    """


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def wait_for_bound() -> None:
    """A run's bound is the oldest running transaction of the whole server: wait until it is past every event."""
    from django.db import connection

    from usage.rollup.sql import run_statements

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(changed_seq), 0) FROM usage_usageevent")
        (newest,) = cursor.fetchone()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cursor.execute(run_statements("postgresql").bound)
            if cursor.fetchone()[0] > newest:
                return
            time.sleep(0.05)
    sys.exit("The roll-up's bound did not pass the events within 60 s: a long transaction is open on the server.")


def differences() -> int:
    """Rows that differ between the roll-up and the baseline copy (both ways)."""
    from django.db import connection

    from usage.rollup.sql import ROLLUP, ROLLUP_COLUMNS

    columns = ", ".join(ROLLUP_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM (SELECT {columns} FROM {ROLLUP} EXCEPT SELECT {columns} FROM {COPY}) a)"
            f" + (SELECT COUNT(*) FROM (SELECT {columns} FROM {COPY} EXCEPT SELECT {columns} FROM {ROLLUP}) b)"
        )
        return int(cursor.fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--incremental", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep-db", action="store_true", help="Leave the benchmark database behind.")
    args = parser.parse_args()

    os.environ.setdefault("LOG_LEVEL", "WARNING")
    database_recreate(args.pg, DATABASE)
    django_setup(database_url(args.pg, DATABASE), os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"))
    from django.core.management import call_command
    from django.db import connection, transaction

    from usage.models import UsageEvent, UsageRollup, UsageStatus
    from usage.rollup import rollup_update
    from usage.rollup.sql import DAILY, ROLLUP, ZONE

    call_command("migrate", verbosity=0)
    # Real organizations in five zones: the run also cuts their local days (the daily level), as in production.
    from orgs.models import User
    from qolaba.lifecycle import organization_create

    owner = User.objects.create_user("owner@bench-rollup.example.com", None)
    zones = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Europe/Berlin")[:ORGANIZATIONS]
    organizations = [
        organization_create(name=f"Rolled {n}", owner=owner, timezone=zone).pk for n, zone in enumerate(zones)
    ]
    print(f"load average {os.getloadavg()[0]:.2f}; generating {args.events:,} events ...", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        started = time.perf_counter()
        for first in range(1, args.events + 1, BATCH):
            with transaction.atomic():
                generate(
                    cursor,
                    first,
                    min(BATCH, args.events - first + 1),
                    days=DAYS,
                    start=START,
                    organizations=organizations,
                )
        generated_s = time.perf_counter() - started
        cursor.execute("VACUUM ANALYZE usage_usageevent")
        cursor.execute(f"CREATE TABLE {COPY} (LIKE {ROLLUP} INCLUDING ALL)")
    print(f"generated in {generated_s:.1f} s", flush=True)

    def reset() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {ROLLUP}, {COPY}, {DAILY}, {ZONE}")
            cursor.execute("DELETE FROM usage_rollup_state")
            cursor.execute(f"VACUUM ANALYZE {ROLLUP}")
            cursor.execute(f"VACUUM ANALYZE {COPY}")

    def baseline() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(baseline_sql())

    wait_for_bound()
    rounds = []
    print(f"{'round':>5} {'baseline s':>11} {'roll-up s':>10} {'ratio':>6}")
    for n in range(args.rounds):
        reset()
        if n % 2 == 0:
            base_s = timed(baseline)
            roll_s = timed(rollup_update)
        else:
            roll_s = timed(rollup_update)
            base_s = timed(baseline)
        exact = differences() == 0
        rounds.append({"baseline_s": round(base_s, 3), "rollup_s": round(roll_s, 3), "ratio": round(roll_s / base_s, 3),
                       "exact": exact})  # fmt: skip
        print(f"{n + 1:>5} {base_s:>11.3f} {roll_s:>10.3f} {roll_s / base_s:>6.3f}{'' if exact else '  NOT EXACT'}")
    rows = UsageRollup.objects.count()
    best_ratio, worst_ratio = min(r["ratio"] for r in rounds), max(r["ratio"] for r in rounds)

    def more_events(count: int, *, first: int) -> None:
        with connection.cursor() as cursor:
            for batch in range(10):  # 10 transactions, as concurrent charges would commit them
                with transaction.atomic():
                    # The newest day: on top of the buckets the roll-up already holds, and new ones.
                    generate(
                        cursor,
                        first + batch * (count // 10),
                        count // 10,
                        days=1.0,
                        start="2026-03-07 00:00+00",
                        organizations=organizations,
                    )

    incremental: list[dict[str, Any]] = []
    total = args.events
    for label, captures in (("10k new events", 0), ("10k new events + 1,000 late captures", 1_000)):
        more_events(args.incremental, first=total + 1)
        total += args.incremental
        if captures:
            held = list(
                UsageEvent.objects.filter(status=UsageStatus.HELD)
                .order_by("pk")
                .values_list("pk", flat=True)[:captures]
            )
            with connection.cursor() as cursor:  # a capture of fewer credits, as usage_hold_capture writes it
                cursor.execute(
                    "UPDATE usage_usageevent SET status = %s, credits = credits / 2 WHERE id = ANY(%s)",
                    [UsageStatus.CAPTURED, held],
                )
        wait_for_bound()
        started = time.perf_counter()
        run = rollup_update()
        seconds = time.perf_counter() - started
        incremental.append(
            {"what": label, "seconds": round(seconds, 3), "recomputed": run.recomputed, "added": run.added}
        )
        print(f"incremental run, {label}: {seconds:.3f} s ({run.recomputed} buckets recomputed, {run.added} upserted)")

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {COPY}")
    baseline()
    exact_after = differences() == 0
    print(f"roll-up rows: {UsageRollup.objects.count():,}; exact after the incremental runs: {exact_after}")

    report = {
        "events": args.events,
        "rollup_rows": rows,
        "generated_s": round(generated_s, 1),
        "rounds": rounds,
        "best_ratio": best_ratio,
        "worst_ratio": worst_ratio,
        "target_ratio": TARGET_RATIO,
        "ratio_met": worst_ratio <= TARGET_RATIO,  # in every round
        "incremental": incremental,
        "target_incremental_s": TARGET_INCREMENTAL_S,
        "incremental_met": incremental[0]["seconds"] < TARGET_INCREMENTAL_S,
        "exact": all(r["exact"] for r in rounds) and exact_after,
        "load_average": round(os.getloadavg()[0], 2),
    }
    if not args.keep_db:
        from django.db import connections

        connections.close_all()
        database_drop(args.pg, DATABASE)
    print(json.dumps(report, sort_keys=True))
    sys.exit(0 if report["exact"] else 1)


if __name__ == "__main__":
    main()
