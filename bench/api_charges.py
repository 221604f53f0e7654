"""Benchmark: POST /api/v1/charges through gunicorn and PostgreSQL, against GET /api/v1/health of the same app.

The script makes its own database (dropped and recreated each run), migrates it, seeds an organization with
N members, a workspace, an API key and credits the run cannot exhaust, then starts the app under gunicorn with the
production settings on a free loopback port, by default as docs/operations.md runs the web process (4 sync workers,
access log on). One asyncio client (raw HTTP/1.1; on persistent connections where the worker class keeps them alive)
drives, at the same concurrency and for the same time:

(a) baseline: `GET /api/v1/health` (no key, no database: the middleware stack and django-ninja only);
(b) the product: `POST /api/v1/charges` (a unique Idempotency-Key each, members in turn, 1 unit of chat);
(c) a reference: `POST /bench/durable-write` (bench/floor.py, served only here): one row inserted and committed
    through the same middleware and prepared-statement path, the cheapest write an endpoint can make.

It prints requests/s, p50/p95/p99 latency and errors by status for each and the ratios (b)/(a) and (c)/(a), then
checks that nothing was overspent: credits in the 201 answers == the ledger's charges == the balance consumed, one
usage event per 201, a clean reconciliation; and an exhaustion round in which many clients race for a pool that
allows exactly K charges (K charged, balance 0, the rest 402). Finally it runs charges in-process through the same WSGI
application and lists the SQL statements one charge sends, with their time. The last line is one JSON object with
every figure. While it drives each endpoint it adds up the CPU time of the client, of gunicorn and of PostgreSQL
(from /proc), per request: the ratio those costs allow when every core is busy shows what the machine can give.

    .venv/bin/python bench/api_charges.py [--seconds 10] [--rounds 3] [--clients 16]
        [--worker-class sync --workers 4 | --worker-class gthread --workers 2 --threads 4] [--no-access-log]
        [--keep-db]

Exit status 0 when every check holds (no overspend, exhaustion exact, no 5xx); the targets are reported, not
enforced. The machine's load average is printed: other work on the same cores skews both endpoints.

Needs PostgreSQL (`--pg`, default postgresql://postgres@127.0.0.1:5432) and Redis (`--redis-url`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import io
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOOL, MODEL = "chat", "gpt-4o-mini"
HEALTH_PATH = "/api/v1/health"
FLOOR_PATH = "/bench/durable-write"  # bench/floor.py
CHARGES_PATH = "/api/v1/charges"
TARGET_RATIO, TARGET_P99_MS = 0.6, 50.0
REQUEST_TIMEOUT = 30.0


# --- PostgreSQL and Django (the seeding and the checks run in this process with the test settings) ---------------


def pg_parts(pg: str) -> dict[str, Any]:
    parts = urlsplit(pg)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432, "user": parts.username or "postgres"}


def pg_admin(pg: str) -> Any:
    import psycopg

    p = pg_parts(pg)
    try:
        return psycopg.connect(
            host=p["host"], port=p["port"], user=p["user"], dbname="postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as error:
        sys.exit(
            f"PostgreSQL is not reachable at {p['user']}@{p['host']}:{p['port']} ({error}). Start it or pass --pg."
        )


def database_url(pg: str, name: str) -> str:
    p = pg_parts(pg)
    return f"postgres://{p['user']}@{p['host']}:{p['port']}/{name}"


def database_recreate(pg: str, name: str) -> None:
    with pg_admin(pg) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(pg: str, name: str) -> None:
    with pg_admin(pg) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_check(url: str) -> None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                raise OSError("no PONG")
    except OSError as error:
        sys.exit(f"Redis is not reachable at {url} ({error}). Start it or pass --redis-url.")


def django_setup(db_url: str, redis_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "qolaba.settings.test"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


@dataclass
class Tenant:
    """One seeded organization: the workspace the key belongs to, its members, the price of one charge."""

    organization_id: int
    workspace_id: int
    api_key: str
    members: list[str]
    initial_available: int
    price: int


def seed_tenant(label: str, members: int, credits: int) -> Tenant:
    from billing import ledger
    from orgs.models import Organization, OrganizationRole, User
    from qolaba.lifecycle import organization_create, workspace_create
    from usage.models import Price
    from workspaces.models import WorkspaceRole
    from workspaces.services import api_key_create, member_add, workspace_member_set

    owner = User.objects.create_user(f"owner-{label}@bench.example.com", None)
    organization = organization_create(name=f"Bench {label}", owner=owner)
    workspace = workspace_create(organization=organization, name="Bench API", created_by=owner)
    emails = []
    for n in range(members):
        user = User.objects.create_user(f"member{n}-{label}@bench.example.com", None)
        member_add(organization=organization, user=user, role=OrganizationRole.MEMBER, actor=owner)
        workspace_member_set(workspace=workspace, user=user, role=WorkspaceRole.MEMBER, actor=owner)
        emails.append(user.email)
    ledger.credits_grant(organization=organization, amount=credits, actor=None)
    _, secret = api_key_create(workspace=workspace, actor=owner, name="bench")
    organization = Organization.objects.get(pk=organization.pk)
    return Tenant(
        organization_id=organization.pk,
        workspace_id=workspace.pk,
        api_key=secret,
        members=emails,
        initial_available=ledger.available_credits(workspace, organization),
        price=Price.objects.active().get(tool=TOOL, model=MODEL).credits_per_unit,
    )


def ledger_check(tenant: Tenant, answered: Tally) -> dict[str, Any]:
    """Credits in the 201 answers == ledger charges == balance consumed; one usage event per 201; reconciled."""
    from django.db.models import Min, Sum

    from billing import ledger
    from billing.models import AccountStripe, LedgerTransaction, TransactionKind
    from billing.reconcile import reconcile
    from orgs.models import Organization
    from usage.models import IdempotentRequest, UsageEvent
    from workspaces.models import HistoryItem, Workspace

    organization = Organization.objects.get(pk=tenant.organization_id)
    workspace = Workspace.objects.get(pk=tenant.workspace_id)
    charges = LedgerTransaction.objects.filter(organization=organization, kind=TransactionKind.CHARGE)
    events = UsageEvent.objects.filter(organization=organization)
    final = ledger.available_credits(workspace, organization)
    figures = {
        "answered_201": answered.created,
        "answered_credits": answered.credits,
        "unknown_outcome": answered.unknown,
        "ledger_charges": charges.count(),
        "ledger_charged_credits": int(charges.aggregate(s=Sum("amount"))["s"] or 0),
        "balance_consumed": tenant.initial_available - final,
        "final_balance": final,
        "lowest_stripe": AccountStripe.objects.filter(account__organization=organization).aggregate(m=Min("balance"))[
            "m"
        ],
        "usage_events": events.count(),
        "usage_event_credits": int(events.aggregate(s=Sum("credits"))["s"] or 0),
        "history_items": HistoryItem.objects.filter(organization=organization).count(),
        "idempotent_requests": IdempotentRequest.objects.filter(workspace=workspace).count(),
        "reconcile_problems": reconcile(organization=organization),
    }
    credits = figures["answered_credits"]
    figures["no_overspend"] = figures["exact"] = (
        figures["unknown_outcome"] == 0
        and figures["ledger_charged_credits"] == credits
        and figures["balance_consumed"] == credits
        and figures["usage_event_credits"] == credits
        and figures["ledger_charges"] == figures["answered_201"]
        and figures["usage_events"] == figures["answered_201"]
        and figures["history_items"] == figures["answered_201"]
        and figures["final_balance"] >= 0
        and (figures["lowest_stripe"] or 0) >= 0
        and not figures["reconcile_problems"]
    )
    return figures


# --- gunicorn ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(db_url: str, redis_url: str) -> dict[str, str]:
    """The production settings, as deployed behind a TLS proxy (requests carry X-Forwarded-Proto: https)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.floor_settings",  # production's, plus the reference write (bench/floor.py)
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        # One key drives thousands of requests a second: the per-key limit stays counted (its Redis round trip is
        # part of what is measured) but set above what the run can reach.
        API_RATE_LIMIT=os.environ.get("API_RATE_LIMIT", "100000000/m"),
    )
    return env


class Server:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], logdir: str) -> None:
        self.port = free_port()
        self.log = Path(logdir) / "gunicorn.log"
        gunicorn = Path(sys.executable).parent / "gunicorn"
        threads = args.threads if args.worker_class == "gthread" else 1
        self.config = {
            "worker_class": args.worker_class,
            "workers": args.workers,
            "threads": threads,
            "keep_alive": args.worker_class == "gthread",
            "access_log": args.access_log,
            "bind": f"127.0.0.1:{self.port}",
            "settings": env["DJANGO_SETTINGS_MODULE"],
            "conn_max_age": int(env.get("CONN_MAX_AGE", "60")),
        }
        command = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        command += [
            "qolaba.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            f"--worker-class={args.worker_class}",
            f"--workers={args.workers}",
            f"--threads={threads}",
            "--keep-alive=5",
            "--timeout=60",
            "--graceful-timeout=5",
            "--backlog=2048",
            f"--worker-tmp-dir={logdir}",
            "--error-logfile=-",
            *(["--access-logfile=-"] if args.access_log else []),
            "--log-level=warning",
            f"--chdir={ROOT}",
        ]
        with self.log.open("ab") as output:  # the workers' own logging (Django's console handler) goes there too
            self.proc = subprocess.Popen(  # noqa: S603
                command, env=env, cwd=ROOT, start_new_session=True, stdout=output, stderr=subprocess.STDOUT
            )

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def log_summary(self) -> dict[str, Any]:
        """Requests gunicorn answered 500 for, and the exceptions named in its log (402s are logged as warnings)."""
        try:
            text = self.log.read_text()
        except OSError:
            return {}
        named = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Detected|Violation)): (.*)$", text, re.MULTILINE)
        exceptions = Counter(f"{name}: {message[:80]}" for name, message in named)
        return {
            "unhandled_requests": text.count("Error handling request"),
            "exceptions": dict(exceptions.most_common(10)),
            "payment_required_warnings": text.count("Payment Required"),
        }

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", HEALTH_PATH, headers={"X-Forwarded-Proto": "https"})
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
                raise RuntimeError(f"{HEALTH_PATH} answered {status}:\n{self.log_tail()}")
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group gunicorn leads (started in its own session)
            self.proc.wait(timeout=5)


# --- the load generator ------------------------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time; answers need a Content-Length (Django sets one)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed before the answer"))

    def _answer(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        found = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if found is None:
            self.waiter.set_exception(ConnectionError("answer without Content-Length"))
            return
        total = end + 4 + int(found.group(1))
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        close = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
        self.waiter.set_result((int(head[9:12]), body, close))

    async def request(self, payload: bytes) -> tuple[int, bytes, bool]:
        assert self.transport is not None  # noqa: S101
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await asyncio.wait_for(self.waiter, REQUEST_TIMEOUT)


@dataclass
class Tally:
    """What one endpoint answered: latencies of the measured window, statuses of every request, credits charged."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    created: int = 0  # 201 answers, warm-up included (the ledger check needs them all)
    credits: int = 0
    unknown: int = 0  # requests whose answer never came (a charge may or may not have happened)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process group over the measured windows

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2) if ordered else 0.0

        requests = len(ordered)
        ok = sum(n for status, n in self.statuses.items() if status.startswith("2"))
        return {
            "requests": requests,
            "per_second": round(requests / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
            "mean_ms": round(sum(ordered) / requests * 1000, 2) if requests else 0.0,
            "elapsed_s": round(self.elapsed, 3),
            "statuses": dict(sorted(self.statuses.items())),
            "errors": sum(self.statuses.values()) - ok,
            "client_cpu_pct": round(100 * self.client_cpu / self.elapsed, 1) if self.elapsed else 0.0,
            **self.cpu_summary(requests),
        }

    def cpu_summary(self, requests: int) -> dict[str, Any]:
        if not requests or not self.cpu:
            return {}
        cpu = dict.fromkeys(("gunicorn", "postgresql", "other", "busy", "all"), 0.0) | self.cpu
        per_request = {"client": self.client_cpu, "gunicorn": cpu["gunicorn"], "postgresql": cpu["postgresql"]}
        per_request["total"] = sum(per_request.values())
        return {
            "cpu_ms_per_request": {k: round(v / requests * 1000, 3) for k, v in per_request.items()},
            "machine_busy_pct": round(100 * cpu["busy"] / cpu["all"], 1) if cpu["all"] else 0.0,
            "other_cpu_pct": round(100 * cpu["other"] / self.elapsed, 1) if self.elapsed else 0.0,
        }


# --- where the CPU goes (Linux /proc): the server's process group, PostgreSQL, everything else -------------------


def cpu_sample(server_group: int) -> dict[str, float]:
    """CPU seconds used so far by gunicorn (its process group), by PostgreSQL (every `postgres` process: backends,
    WAL writer, checkpointer) and by every other process but this one; and the machine's busy and total time."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(("gunicorn", "postgresql", "other"), 0.0)
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # the process ended
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        group = "gunicorn" if int(fields[2]) == server_group else "postgresql" if name == "postgres" else "other"
        used[group] += seconds
    with open("/proc/stat") as stat:
        jiffies = [int(n) for n in stat.readline().split()[1:]]
    used["all"] = sum(jiffies[:8]) / tick  # user..steal; guest time is counted inside user
    used["busy"] = used["all"] - (jiffies[3] + jiffies[4]) / tick  # minus idle and iowait
    return used


RequestMaker = Callable[[int, int], bytes]  # (client, sequence number) -> raw request


def health_request(host: str) -> RequestMaker:
    raw = f"GET {HEALTH_PATH} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Proto: https\r\n\r\n".encode()
    return lambda client, n: raw


def floor_request(host: str) -> RequestMaker:
    """The reference durable write, with a body the size of a charge's."""
    body = json.dumps({"member": "member0@bench.example.com", "tool": TOOL, "model": MODEL, "units": 1}).encode()
    raw = (
        f"POST {FLOOR_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Forwarded-Proto: https\r\n\r\n"
    ).encode() + body
    return lambda client, n: raw


def charge_request(host: str, tenant: Tenant, run: str) -> RequestMaker:
    bodies = [
        json.dumps({"member": email, "tool": TOOL, "model": MODEL, "units": 1}).encode() for email in tenant.members
    ]
    heads = [
        (
            f"POST {CHARGES_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tenant.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-Forwarded-Proto: https\r\n"
            "Idempotency-Key: "
        ).encode()
        for body in bodies
    ]

    sequence = itertools.count(1)  # one key per request over every phase of the run (a reused key is a replay)

    def make(client: int, n: int) -> bytes:
        member = client % len(bodies)
        return heads[member] + f"{run}-{next(sequence)}\r\n\r\n".encode() + bodies[member]

    return make


async def drive(
    port: int,
    make: RequestMaker,
    tally: Tally,
    *,
    clients: int,
    seconds: float,
    measure: bool,
    stop_on: int | None = None,
    server_group: int | None = None,
) -> None:
    """`clients` closed-loop clients for `seconds`: every request started before the deadline counts. With
    `server_group`, the CPU time of gunicorn, PostgreSQL and the machine over a measured window is added up too."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        conn: HttpConnection | None = None
        n = 0
        while time.monotonic() < deadline:
            n += 1
            payload = make(index, n)
            started = time.perf_counter()
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(HttpConnection, "127.0.0.1", port)
                status, body, close = await conn.request(payload)
            except (TimeoutError, OSError) as error:
                tally.statuses[f"error:{type(error).__name__}"] += 1
                tally.unknown += 1
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            if measure:
                tally.latencies.append(time.perf_counter() - started)
            tally.statuses[str(status)] += 1
            if status == 201:
                tally.created += 1
                tally.credits += json.loads(body)["credits"]
            if close and conn.transport is not None:
                conn.transport.close()
                conn = None
            if stop_on is not None and status == stop_on:
                break
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    sampled = cpu_sample(server_group) if measure and server_group is not None else None
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    if measure:
        tally.elapsed += time.perf_counter() - started
        tally.client_cpu += time.process_time() - cpu
        if sampled is not None:
            for group, seconds in cpu_sample(server_group or 0).items():  # a process that ended takes its share
                tally.cpu[group] = tally.cpu.get(group, 0.0) + max(0.0, seconds - sampled.get(group, 0.0))


# --- the statement trace (a child process with the production settings, the WSGI app called in-process) ----------


def _normalize(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def profile_child(config: dict[str, Any]) -> None:
    """Call the WSGI application directly (as gunicorn does) and record every statement sent to PostgreSQL."""
    import cProfile
    import pstats

    import psycopg
    from psycopg.pq import TransactionStatus

    from qolaba.wsgi import application

    trace: list[tuple[str, float]] = []
    tracing = [True]
    original_execute, original_commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if not tracing[0]:
            return original_execute(self, query, params, **kwargs)
        conn = self.connection
        if not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            trace.append(("BEGIN (sent by psycopg with the next statement)", 0.0))
        text = query if isinstance(query, str) else getattr(query, "as_string", lambda c: str(query))(conn)
        if kwargs.get("prepare"):
            text = "[prepared] " + text
        started = time.perf_counter()
        try:
            return original_execute(self, query, params, **kwargs)
        finally:
            trace.append((_normalize(text), time.perf_counter() - started))

    def commit(self: Any) -> None:
        if not tracing[0]:
            return original_commit(self)
        started = time.perf_counter()
        try:
            original_commit(self)
        finally:
            trace.append(("COMMIT", time.perf_counter() - started))

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    psycopg.Connection.commit = commit  # type: ignore[method-assign]

    member, secret, run = config["member"], config["api_key"], uuid.uuid4().hex[:12]
    body = json.dumps({"member": member, "tool": TOOL, "model": MODEL, "units": 1}).encode()

    def call(path: str, n: int) -> tuple[int, float]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_X_FORWARDED_PROTO": "https",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if path == CHARGES_PATH:
            environ.update(
                REQUEST_METHOD="POST",
                CONTENT_TYPE="application/json",
                CONTENT_LENGTH=str(len(body)),
                HTTP_AUTHORIZATION=f"Bearer {secret}",
                HTTP_IDEMPOTENCY_KEY=f"{run}-{path}-{n}",
            )
            environ["wsgi.input"] = io.BytesIO(body)
        status: list[int] = []

        def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            status.append(int(line[:3]))
            return lambda data: None

        started = time.perf_counter()
        response = application(environ, start_response)
        for _ in response:
            pass
        response.close()  # request_finished: Django closes or keeps its connection here, as under gunicorn
        return status[0], time.perf_counter() - started

    requests = config["requests"]
    report: dict[str, Any] = {}
    for path in (HEALTH_PATH, CHARGES_PATH):
        for n in range(20):  # warm-up: connection, URL resolver, prepared statement, stripes spread
            call(path, -n - 1)
        trace.clear()
        per_request: list[list[tuple[str, float]]] = []
        totals: list[float] = []
        statuses: Counter[int] = Counter()
        for n in range(requests):
            status, took = call(path, n)
            totals.append(took)
            statuses[status] += 1
            per_request.append(list(trace))
            trace.clear()
        db = [sum(t for _, t in statements) for statements in per_request]
        counts = [sum(1 for s, _ in statements if not s.startswith("BEGIN")) for statements in per_request]
        typical = max(set(map(len, per_request)), key=[len(p) for p in per_request].count)
        sample = next(p for p in per_request if len(p) == typical)
        same_shape = [p for p in per_request if len(p) == typical]
        statements = [
            {
                "sql": sql[:400],
                "mean_ms": round(sum(p[i][1] for p in same_shape) / len(same_shape) * 1000, 3),
            }
            for i, (sql, _) in enumerate(sample)
        ]
        tracing[0] = False  # CPU time, untraced: this process (WSGI app) and its PostgreSQL backend
        cpu, backend = time.process_time(), _backend_cpu()
        for n in range(requests):
            call(path, 2 * requests + n)
        cpu, backend = time.process_time() - cpu, _backend_cpu() - backend
        tracing[0] = True
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(requests):
            call(path, requests + n)
        profiler.disable()
        trace.clear()
        report[path] = {
            "requests": requests,
            "statuses": {str(k): v for k, v in statuses.items()},
            "mean_total_ms": round(sum(totals) / requests * 1000, 3),
            "mean_db_ms": round(sum(db) / requests * 1000, 3),
            "mean_python_ms": round((sum(totals) - sum(db)) / requests * 1000, 3),
            "statements_per_request": round(sum(counts) / requests, 2),
            "transactions_per_request": round(sum(s == "COMMIT" for p in per_request for s, _ in p) / requests, 2),
            "cpu_app_ms": round(cpu / requests * 1000, 3),
            "cpu_postgres_ms": round(backend / requests * 1000, 3),
            "statements": statements,
            "python_by_package_ms": _by_package(pstats.Stats(profiler), requests),
        }
    print(json.dumps(report))


def _backend_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL backend serving this thread's Django connection (Linux)."""
    from django.db import connection

    if connection.connection is None:
        return 0.0
    try:
        with open(f"/proc/{connection.connection.info.backend_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _by_package(stats: Any, requests: int) -> dict[str, float]:
    """Own time per request grouped by where the code lives (under cProfile, so inflated; compare shares)."""
    buckets: Counter[str] = Counter()
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():
        if "site-packages/" in filename:
            bucket = filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        elif filename.startswith(str(ROOT)):
            bucket = "app:" + filename[len(str(ROOT)) + 1 :].split("/", 1)[0]
        elif filename == "~":
            bucket = "builtin:" + ("socket/psycopg wait" if "wait" in name or "recv" in name else "other")
        else:
            bucket = "stdlib"
        buckets[bucket] += tottime
    return {k: round(v / requests * 1000, 3) for k, v in buckets.most_common(12)}


def run_profile(env: dict[str, str], tenant: Tenant, requests: int) -> dict[str, Any]:
    config = {"member": tenant.members[0], "api_key": tenant.api_key, "requests": requests}
    result = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--profile-child", json.dumps(config)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the statement trace failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the run -----------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per endpoint and round")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured time per endpoint before measuring")
    parser.add_argument("--rounds", type=int, default=1, help="baseline/charges pairs, interleaved, pooled")
    parser.add_argument("--clients", type=int, default=16, help="concurrent closed-loop clients")
    parser.add_argument("--members", type=int, default=16, help="members the charges are spread over")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="per worker (gthread only)")
    parser.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="do not log every request (production does)"
    )
    parser.add_argument("--exhaust-clients", type=int, default=32, help="clients racing in the exhaustion round")
    parser.add_argument("--exhaust-charges", type=int, default=400, help="charges the exhausted pool allows")
    parser.add_argument("--profile-requests", type=int, default=200, help="in-process charges traced (0: skip)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="server, user (trust auth)")
    parser.add_argument("--db-name", default="qolaba_bench_api")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--profile-child", help=argparse.SUPPRESS)
    return parser.parse_args()


def cpu_report(base: dict[str, Any], product: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Print where each endpoint's CPU went, per request; return the ratio the CPU costs alone would allow."""
    if any("cpu_ms_per_request" not in figures for figures in (base, product, reference)):
        return {}
    print(
        f"{'CPU ms per request':<22} {'client':>8} {'gunicorn':>9} {'PostgreSQL':>11} {'total':>7}  machine busy  "
        "other processes (% of a core)"
    )
    rows = ((f"GET  {HEALTH_PATH}", base), (f"POST {CHARGES_PATH}", product), (f"POST {FLOOR_PATH}", reference))
    for name, figures in rows:
        cpu = figures["cpu_ms_per_request"]
        print(
            f"{name:<22} {cpu['client']:>8} {cpu['gunicorn']:>9} {cpu['postgresql']:>11} {cpu['total']:>7}  "
            f"{figures['machine_busy_pct']:>11}%  {figures['other_cpu_pct']:>6}%"
        )
    base_total, product_total = base["cpu_ms_per_request"]["total"], product["cpu_ms_per_request"]["total"]
    figures = {
        "cpu_bound_ratio": round(base_total / product_total, 3) if product_total else 0.0,
        "charge_cpu_budget_ms": round(base_total / TARGET_RATIO, 3),
    }
    print(
        f"CPU-bound ratio {figures['cpu_bound_ratio']} (the throughput ratio with every core busy on both endpoints): "
        f"a ratio of {TARGET_RATIO} allows a charge {figures['charge_cpu_budget_ms']} ms of CPU in all; it takes "
        f"{product_total} ms, {product['cpu_ms_per_request']['postgresql']} ms of them in PostgreSQL"
    )
    return figures


def print_row(name: str, figures: dict[str, Any], ratio: str = "") -> None:
    statuses = " ".join(f"{k}:{v}" for k, v in figures["statuses"].items())
    print(
        f"{name:<22} {figures['per_second']:>9} {figures['p50_ms']:>8} {figures['p95_ms']:>8} {figures['p99_ms']:>8} "
        f"{figures['max_ms']:>8} {ratio:>6}  {figures['client_cpu_pct']:>5}%  {statuses}"
    )


def main() -> None:
    args = parse_args()
    if args.profile_child:
        profile_child(json.loads(args.profile_child))
        return

    redis_check(args.redis_url)
    pg_admin(args.pg).close()
    db_url = database_url(args.pg, args.db_name)
    server: Server | None = None
    created_db, logdir, keep_log = False, "", False

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        started = time.monotonic()
        print(f"database {args.db_name}: recreating and migrating ...", flush=True)
        database_recreate(args.pg, args.db_name)
        created_db = True
        django_setup(db_url, args.redis_url)
        from django.core.management import call_command
        from django.db import connections

        from usage.catalog import prices_ensure_defaults

        call_command("migrate", verbosity=0)
        from django.db import connection

        from bench.floor import TABLE_SQL

        with connection.cursor() as cursor:
            cursor.execute(TABLE_SQL)
        prices_ensure_defaults()
        from usage.models import Price

        price = Price.objects.active().get(tool=TOOL, model=MODEL).credits_per_unit
        tenant = seed_tenant("load", args.members, 10**12)
        exhausted = seed_tenant("exhaust", min(args.members, args.exhaust_clients), args.exhaust_charges * price)
        connections.close_all()
        print(f"seeded in {time.monotonic() - started:.1f} s; starting gunicorn ...", flush=True)

        env = server_env(db_url, args.redis_url)
        logdir = tempfile.mkdtemp(prefix="bench-api-")
        server = Server(args, env, logdir)
        server.wait_ready()
        host = f"127.0.0.1:{server.port}"
        run = uuid.uuid4().hex[:10]
        health, charges, floor = Tally(), Tally(), Tally()
        make_health, make_charge = health_request(host), charge_request(host, tenant, run)
        make_floor = floor_request(host)

        async def load() -> None:
            common: dict[str, Any] = {"clients": args.clients, "server_group": server.proc.pid}
            await drive(server.port, make_health, health, seconds=args.warmup, measure=False, **common)
            await drive(server.port, make_charge, charges, seconds=args.warmup, measure=False, **common)
            await drive(server.port, make_floor, floor, seconds=args.warmup, measure=False, **common)
            for _ in range(args.rounds):
                await drive(server.port, make_health, health, seconds=args.seconds, measure=True, **common)
                await drive(server.port, make_charge, charges, seconds=args.seconds, measure=True, **common)
                await drive(server.port, make_floor, floor, seconds=args.seconds, measure=True, **common)

        print(f"gunicorn {server.config}; driving {args.clients} clients ...", flush=True)
        load_before = os.getloadavg()[0]
        asyncio.run(load())
        load_after = os.getloadavg()[0]

        exhaust = Tally()
        make_exhaust = charge_request(host, exhausted, run + "x")
        asyncio.run(
            drive(
                server.port,
                make_exhaust,
                exhaust,
                clients=args.exhaust_clients,
                seconds=120,
                measure=True,
                stop_on=402,
            )
        )
        server.stop()
        server_log = server.log_summary()

        load_check = ledger_check(tenant, charges)
        exhaust_check = ledger_check(exhausted, exhaust)
        exhaust_check.update(
            allowed_charges=args.exhaust_charges,
            refused_402=exhaust.statuses.get("402", 0),
            clients=args.exhaust_clients,
        )
        exhaust_check["no_overspend"] = exhaust_check["no_overspend"] and exhaust_check["answered_credits"] <= (
            args.exhaust_charges * exhausted.price
        )
        exhaust_check["exact"] = (  # and nothing refused that the pool could pay: K charged, every other answer 402
            exhaust_check["no_overspend"]
            and exhaust_check["answered_201"] == args.exhaust_charges
            and exhaust_check["final_balance"] == 0
            and set(exhaust.statuses) <= {"201", "402"}
        )
        from billing.reconcile import reconcile

        all_problems = reconcile()
        connections.close_all()

        profile = run_profile(env, tenant, args.profile_requests) if args.profile_requests else {}

        base, product, reference = health.summary(), charges.summary(), floor.summary()
        ratio = round(product["per_second"] / base["per_second"], 3) if base["per_second"] else 0.0
        floor_ratio = round(reference["per_second"] / base["per_second"], 3) if base["per_second"] else 0.0
        no_overspend = load_check["no_overspend"] and exhaust_check["no_overspend"] and not all_problems
        failed = ("5", "error")  # 5xx answers, and requests whose answer never came
        server_errors = sum(
            n
            for tally in (health, charges, floor, exhaust)
            for code, n in tally.statuses.items()
            if code.startswith(failed)
        )
        all_ok = no_overspend and exhaust_check["exact"] and server_errors == 0
        keep_log = bool(server_log.get("unhandled_requests"))  # the tracebacks of 500s are worth reading
        targets = {
            "ratio_min": TARGET_RATIO,
            "p99_max_ms": TARGET_P99_MS,
            "ratio_met": ratio >= TARGET_RATIO,
            "p99_met": product["p99_ms"] < TARGET_P99_MS,
        }
        targets["met"] = targets["ratio_met"] and targets["p99_met"]

        print()
        print(
            f"gunicorn {server.config['worker_class']} workers={server.config['workers']} "
            f"threads={server.config['threads']} keep-alive={server.config['keep_alive']}; "
            f"{args.clients} clients, {args.rounds} x {args.seconds:g} s per endpoint after {args.warmup:g} s warm-up; "
            f"{os.cpu_count()} CPUs shared by client, gunicorn and PostgreSQL; "
            f"load average {load_before:.1f} before, {load_after:.1f} after (other work on the machine skews both)"
        )
        header = f"{'endpoint':<22} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'ratio':>6}"
        print(header + "  client  statuses (warm-up included)")
        print_row(f"GET  {HEALTH_PATH}", base)
        print_row(f"POST {CHARGES_PATH}", product, f"{ratio:.3f}")
        print_row(f"POST {FLOOR_PATH}", reference, f"{floor_ratio:.3f}")
        print(
            f"  ({FLOOR_PATH}: the reference durable write, one row inserted and committed through the same stack "
            "and the same prepared-statement path: what the cheapest write endpoint reaches on this machine)"
        )
        print(
            f"target: ratio >= {TARGET_RATIO} {'met' if targets['ratio_met'] else 'MISSED'}; "
            f"p99 < {TARGET_P99_MS:g} ms {'met' if targets['p99_met'] else 'MISSED'}"
        )
        cpu_bound = cpu_report(base, product, reference)
        print(
            f"overspend check (load): {load_check['answered_201']} answered 201 = {load_check['answered_credits']} "
            f"credits; ledger {load_check['ledger_charges']} charges = {load_check['ledger_charged_credits']}; "
            f"balance consumed {load_check['balance_consumed']}; usage events {load_check['usage_events']}; "
            f"reconcile problems {len(load_check['reconcile_problems'])} -> {'OK' if load_check['exact'] else 'FAIL'}"
        )
        print(
            f"overspend check (exhaustion, {args.exhaust_clients} clients, pool of {args.exhaust_charges} charges): "
            f"{exhaust_check['answered_201']} charged, {exhaust_check['refused_402']} refused 402, final balance "
            f"{exhaust_check['final_balance']}, lowest stripe {exhaust_check['lowest_stripe']}, statuses "
            f"{dict(exhaust.statuses)} -> overspend {'none' if exhaust_check['no_overspend'] else 'FOUND'}, "
            f"{'exact' if exhaust_check['exact'] else 'NOT exact'}"
        )
        print(f"reconcile() over the whole database: {len(all_problems)} problems; 5xx/lost answers: {server_errors}")
        print(f"zero overspend: {'yes' if no_overspend else 'NO'}; all checks: {'OK' if all_ok else 'FAIL'}")
        if profile:
            print()
            for path, figures in profile.items():
                print(
                    f"in-process {path}: {figures['mean_total_ms']} ms per request = {figures['mean_db_ms']} ms in "
                    f"{figures['statements_per_request']} statements + {figures['mean_python_ms']} ms Python; "
                    f"CPU {figures['cpu_app_ms']} ms app + {figures['cpu_postgres_ms']} ms PostgreSQL"
                )
            for n, statement in enumerate(profile[CHARGES_PATH]["statements"], 1):
                print(f"  {n:>2}. {statement['mean_ms']:>7.3f} ms  {statement['sql'][:150]}")
            by_package = profile[CHARGES_PATH]["python_by_package_ms"]
            print(f"  Python own time per charge by package (ms, under cProfile): {by_package}")
        if server_log.get("unhandled_requests") or server_log.get("exceptions"):
            print(f"gunicorn log ({server.log}): {server_log}")

        report = {
            "config": {
                **server.config,
                "clients": args.clients,
                "members": args.members,
                "seconds": args.seconds,
                "warmup_seconds": args.warmup,
                "rounds": args.rounds,
                "cpus": os.cpu_count(),
                "loadavg_before": round(load_before, 2),
                "loadavg_after": round(load_after, 2),
                "database": args.db_name,
            },
            "baseline": {"endpoint": f"GET {HEALTH_PATH}", **base},
            "charges": {"endpoint": f"POST {CHARGES_PATH}", **product},
            "durable_write_floor": {"endpoint": f"POST {FLOOR_PATH}", **reference},
            "ratio": ratio,
            "floor_ratio": floor_ratio,
            **cpu_bound,
            "targets": targets,
            "overspend_check": load_check,
            "exhaustion_check": exhaust_check,
            "reconcile_problems_total": len(all_problems),
            "server_log": server_log,
            "zero_overspend": no_overspend,
            "server_errors": server_errors,
            "all_checks_ok": all_ok,
            "profile": profile,
        }
        print(json.dumps(report, sort_keys=True))
        exit_code = 0 if all_ok else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        exit_code = 130
    finally:
        if server is not None:
            server.stop()
        if logdir and not keep_log:
            shutil.rmtree(logdir, ignore_errors=True)
        if created_db and not args.keep_db:
            with contextlib.suppress(Exception):
                from django.db import connections as conns

                conns.close_all()
            database_drop(args.pg, args.db_name)
        elif created_db:
            print(f"kept database {args.db_name} ({db_url})", file=sys.stderr)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
