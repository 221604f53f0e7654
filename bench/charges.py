"""Benchmark: one-shot charges against one shared pool, compared with a bare hot-row UPDATE in the same run.

(a) baseline: N processes run `UPDATE bench_hot_row SET balance = balance - 1 WHERE id = 1 AND balance >= 1`
    in autocommit on their own connections;
(b) the product: N processes call billing.ledger.charge() (1 credit, with an idempotency key, as the API does)
    against one organization's shared pool.

For N in 8, 16, 64 it prints charges/s, p50/p95/p99 latency and the ratio (b)/(a), then checks that nothing was
overspent: an exhaustion round lets N processes race for a pool that allows exactly K charges, and the ledger
invariants are verified. The last line is one JSON object with every figure.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qolaba_bench .venv/bin/python bench/charges.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/qolaba_bench")
os.environ["DJANGO_SETTINGS_MODULE"] = "qolaba.settings.test"

import django  # noqa: E402
import psycopg  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from billing import ledger  # noqa: E402
from billing.models import Account, AccountKind, account_balance  # noqa: E402
from billing.reconcile import reconcile_organization  # noqa: E402
from orgs.models import Organization, User  # noqa: E402
from qolaba.lifecycle import organization_create  # noqa: E402
from workspaces.models import Workspace  # noqa: E402

CLIENT_COUNTS = (8, 16, 64)


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"


def ensure_database() -> None:
    db = settings.DATABASES["default"]
    admin_dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return ordered[index]


# --- workers ---------------------------------------------------------------------------------------------------


def baseline_worker(barrier, deadline_holder, results) -> None:
    latencies = []
    with psycopg.connect(_dsn(), autocommit=True) as conn:
        barrier.wait()
        deadline = deadline_holder.value
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.execute("UPDATE bench_hot_row SET balance = balance - 1 WHERE id = 1 AND balance >= 1")
            latencies.append(time.perf_counter() - started)
    results.put(latencies)


def charge_worker(barrier, deadline_holder, results, org_id, ws_id, user_id, stop_when_refused) -> None:
    connections.close_all()
    organization = Organization.objects.get(pk=org_id)
    workspace = Workspace.objects.get(pk=ws_id)
    user = User.objects.get(pk=user_id)
    latencies, refused = [], 0
    prefix = uuid.uuid4().hex
    barrier.wait()
    deadline = deadline_holder.value
    n = 0
    while time.monotonic() < deadline:
        n += 1
        started = time.perf_counter()
        try:
            ledger.charge(
                organization=organization, workspace=workspace, user=user, amount=1, idempotency_key=f"{prefix}-{n}"
            )
        except ledger.CreditLimitReached:
            refused += 1
            if stop_when_refused:
                break
            continue
        latencies.append(time.perf_counter() - started)
    connections.close_all()
    results.put((latencies, refused))


def run_round(target, clients: int, seconds: float, extra_args=()) -> tuple[list, float]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    deadline = ctx.Value("d", 0.0)
    results = ctx.Queue()
    connections.close_all()
    procs = [ctx.Process(target=target, args=(barrier, deadline, results, *extra_args)) for _ in range(clients)]
    for proc in procs:
        proc.start()
    deadline.value = time.monotonic() + 3600  # set before releasing the barrier, then tightened
    started = time.monotonic()
    deadline.value = started + seconds + 0.05
    barrier.wait()
    started = time.monotonic()
    collected = [results.get() for _ in procs]
    elapsed = time.monotonic() - started
    for proc in procs:
        proc.join()
    return collected, elapsed


def summarize(latencies: list[float], elapsed: float) -> dict[str, float]:
    return {
        "ops": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else 0.0,
    }


# --- scenario --------------------------------------------------------------------------------------------------


def fresh_organization(credits: int) -> tuple[Organization, Workspace, User]:
    owner = User.objects.create_user(f"bench-{uuid.uuid4().hex[:10]}@example.com", None)
    organization = organization_create(name=f"Bench {uuid.uuid4().hex[:8]}", owner=owner)
    workspace = organization.workspaces.get(is_primary=True)
    ledger.credits_grant(organization=organization, amount=credits, actor=None)
    return organization, workspace, owner


def pool_balance(organization: Organization) -> int:
    pool = Account.objects.get(organization=organization, kind=AccountKind.WORKSPACE, workspace__is_primary=True)
    return account_balance(pool.pk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measured round")
    parser.add_argument("--clients", type=int, nargs="*", default=list(CLIENT_COUNTS))
    args = parser.parse_args()

    ensure_database()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_hot_row (id int PRIMARY KEY, balance bigint NOT NULL)")
        cursor.execute(
            "INSERT INTO bench_hot_row VALUES (1, 1000000000000) ON CONFLICT (id) DO UPDATE SET balance = 1000000000000"
        )

    report: dict[str, object] = {"seconds_per_round": args.seconds, "rounds": {}, "overspend_checks": {}}
    print(f"{'N':>4} {'variant':<10} {'ops/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'ratio':>6}")
    all_ok = True
    for clients in args.clients:
        collected, elapsed = run_round(baseline_worker, clients, args.seconds)
        baseline = summarize([x for part in collected for x in part], elapsed)

        organization, workspace, user = fresh_organization(10**12)
        start_balance = pool_balance(organization)
        collected, elapsed = run_round(
            charge_worker, clients, args.seconds, (organization.pk, workspace.pk, user.pk, False)
        )
        charged = [x for part, _ in collected for x in part]
        product = summarize(charged, elapsed)
        ratio = round(product["per_second"] / baseline["per_second"], 3) if baseline["per_second"] else 0.0
        balance_ok = pool_balance(organization) == start_balance - len(charged)
        problems = reconcile_organization(organization)
        for name, figures in (("baseline", baseline), ("charge", product)):
            print(
                f"{clients:>4} {name:<10} {figures['per_second']:>9} {figures['p50_ms']:>8} "
                f"{figures['p95_ms']:>8} {figures['p99_ms']:>8} {ratio if name == 'charge' else '':>6}"
            )
        report["rounds"][str(clients)] = {  # type: ignore[index]
            "baseline": baseline,
            "charge": product,
            "ratio": ratio,
            "final_balance_matches": balance_ok,
            "reconciliation_problems": problems,
        }
        all_ok = all_ok and balance_ok and not problems

        # Exhaustion: the pool allows exactly `allowed` charges; N processes race for them.
        allowed = clients * 25
        organization, workspace, user = fresh_organization(allowed)
        collected, _ = run_round(charge_worker, clients, 60.0, (organization.pk, workspace.pk, user.pk, True))
        successes = sum(len(part) for part, _ in collected)
        refused = sum(count for _, count in collected)
        final = pool_balance(organization)
        exact = successes == allowed and final == 0 and not reconcile_organization(organization)
        report["overspend_checks"][str(clients)] = {  # type: ignore[index]
            "allowed": allowed,
            "successes": successes,
            "refused": refused,
            "final_balance": final,
            "exact": exact,
        }
        print(f"{clients:>4} exhaustion: {successes}/{allowed} charged, {refused} refused, final balance {final}")
        all_ok = all_ok and exact

    rounds = report["rounds"]
    if "16" in rounds and "64" in rounds:  # type: ignore[operator]
        rate16 = rounds["16"]["charge"]["per_second"]  # type: ignore[index]
        rate64 = rounds["64"]["charge"]["per_second"]  # type: ignore[index]
        report["n64_over_n16"] = round(rate64 / rate16, 3) if rate16 else 0.0
    report["zero_overspend"] = all_ok
    print(json.dumps(report, sort_keys=True))
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
