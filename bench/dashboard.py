"""Benchmark: the Usage tab and the usage API at 10k and at 10M usage events, measured in the same run.

The script makes its own database (dropped and recreated each run), migrates it (PostgreSQL: the events table is
partitioned by month) and seeds two organizations through the services — "small" and "large", each with 4
workspaces, 12 members, an API key per workspace and an organization admin key — then generates their usage events
straight in SQL (`generate_series`, in transactions of 100,000 rows): `--small` (default 10,000) and `--events`
(default 10,000,000), over the last 100 days, every tool and model of the price list, 97 % captured, 2 % held,
1 % released. It runs the roll-up, then adds `--fresh` (default 500) events per organization after its watermark,
so every read combines the roll-up with raw events as in production, and runs VACUUM ANALYZE.

Then, in rounds that alternate the two organizations, it times each request in-process (Django's test client:
the whole middleware stack, sessions and permission checks included, no network) for:

- the Usage tab, whole organization, last 30 days (`/o/<org>/usage/?range=30d`);
- the Usage tab filtered to one workspace and one tool (`…&workspace=<id>&tool=chat`);
- the usage API with a workspace key, last 30 days by day (`GET /api/v1/usage`);
- the organization usage API with an admin key, by workspace (`GET /api/v1/organization/usage`).

It prints p50/p95 server time of each at both sizes, the ratio large/small of the p95 (target ≤ 1.5) and whether
the large p95 is ≤ 50 ms, and the number of SQL queries of each request at both sizes (they must be equal). The
last line is one JSON object with every figure.

    .venv/bin/python bench/dashboard.py [--events 10000000] [--small 10000] [--repeat 30] [--keep-db]
        [--pg postgresql://postgres@127.0.0.1:5432] [--generate-only | --reuse-db]

Generating 10M events takes about 20 minutes on this machine: `--generate-only` stops after generating and keeps
the database; `--reuse-db` measures on a kept one (it migrates, makes new keys for the same tenants, rolls up what is
new, adds the fresh events and measures), so a code change is measured again in minutes.

Exit status 0 when every request answered 200 and the query counts are equal at both sizes; the timing targets are
reported, not enforced. The load average is printed: other work on the same two cores skews the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_charges import database_drop, database_recreate, database_url, django_setup  # noqa: E402

DATABASE = "qolaba_bench_dashboard"
BATCH = 100_000  # short transactions: a roll-up run (and any test on this server) waits for the oldest one
WORKSPACES, MEMBERS, DAYS = 4, 12, 100
TARGET_RATIO, TARGET_P95_MS = 1.5, 50.0


@dataclass
class Tenant:
    label: str
    organization_id: int
    slug: str
    owner_id: int
    workspace_ids: list[int]
    user_ids: list[int]
    workspace_key: str
    admin_key: str


def seed(label: str) -> Tenant:
    from orgs.models import OrganizationRole, User
    from orgs.services import admin_key_create
    from qolaba.lifecycle import organization_create, workspace_create
    from workspaces.models import WorkspaceRole
    from workspaces.services import api_key_create, member_add, workspace_member_set

    owner = User.objects.create_user(f"owner-{label}@bench.example.com", None)
    organization = organization_create(name=f"Bench {label}", owner=owner, timezone="Asia/Kolkata")
    workspaces = [
        workspace_create(organization=organization, name=f"Client {n}", created_by=owner) for n in range(WORKSPACES)
    ]
    users = [owner]
    for n in range(MEMBERS - 1):
        user = User.objects.create_user(f"member{n}-{label}@bench.example.com", None)
        member_add(organization=organization, user=user, role=OrganizationRole.MEMBER, actor=owner)
        workspace_member_set(workspace=workspaces[n % WORKSPACES], user=user, role=WorkspaceRole.MEMBER, actor=owner)
        users.append(user)
    _, workspace_key = api_key_create(workspace=workspaces[0], actor=owner, name="bench")
    _, admin_key = admin_key_create(organization=organization, actor=owner, name="bench")
    return Tenant(
        label=label,
        organization_id=organization.pk,
        slug=organization.slug,
        owner_id=owner.pk,
        workspace_ids=[ws.pk for ws in workspaces],
        user_ids=[user.pk for user in users],
        workspace_key=workspace_key,
        admin_key=admin_key,
    )


def load(label: str) -> Tenant:
    """The tenant `seed(label)` made in a kept database (`--reuse-db`), with new keys (keys are stored hashed)."""
    from orgs.models import Organization, User
    from orgs.services import admin_key_create
    from workspaces.models import Workspace
    from workspaces.services import api_key_create

    organization = Organization.objects.get(name=f"Bench {label}")
    owner = User.objects.get(email=f"owner-{label}@bench.example.com")
    workspaces = list(Workspace.objects.filter(organization=organization).order_by("pk"))[:WORKSPACES]
    members = [User.objects.get(email=f"member{n}-{label}@bench.example.com") for n in range(MEMBERS - 1)]
    _, workspace_key = api_key_create(workspace=workspaces[0], actor=owner, name="bench")
    _, admin_key = admin_key_create(organization=organization, actor=owner, name="bench")
    return Tenant(
        label=label,
        organization_id=organization.pk,
        slug=organization.slug,
        owner_id=owner.pk,
        workspace_ids=[ws.pk for ws in workspaces],
        user_ids=[owner.pk, *(user.pk for user in members)],
        workspace_key=workspace_key,
        admin_key=admin_key,
    )


def generate(cursor: Any, tenant: Tenant, first: int, count: int, *, start: str, days: float, captured: bool) -> None:
    """`count` events of `tenant`, numbered from `first`, at random over `days` from `start`, in one statement."""
    from usage.models import Price, UsageEvent, UsageStatus

    c = {field.name: field.column for field in UsageEvent._meta.concrete_fields}
    prices = list(Price.objects.active().values_list("tool", "model", "credits_per_unit"))
    tools = ", ".join(f"'{tool}'" for tool, _, _ in prices)
    models = ", ".join(f"'{model}'" for _, model, _ in prices)
    unit_prices = ", ".join(str(credits) for _, _, credits in prices)
    status = (
        f"'{UsageStatus.CAPTURED}'"
        if captured
        else f"""CASE WHEN s < 0.01 THEN '{UsageStatus.RELEASED}' WHEN s < 0.03 THEN '{UsageStatus.HELD}'
                 ELSE '{UsageStatus.CAPTURED}' END"""
    )
    credits = (
        "units * (ARRAY[" + unit_prices + "])[p]"
        if captured
        else ("CASE WHEN s < 0.01 THEN 0 ELSE units * (ARRAY[" + unit_prices + "])[p] END")
    )
    cursor.execute(
        f"""
        INSERT INTO {UsageEvent._meta.db_table} ({c["organization"]}, {c["workspace"]}, {c["user"]}, {c["tool"]},
            {c["model"]}, {c["units"]}, {c["credits"]}, {c["status"]}, {c["idempotency_key"]},
            {c["ledger_transaction"]}, {c["created_at"]}, {c["settled_at"]})
        SELECT %(organization)s, (%(workspaces)s::bigint[])[w], (%(users)s::bigint[])[u], (ARRAY[{tools}])[p],
            (ARRAY[{models}])[p], units, {credits}, {status}, 'bench-' || %(label)s || '-' || g, g, at, at
        FROM (
            SELECT g, 1 + floor(random() * %(n_workspaces)s)::int AS w, 1 + floor(random() * %(n_users)s)::int AS u,
                1 + floor(random() * %(n_prices)s)::int AS p, 1 + floor(random() * 4)::int AS units, random() AS s,
                %(start)s::timestamptz + random() * (%(days)s * INTERVAL '1 day') AS at
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
        ) generated
        """,
        {
            "organization": tenant.organization_id,
            "workspaces": tenant.workspace_ids,
            "users": tenant.user_ids,
            "n_workspaces": len(tenant.workspace_ids),
            "n_users": len(tenant.user_ids),
            "n_prices": len(prices),
            "label": tenant.label,
            "start": start,
            "days": days,
            "first": first,
            "last": first + count - 1,
        },
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--fresh", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep-db", action="store_true", help="Leave the benchmark database behind.")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="Measure on the database a --keep-db run left: migrate, skip seeding and generating (implies --keep-db).",
    )
    parser.add_argument("--generate-only", action="store_true", help="Stop after generating (with --keep-db).")
    args = parser.parse_args()
    args.keep_db = args.keep_db or args.reuse_db or args.generate_only

    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if not args.reuse_db:
        database_recreate(args.pg, DATABASE)
    django_setup(database_url(args.pg, DATABASE), os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13"))
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils.timezone import now

    from bench.rollup import wait_for_bound
    from orgs.models import User
    from usage.partitions import partitions_ensure
    from usage.rollup import rollup_update

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    generated_s = 0.0
    if args.reuse_db:
        small, large = load("small"), load("large")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(MAX(SUBSTRING(idempotency_key FROM '[0-9]+$')::bigint), 0) + 1 FROM usage_usageevent"
            )
            (number,) = cursor.fetchone()
        started = time.perf_counter()
    else:
        small, large = seed("small"), seed("large")
        start = (now() - timedelta(days=DAYS)).isoformat()
        print(
            f"load average {os.getloadavg()[0]:.2f}; generating {args.small:,} + {args.events:,} events ...", flush=True
        )
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            # One captured event a month first, so that every month of the range gets its own partition before the bulk.
            with transaction.atomic():
                generate(cursor, small, 1, 40, start=start, days=DAYS, captured=True)
            partitions_ensure()
            number = 41
            for tenant, count in ((small, args.small - 40), (large, args.events)):
                for first in range(0, count, BATCH):
                    with transaction.atomic():
                        generate(
                            cursor, tenant, number, min(BATCH, count - first), start=start, days=DAYS, captured=False
                        )
                    number += min(BATCH, count - first)
        generated_s = time.perf_counter() - started
    if args.generate_only:
        print(f"generated in {generated_s:.0f} s; kept {DATABASE}", flush=True)
        return
    print(f"generated in {generated_s:.0f} s; rolling up ...", flush=True)
    wait_for_bound()
    started = time.perf_counter()
    rollup_update()
    rollup_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        for tenant in (small, large):  # newer than the watermark: read raw, as production's last few seconds
            with transaction.atomic():
                recent = (now() - timedelta(hours=1)).isoformat()
                generate(cursor, tenant, number, args.fresh, start=recent, days=1 / 24, captured=False)
            number += args.fresh
        cursor.execute("VACUUM ANALYZE")
    print(f"rolled up in {rollup_s:.0f} s; measuring ({args.repeat} requests each) ...", flush=True)

    today = now().date()
    api_start, api_end = (today - timedelta(days=29)).isoformat(), today.isoformat()

    def targets(tenant: Tenant) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            "usage_tab_org_30d": (f"/o/{tenant.slug}/usage/?range=30d", {}),
            "usage_tab_filtered": (
                f"/o/{tenant.slug}/usage/?range=30d&workspace={tenant.workspace_ids[0]}&tool=chat",
                {},
            ),
            "usage_api_workspace": (
                f"/api/v1/usage?start={api_start}&end={api_end}&bucket=day&group_by=tool,model",
                {"HTTP_AUTHORIZATION": f"Bearer {tenant.workspace_key}"},
            ),
            "usage_api_organization": (
                f"/api/v1/organization/usage?start={api_start}&end={api_end}&bucket=day&group_by=workspace",
                {"HTTP_AUTHORIZATION": f"Bearer {tenant.admin_key}"},
            ),
        }

    clients = {}
    for tenant in (small, large):
        client = Client()
        client.force_login(User.objects.get(pk=tenant.owner_id))
        clients[tenant.label] = client
    times: dict[tuple[str, str], list[float]] = {}
    queries: dict[tuple[str, str], int] = {}
    failures = []
    for tenant in (small, large):  # warm-up, and the query count of each request
        for name, (url, headers) in targets(tenant).items():
            clients[tenant.label].get(url, **headers)
            with CaptureQueriesContext(connection) as captured:
                response = clients[tenant.label].get(url, **headers)
            queries[(tenant.label, name)] = len(captured)
            if response.status_code != 200:
                failures.append(f"{tenant.label} {name}: {response.status_code}")
    for round_number in range(args.repeat):
        for tenant in (small, large) if round_number % 2 == 0 else (large, small):
            for name, (url, headers) in targets(tenant).items():
                began = time.perf_counter()
                response = clients[tenant.label].get(url, **headers)
                times.setdefault((tenant.label, name), []).append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    failures.append(f"{tenant.label} {name}: {response.status_code}")

    results = {}
    print(f"{'request':<24} {'10k p50':>8} {'10k p95':>8} {'10M p50':>8} {'10M p95':>8} {'ratio':>6} {'queries':>9}")
    for name in targets(small):
        s, big = times[("small", name)], times[("large", name)]
        row = {
            "small_p50_ms": round(statistics.median(s), 1),
            "small_p95_ms": round(percentile(s, 0.95), 1),
            "large_p50_ms": round(statistics.median(big), 1),
            "large_p95_ms": round(percentile(big, 0.95), 1),
            "queries_small": queries[("small", name)],
            "queries_large": queries[("large", name)],
        }
        row["p95_ratio"] = round(row["large_p95_ms"] / row["small_p95_ms"], 2)
        row["ratio_met"] = row["p95_ratio"] <= TARGET_RATIO
        row["p95_met"] = row["large_p95_ms"] <= TARGET_P95_MS
        results[name] = row
        print(
            f"{name:<24} {row['small_p50_ms']:>8} {row['small_p95_ms']:>8} {row['large_p50_ms']:>8} "
            f"{row['large_p95_ms']:>8} {row['p95_ratio']:>6} {row['queries_small']:>4}/{row['queries_large']:<4}"
        )
    equal_queries = all(r["queries_small"] == r["queries_large"] for r in results.values())
    report = {
        "events_small": args.small + args.fresh,
        "events_large": args.events + args.fresh,
        "generated_s": round(generated_s, 1),
        "rollup_s": round(rollup_s, 1),
        "repeat": args.repeat,
        "results": results,
        "target_ratio": TARGET_RATIO,
        "target_p95_ms": TARGET_P95_MS,
        "all_ratio_met": all(r["ratio_met"] for r in results.values()),
        "all_p95_met": all(r["p95_met"] for r in results.values()),
        "equal_queries": equal_queries,
        "failures": failures[:10],
        "load_average": round(os.getloadavg()[0], 2),
    }
    if not args.keep_db:
        connection.close()
        database_drop(args.pg, DATABASE)
    print(json.dumps(report))
    sys.exit(0 if equal_queries and not failures else 1)


if __name__ == "__main__":
    main()
