"""Benchmark: 50 concurrent Studio chat generations of 5 s each, and what they do to the Overview page.

Run as in production (docs/operations.md): the app under gunicorn with the production settings (4 sync workers,
access log on), a real Celery worker on the `studio` queue (by default `--pool=threads --concurrency 50`, the
production command), Redis as broker, PostgreSQL. The chat price is served by the `openai-compatible` provider (the
official `openai` SDK) against a fake OpenAI-compatible server on loopback, in a process of its own
(tests/usage/studio/fake_openai.py), which streams each reply as 50 chunks over `--provider-seconds` (5 s).

The script makes its own database (dropped and recreated each run), migrates it, seeds an organization with a
workspace, `--generations` members who chat (one generation each per round) and one more member who reads the
Overview page, and credits the run cannot exhaust. Each signs in through a session and takes the CSRF token from the
Studio page, like a browser. Then, for `--rounds` rounds:

1. idle: one client reads the Overview page (`/o/<org>/w/<ws>/`, where `/o/<org>/` lands a member) one request
   after another (`--pause` between them) for `--idle-seconds`;
2. load: every member POSTs a message at once (each on a connection of its own) while the same client keeps reading
   the Overview page until every turn is finished. With `--poll` (the default) each member's page also polls its
   turn every 500 ms, as htmx does in a browser, so the web processes carry what 50 open chat pages cost.

It prints the Overview page's p50/p95 idle and under load and their ratio (target p95 ≤ 1.5 x idle), and for the
generations: the POST's own latency; the time from the POST to the capture (`ChatTurn.finished_at`) and that time
minus the provider's 5 s (the overhead the app adds); the queue wait (POST answered → the provider got the request)
and the tail (the provider's last byte → captured), both from the fake server's own clock; then checks that every
turn was captured, the credits charged equal the turns' credits, no hold is left and the ledger reconciles. The
load average and the CPU used by gunicorn, the worker and PostgreSQL are printed: the machine's 2 cores are shared.
The last line is one JSON object with every figure.

With `--studio-web-workers N` the Studio's requests (send and polls) go to a second gunicorn of N workers, as a
path rule at the load balancer would send `/o/*/w/*/studio/` to a pool of its own; the Overview page stays on the
first one.

    .venv/bin/python bench/studio.py [--generations 50] [--provider-seconds 5] [--rounds 3] [--idle-seconds 8]
        [--pool threads --concurrency 50] [--no-poll] [--web-workers 4] [--studio-web-workers 0] [--keep-db]

Exit status 0 when every generation was captured and charged exactly and no request failed; the latency target is
reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_charges import (  # noqa: E402
    Server,
    cpu_sample,
    database_drop,
    database_recreate,
    database_url,
    django_setup,
    pg_admin,
    redis_check,
    server_env,
)

MODEL = "gpt-4o-mini"
CHUNKS = 50  # the fake provider's reply: 50 chunks spread over --provider-seconds
TARGET_RATIO = 1.5
POLL_SECONDS = 0.5  # htmx's `every 500ms` on a turn being written
REQUEST_TIMEOUT = 60.0
HTMX_POLL = ("HX-Request: true", "HX-Target: chat-live", "HX-Trigger: chat-live")  # what htmx sends: the partial


# --- the fake provider (a process of its own) ---------------------------------------------------------------------


def fake_provider_main(port_file: str, timings_file: str, seconds: float) -> None:
    """Serve tests/usage/studio/fake_openai.py on a free loopback port; log each chat request's start and end."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # taken by sigwait below
    from tests.usage.studio.fake_openai import FakeOpenAI

    fake = FakeOpenAI()
    fake.behaviour.tokens = [f"word{i} " for i in range(CHUNKS)]
    fake.behaviour.token_delay = seconds / CHUNKS
    fake.behaviour.prompt_tokens, fake.behaviour.completion_tokens = 40, CHUNKS
    answer = fake.answer
    log = open(timings_file, "a", buffering=1)  # noqa: SIM115 (open for the life of the process)

    def timed(handler: Any, body: dict[str, Any]) -> None:
        started = time.time()
        answer(handler, body)
        prompt = body["messages"][-1]["content"] if body.get("messages") else ""
        log.write(json.dumps({"prompt": prompt, "start": started, "end": time.time()}) + "\n")

    fake.answer = timed  # type: ignore[method-assign]
    fake.start()
    Path(port_file).write_text(fake.base_url)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    fake.stop()


class FakeProvider:
    def __init__(self, seconds: float, logdir: str) -> None:
        self.port_file = Path(logdir) / "fake.url"
        self.timings = Path(logdir) / "fake-timings.jsonl"
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, __file__, "--fake-provider", f"{self.port_file},{self.timings},{seconds}"],
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not self.port_file.exists() or not self.port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.05)
        self.base_url = self.port_file.read_text()

    def records(self) -> dict[str, dict[str, float]]:
        found = {}
        for line in self.timings.read_text().splitlines():
            record = json.loads(line)
            found[record["prompt"]] = record
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# --- the Celery worker ----------------------------------------------------------------------------------------------


class Worker:
    """`celery -A qolaba worker -Q <studio queue> --pool=<pool> --concurrency <n>`, as docs/operations.md runs it."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], queue: str, logdir: str) -> None:
        self.log = Path(logdir) / "worker.log"
        self.config = {"pool": args.pool, "concurrency": args.concurrency, "queue": queue}
        celery = Path(sys.executable).with_name("celery")
        command = [str(celery), "-A", "qolaba", "worker", "-Q", queue, f"--pool={args.pool}"]
        command += [f"--concurrency={args.concurrency}", "--loglevel=WARNING", f"-n=bench-studio-{queue}@%h"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        with self.log.open("ab") as output:
            self.proc = subprocess.Popen(  # noqa: S603
                command, env=env, cwd=ROOT, start_new_session=True, stdout=output, stderr=subprocess.STDOUT
            )

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


# --- HTTP (one request per connection, as a sync gunicorn worker answers) -----------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    seconds: float


async def http(
    port: int, method: str, path: str, *, cookies: str, body: bytes = b"", headers: tuple[str, ...] = ()
) -> Answer:
    host = f"127.0.0.1:{port}"
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "X-Forwarded-Proto: https",  # behind the TLS proxy (production settings)
        f"Origin: https://{host}",
        f"Referer: https://{host}{path}",
        f"Cookie: {cookies}",
        "Connection: close",
        *headers,
    ]
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        raw = await asyncio.wait_for(reader.read(-1), REQUEST_TIMEOUT)
    finally:
        writer.close()
    seconds = time.perf_counter() - started
    head, _, content = raw.partition(b"\r\n\r\n")
    header_lines = head.decode("latin-1").split("\r\n")
    received: dict[str, list[str]] = {}
    for line in header_lines[1:]:
        name, _, value = line.partition(":")
        received.setdefault(name.strip().lower(), []).append(value.strip())
    return Answer(int(header_lines[0].split()[1]), received, content, seconds)


@dataclass
class Member:
    email: str
    cookies: str
    csrf: str = ""


@dataclass
class Generation:
    member: str
    prompt: str
    post_start: float = 0.0  # wall clock (time.time), comparable with the server's timestamps on this machine
    post_end: float = 0.0
    post_seconds: float = 0.0
    status: int = 0
    thread_id: int = 0
    turn_id: int = 0
    polls: int = 0


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, answer: Answer) -> None:
        self.latencies.append(answer.seconds)
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 1) if ordered else 0.0


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": pct(values, 0.5),
        "p95_ms": pct(values, 0.95),
        "max_ms": pct(values, 1.0),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else 0.0,
    }


# --- seeding (in this process, the test settings, the same database) -----------------------------------------------


@dataclass
class Seeded:
    organization_id: int
    org_slug: str
    ws_slug: str
    chatters: list[tuple[str, int]]  # email, user id
    reader: tuple[str, int]
    initial_available: int


def seed(generations: int) -> Seeded:
    from billing import ledger
    from orgs.models import OrganizationRole, User
    from qolaba.lifecycle import organization_create, workspace_create
    from usage.catalog import prices_ensure_defaults
    from usage.models import Price, Provider
    from workspaces.models import WorkspaceRole
    from workspaces.services import member_add, workspace_member_set

    prices_ensure_defaults()
    Price.objects.filter(tool="chat", model=MODEL).update(
        provider=Provider.OPENAI_COMPATIBLE, provider_model="bench-5s"
    )
    owner = User.objects.create_user("owner@bench.example.com", None)
    organization = organization_create(name="Bench Studio", owner=owner)
    workspace = workspace_create(organization=organization, name="Research", created_by=owner)
    users = []
    for n in range(generations + 1):
        user = User.objects.create_user(f"member{n}@bench.example.com", None)
        member_add(organization=organization, user=user, role=OrganizationRole.MEMBER, actor=owner)
        workspace_member_set(workspace=workspace, user=user, role=WorkspaceRole.MEMBER, actor=owner)
        users.append((user.email, user.pk))
    ledger.credits_grant(organization=organization, amount=10**9, actor=None)
    return Seeded(
        organization_id=organization.pk,
        org_slug=organization.slug,
        ws_slug=workspace.slug,
        chatters=users[:-1],
        reader=users[-1],
        initial_available=ledger.available_credits(workspace, organization),
    )


def session_cookie(user_id: int) -> str:
    """A signed-in session for the user, made like the login view makes one (stored in the database)."""
    from django.conf import settings
    from django.test import Client

    from orgs.models import User

    client = Client()
    client.force_login(User.objects.get(pk=user_id))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def outcome(seeded: Seeded, generations: list[Generation], fake: dict[str, dict[str, float]], seconds: float) -> dict:
    """Per generation: POST → captured, minus the provider's time; queue wait and tail from the fake's clock."""
    from django.db.models import Sum

    from billing import ledger
    from billing.reconcile import reconcile
    from orgs.models import Organization
    from usage.models import UsageEvent, UsageStatus
    from usage.studio.models import ChatTurn
    from workspaces.models import Workspace

    turns = {turn.pk: turn for turn in ChatTurn.objects.filter(pk__in=[g.turn_id for g in generations])}
    to_captured, overhead, queue_wait, tail, provider = [], [], [], [], []
    statuses: dict[str, int] = {}
    for generation in generations:
        turn = turns.get(generation.turn_id)
        status = turn.status if turn else "missing"
        statuses[status] = statuses.get(status, 0) + 1
        if turn is None or turn.finished_at is None:
            continue
        finished = turn.finished_at.timestamp()
        to_captured.append(finished - generation.post_start)
        overhead.append(finished - generation.post_start - seconds)
        record = fake.get(generation.prompt)
        if record:
            queue_wait.append(record["start"] - generation.post_end)
            provider.append(record["end"] - record["start"])
            tail.append(finished - record["end"])
    organization = Organization.objects.get(pk=seeded.organization_id)
    workspace = Workspace.objects.get(organization=organization, slug=seeded.ws_slug)
    captured = UsageEvent.objects.filter(organization=organization, status=UsageStatus.CAPTURED)
    return {
        "turn_statuses": statuses,
        "post_to_captured": summary(to_captured),
        "overhead_beyond_provider": summary(overhead),
        "queue_wait": summary(queue_wait),
        "provider_time": summary(provider),
        "tail_after_provider": summary(tail),
        "all_turns_credits": int(ChatTurn.objects.aggregate(s=Sum("credits"))["s"] or 0),
        "captured_event_credits": int(captured.aggregate(s=Sum("credits"))["s"] or 0),
        "balance_consumed": seeded.initial_available - ledger.available_credits(workspace, organization),
        "held_left": UsageEvent.objects.filter(organization=organization, status=UsageStatus.HELD).count(),
        "reconcile_problems": len(reconcile(organization=organization)),
    }


# --- the run --------------------------------------------------------------------------------------------------------


async def overview_reader(port: int, path: str, reader: Member, samples: Samples, stop: asyncio.Event, pause: float):
    while not stop.is_set():
        samples.add(await http(port, "GET", path, cookies=reader.cookies))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


async def generate(port: int, studio: str, member: Member, generation: Generation, poll: bool, polls: Samples):
    from urllib.parse import urlencode

    body = urlencode({"csrfmiddlewaretoken": member.csrf, "price": MODEL, "prompt": generation.prompt}).encode()
    generation.post_start = time.time()
    answer = await http(port, "POST", f"{studio}chat/send/", cookies=member.cookies, body=body)
    generation.post_end = time.time()
    generation.post_seconds, generation.status = answer.seconds, answer.status
    location = (answer.headers.get("location") or [""])[0]
    found = re.search(r"/chat/(\d+)/#turn-(\d+)", location)
    if answer.status != 302 or found is None:
        return
    generation.thread_id, generation.turn_id = int(found.group(1)), int(found.group(2))
    turn_path = f"{studio}chat/{generation.thread_id}/turns/{generation.turn_id}/"
    while poll:  # the member's page: htmx polls the turn until it is finished
        await asyncio.sleep(POLL_SECONDS)
        answer = await http(port, "GET", turn_path, cookies=member.cookies, headers=HTMX_POLL)
        polls.add(answer)
        generation.polls += 1
        if answer.status != 200 or b'hx-trigger="every 500ms"' not in answer.body:
            return


def unfinished(turn_ids: list[int]) -> int:
    from django.db import connection

    from usage.studio.models import FINISHED_STATUSES, ChatTurn

    try:
        return ChatTurn.objects.filter(pk__in=turn_ids).exclude(status__in=FINISHED_STATUSES).count()
    finally:
        connection.close()


async def all_finished(generations: list[Generation], timeout: float = 300.0) -> None:
    """Wait until every turn is finished (read from the database, not over HTTP: no load on the web)."""
    ids = [g.turn_id for g in generations if g.turn_id]
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(unfinished, ids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def run_rounds(
    args: argparse.Namespace, port: int, studio_port: int, seeded: Seeded, members: list[Member], reader: Member
):
    overview = f"/o/{seeded.org_slug}/w/{seeded.ws_slug}/"
    studio = f"/o/{seeded.org_slug}/w/{seeded.ws_slug}/studio/"
    idle, loaded, polls = Samples(), Samples(), Samples()
    generations: list[Generation] = []
    run = uuid.uuid4().hex[:8]
    for number in range(args.rounds):
        stop = asyncio.Event()
        task = asyncio.create_task(overview_reader(port, overview, reader, idle, stop, args.pause))
        await asyncio.sleep(args.idle_seconds)
        stop.set()
        await task
        batch = [Generation(m.email, f"bench {run} round {number} from {m.email}: plan the launch") for m in members]
        stop = asyncio.Event()
        task = asyncio.create_task(overview_reader(port, overview, reader, loaded, stop, args.pause))
        await asyncio.gather(
            *(generate(studio_port, studio, m, g, args.poll, polls) for m, g in zip(members, batch, strict=True))
        )
        await all_finished(batch)
        stop.set()
        await task
        generations += batch
        print(
            f"round {number + 1}: overview idle p95 {pct(idle.latencies, 0.95)} ms so far, "
            f"loaded p95 {pct(loaded.latencies, 0.95)} ms so far; POSTs {[g.status for g in batch].count(302)}/"
            f"{len(batch)} answered 302",
            flush=True,
        )
    return idle, loaded, polls, generations


async def prepare(port: int, studio: str, members: list[Member]) -> None:
    """Open the Studio page like a browser: the CSRF cookie and token (and a warm web process)."""
    for member in members:
        answer = await http(port, "GET", studio, cookies=member.cookies)
        if answer.status != 200:
            raise RuntimeError(f"{studio} answered {answer.status} {answer.headers.get('location')} for {member.email}")
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', answer.body)
        cookie = next((c for c in answer.headers.get("set-cookie", []) if c.startswith("csrftoken=")), "")
        if found is None or not cookie:
            raise RuntimeError("no CSRF token on the Studio page")
        member.csrf = found.group(1).decode()
        member.cookies += "; " + cookie.split(";")[0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--generations", type=int, default=50, help="concurrent chat generations per round")
    parser.add_argument("--provider-seconds", type=float, default=5.0, help="how long the fake provider streams")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=8.0, help="idle Overview reads per round")
    parser.add_argument("--pause", type=float, default=0.1, help="between two Overview reads")
    parser.add_argument("--no-poll", dest="poll", action="store_false", help="members' pages do not poll their turn")
    parser.add_argument("--pool", choices=("threads", "prefork", "solo", "gevent"), default="threads")
    parser.add_argument("--concurrency", type=int, default=50, help="the studio worker's slots")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument(
        "--studio-web-workers",
        type=int,
        default=0,
        help="serve the Studio's pages (send, polls) from a second gunicorn of this many workers (0: the same one)",
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="server, user (trust auth)")
    parser.add_argument("--db-name", default="qolaba_bench_studio")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--fake-provider", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.fake_provider:
        port_file, timings, seconds = args.fake_provider.split(",")
        fake_provider_main(port_file, timings, float(seconds))
        return

    redis_check(args.redis_url)
    pg_admin(args.pg).close()
    db_url = database_url(args.pg, args.db_name)
    server: Server | None = None
    studio_server: Server | None = None
    worker: Worker | None = None
    fake: FakeProvider | None = None
    created_db, logdir, exit_code = False, "", 1

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

        call_command("migrate", verbosity=0)
        from django.conf import settings

        # The sessions made here must be valid in gunicorn: they are signed with the server's key.
        secret = settings.SECRET_KEY = secrets.token_urlsafe(64)
        seeded = seed(args.generations)
        chatters = [Member(email, session_cookie(user_id)) for email, user_id in seeded.chatters]
        reader = Member(seeded.reader[0], session_cookie(seeded.reader[1]))
        connections.close_all()
        print(f"seeded in {time.monotonic() - started:.1f} s; starting the provider, gunicorn and the worker ...")

        logdir = tempfile.mkdtemp(prefix="bench-studio-")
        fake = FakeProvider(args.provider_seconds, logdir)
        queue = f"bench-studio-{uuid.uuid4().hex[:8]}"
        env = server_env(db_url, args.redis_url)
        env.update(
            SECRET_KEY=secret,
            CELERY_STUDIO_QUEUE=queue,
            CELERY_TASK_DEFAULT_QUEUE=f"{queue}-default",  # nothing else of the run's may land on a shared queue
            STUDIO_OPENAI_BASE_URL=fake.base_url,
            STUDIO_OPENAI_API_KEY="sk-bench",
        )
        # The release step's collectstatic (docs/operations.md): the production settings serve hashed names.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], env=env, cwd=ROOT, check=True
        )
        server = Server(
            argparse.Namespace(worker_class="sync", workers=args.web_workers, threads=1, access_log=True), env, logdir
        )
        worker = Worker(args, env, queue, logdir)
        server.wait_ready()
        if args.studio_web_workers:  # the Studio's paths on a pool of their own (a path rule at the load balancer)
            studio_logdir = Path(logdir) / "studio-web"
            studio_logdir.mkdir()
            studio_server = Server(
                argparse.Namespace(worker_class="sync", workers=args.studio_web_workers, threads=1, access_log=True),
                env,
                str(studio_logdir),
            )
            studio_server.wait_ready()
        port = server.port
        studio = f"/o/{seeded.org_slug}/w/{seeded.ws_slug}/studio/"
        studio_port = studio_server.port if studio_server else port
        asyncio.run(prepare(studio_port, studio, [*chatters, reader]))

        # Warm-up: one generation end to end (the worker is up and consuming once it is captured).
        warm = Generation(reader.email, "warm-up")
        asyncio.run(generate(studio_port, studio, reader, warm, False, Samples()))
        if warm.status != 302:
            raise RuntimeError(f"the warm-up POST answered {warm.status}:\n{server.log_tail()}")

        from usage.studio.models import ChatTurn

        deadline = time.monotonic() + 60
        while ChatTurn.objects.get(pk=warm.turn_id).status != "done":
            if time.monotonic() > deadline or worker.proc.poll() is not None:
                raise RuntimeError(f"the warm-up turn did not finish:\n{worker.log_tail()}")
            time.sleep(0.2)
        connections.close_all()

        print(
            f"gunicorn {server.config['workers']} sync workers"
            f"{f' + {args.studio_web_workers} for the Studio paths' if args.studio_web_workers else ''}; "
            f"celery worker {worker.config}; "
            f"{args.generations} generations x {args.rounds} rounds; polling {'on' if args.poll else 'off'}",
            flush=True,
        )
        load_before = os.getloadavg()
        cpu_before = cpu_sample(server.proc.pid)
        worker_cpu_before = _group_cpu(worker.proc.pid)
        wall_before = time.monotonic()
        idle, loaded, polls, generations = asyncio.run(run_rounds(args, port, studio_port, seeded, chatters, reader))
        wall = time.monotonic() - wall_before
        cpu_after = cpu_sample(server.proc.pid)
        worker_cpu = _group_cpu(worker.proc.pid) - worker_cpu_before
        load_after = os.getloadavg()

        figures = outcome(seeded, generations, fake.records(), args.provider_seconds)
        posts = [g.post_seconds for g in generations]
        post_statuses = {str(s): [g.status for g in generations].count(s) for s in {g.status for g in generations}}
        idle_s, loaded_s = summary(idle.latencies), summary(loaded.latencies)
        ratio_p95 = round(loaded_s["p95_ms"] / idle_s["p95_ms"], 2) if idle_s["p95_ms"] else 0.0
        ratio_p50 = round(loaded_s["p50_ms"] / idle_s["p50_ms"], 2) if idle_s["p50_ms"] else 0.0
        errors = sum(n for s, n in (idle.statuses | loaded.statuses).items() if s != 200)
        errors += sum(n for s, n in polls.statuses.items() if s != 200) + len(generations) - post_statuses.get("302", 0)
        captured = figures["turn_statuses"].get("done", 0) == len(generations)
        exact = (
            captured
            and figures["all_turns_credits"] == figures["captured_event_credits"] == figures["balance_consumed"]
            and figures["held_left"] == 0
            and figures["reconcile_problems"] == 0
        )
        cpu = {
            "gunicorn_s": round(cpu_after["gunicorn"] - cpu_before["gunicorn"], 1),
            "worker_s": round(worker_cpu, 1),
            "postgresql_s": round(cpu_after["postgresql"] - cpu_before["postgresql"], 1),
            "machine_busy_pct": round(
                100 * (cpu_after["busy"] - cpu_before["busy"]) / (cpu_after["all"] - cpu_before["all"]), 1
            ),
            "wall_s": round(wall, 1),
        }

        print()
        print(
            f"{os.cpu_count()} CPUs shared with other work; load average (1/5/15 min) "
            f"{'/'.join(f'{x:.2f}' for x in load_before)} before, {'/'.join(f'{x:.2f}' for x in load_after)} after"
        )
        print(f"{'Overview page':<34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for label, s in (("idle", idle_s), (f"{args.generations} generations running", loaded_s)):
            print(f"  {label:<32} {s['n']:>5} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8}")
        print(
            f"  ratio loaded/idle: p50 {ratio_p50}, p95 {ratio_p95} (target p95 <= {TARGET_RATIO}: "
            f"{'met' if ratio_p95 <= TARGET_RATIO else 'MISSED'})"
        )
        if args.poll:
            p = summary(polls.latencies)
            print(f"  turn polls (every 500 ms per open chat): {p['n']}, p50 {p['p50_ms']} ms, p95 {p['p95_ms']} ms")
        print(f"{'generations':<34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        rows = [
            ("POST send (web request)", summary(posts)),
            ("POST -> captured", figures["post_to_captured"]),
            (f"overhead beyond provider's {args.provider_seconds:g} s", figures["overhead_beyond_provider"]),
            ("  queue wait (POST answered->provider)", figures["queue_wait"]),
            ("  provider's own time", figures["provider_time"]),
            ("  tail (provider done->captured)", figures["tail_after_provider"]),
        ]
        for label, s in rows:
            print(f"  {label:<32} {s['n']:>5} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8}")
        print(
            f"turns {figures['turn_statuses']}; POST statuses {post_statuses}; credits: turns "
            f"{figures['all_turns_credits']} = captured usage events {figures['captured_event_credits']} = balance "
            f"consumed {figures['balance_consumed']}; holds left {figures['held_left']}; reconcile problems "
            f"{figures['reconcile_problems']} -> {'exact' if exact else 'NOT exact'}; failed requests {errors}"
        )
        print(
            f"CPU over the measured rounds ({cpu['wall_s']} s): gunicorn {cpu['gunicorn_s']} s, worker "
            f"{cpu['worker_s']} s, PostgreSQL {cpu['postgresql_s']} s (every database of the server; backends that "
            f"ended meanwhile drop out, so it can come out low or negative); machine busy {cpu['machine_busy_pct']} %"
        )
        report = {
            "config": {
                "generations": args.generations,
                "provider_seconds": args.provider_seconds,
                "rounds": args.rounds,
                "idle_seconds": args.idle_seconds,
                "poll": args.poll,
                "web": f"gunicorn sync x{args.web_workers}",
                "studio_web": f"gunicorn sync x{args.studio_web_workers}" if args.studio_web_workers else "the same",
                "worker": worker.config,
                "cpus": os.cpu_count(),
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in load_after],
            },
            "overview_idle": idle_s,
            "overview_loaded": loaded_s,
            "overview_ratio_p50": ratio_p50,
            "overview_ratio_p95": ratio_p95,
            "target_ratio": TARGET_RATIO,
            "target_met": ratio_p95 <= TARGET_RATIO,
            "turn_polls": summary(polls.latencies),
            "post": summary(posts),
            "post_statuses": post_statuses,
            **figures,
            "cpu": cpu,
            "failed_requests": errors,
            "exact": exact,
        }
        print(json.dumps(report, sort_keys=True))
        exit_code = 0 if exact and errors == 0 else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        exit_code = 130
    finally:
        for process in (server, studio_server, worker, fake):
            if process is not None:
                process.stop()
        if logdir and exit_code == 0:
            shutil.rmtree(logdir, ignore_errors=True)
        elif logdir:
            print(f"logs kept in {logdir}", file=sys.stderr)
        if created_db and not args.keep_db:
            with contextlib.suppress(Exception):
                from django.db import connections as conns

                conns.close_all()
            database_drop(args.pg, args.db_name)
    sys.exit(exit_code)


def _group_cpu(group: int) -> float:
    """CPU seconds used so far by the processes of a process group (the Celery worker and its children)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == group:
            used += (int(fields[11]) + int(fields[12])) / tick
    return used


if __name__ == "__main__":
    main()
