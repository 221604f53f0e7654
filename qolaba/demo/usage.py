"""The demo's AI activity: a few months of usage and history (its API keys and pictures: `qolaba.demo.assets`).

Usage goes through the real metering services (`usage_charge`, holds), so balances, the ledger and history stay
consistent; what was just written is then backdated in bulk (usage events, history items, ledger transactions
and holds, with the budget period of the new time). Spend counters only exist for monthly limits and only for
the period a spend counts in, so spending of a member or workspace with a limit is kept in the current period
(earlier work in that workspace is done by colleagues without one) and well under the limit.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.core.files.base import ContentFile
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Field, Model
from django.utils.timezone import now

from billing.ledger import HOLD_TTL_DEFAULT, HOLD_TTL_MAX, available_credits, period_bounds
from billing.models import Hold, LedgerTransaction, TransactionKind, WorkspaceLimit
from orgs.models import CreditMode, Membership, Organization, OrganizationRole, User
from qolaba.demo.assets import demo_png, demo_wav, picture_size
from qolaba.demo.content import DEFAULT_PROFILE, MODELS, PROFILES, Sample, UsageProfile
from qolaba.tools import Tool
from usage.models import Price, UsageEvent, UsageStatus
from usage.services import HistoryContent, usage_charge, usage_hold_capture, usage_hold_place, usage_hold_release
from usage.statements import StatementNotDue, month_of, next_month, previous_month, statement_close
from workspaces.models import HistoryItem, Workspace, WorkspaceUserObjectPermission

K = TypeVar("K")

DEMO_DAYS = 105  # about three and a half months: always spans at least four calendar months
IMAGES_PER_WORKSPACE = 15  # the newest image items get a real (small, generated) PNG
TUNES_PER_WORKSPACE = 3  # and the newest music items a short generated tune (WAV)
CREDIT_SHARE = 0.6  # of what a workspace can spend, at most this much goes to the demo's past usage
LIMIT_SHARE = 0.4  # of a monthly limit, at most this much is used in the current period
HOLD_SHARE = 0.5  # of video and music generations, this many go through a hold (long jobs)

# Local working hours, busiest late morning and mid-afternoon; a little evening work.
HOURS = list(range(7, 23))
HOUR_WEIGHTS = [1, 4, 8, 10, 11, 9, 6, 9, 10, 9, 7, 4, 2, 2, 1, 1]
WEEKDAY_WEIGHTS = [1.0, 1.1, 1.1, 1.0, 0.85, 0.12, 0.08]  # Monday … Sunday
ROLE_WEIGHTS = {OrganizationRole.OWNER: 0.5, OrganizationRole.ADMIN: 1.0, OrganizationRole.MEMBER: 2.0}


def _rng(seed: int | str) -> random.Random:
    return random.Random(seed)  # noqa: S311 (deterministic demo data, not secrets)


def demo_key(workspace: Workspace, n: int) -> str:
    return f"demo-{workspace.pk}-{n}"


def demo_key_prefix(workspace: Workspace) -> str:
    return f"demo-{workspace.pk}-"


# --- planning ------------------------------------------------------------------------------------------------


@dataclass
class Planned:
    at: datetime
    user: User
    price: Price
    units: int
    sample: Sample
    metadata: dict[str, Any]
    via_hold: bool = False
    release: bool = False  # a long job that failed: its hold is released
    pending: bool = False  # a long job still running: its hold stays pending

    @property
    def credits(self) -> int:
        return self.price.credits_per_unit * self.units

    @property
    def tool(self) -> str:
        return self.price.tool


@dataclass(frozen=True)
class Limits:
    """The monthly limits of one workspace that move spend counters (see billing.ledger.spend._limit_moves)."""

    workspace: int | None  # the workspace's own limit (it counts in every mode)
    members: dict[int, int]  # user id -> limit

    def applying_to(self, user: User) -> list[tuple[int | None, int]]:
        found: list[tuple[int | None, int]] = []
        if self.workspace is not None:
            found.append((None, self.workspace))
        if user.pk in self.members:
            found.append((user.pk, self.members[user.pk]))
        return found


@dataclass
class WorkspacePlan:
    workspace: Workspace
    profile: UsageProfile
    limits: Limits
    rng: random.Random
    events: list[Planned] = field(default_factory=list)
    unlimited: dict[User, float] = field(default_factory=dict)  # spenders no monthly limit applies to -> weight


def _limits(workspace: Workspace, organization: Organization) -> Limits:
    own = None
    members = {}
    for user_id, monthly_limit in WorkspaceLimit.objects.filter(workspace=workspace).values_list(
        "user_id", "monthly_limit"
    ):
        if user_id is None:
            own = monthly_limit
        else:
            members[user_id] = monthly_limit
    return Limits(own, members)


def _spenders(workspace: Workspace, organization: Organization) -> list[tuple[User, OrganizationRole]]:
    """Who may spend in the workspace (the `use_workspace` rows: viewers have none), with their org role."""
    rows = WorkspaceUserObjectPermission.objects.filter(
        content_object=workspace, permission__codename="use_workspace", user__is_active=True
    ).select_related("user")
    users = {row.user.pk: row.user for row in rows}
    roles = dict(
        Membership.objects.active()
        .filter(organization=organization, user_id__in=list(users))
        .values_list("user_id", "role")
    )
    return [(users[pk], OrganizationRole(roles[pk])) for pk in sorted(users) if pk in roles]


def _weighted(rng: random.Random, weights: Mapping[K, float]) -> K:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[key] for key in keys])[0]


def _metadata(tool: str, sample: Sample, units: int, rng: random.Random) -> dict[str, Any]:
    metadata = dict(sample.metadata)
    if tool == Tool.CHAT:
        metadata["tokens"] = (len(sample.prompt) + len(sample.output)) // 4 + rng.randrange(40, 400)
    elif tool == Tool.IMAGE:
        metadata["seed"] = rng.randrange(1, 2**31)
        if units > 1:
            metadata["variations"] = units
    elif tool == Tool.VIDEO:
        metadata["duration_s"] = units
        metadata.setdefault("resolution", "1080p")
    return metadata


@dataclass
class Period:
    """The organization's calendar and the demo's time range."""

    tz: ZoneInfo
    start: datetime
    end: datetime
    current_start: datetime  # the current budget period (spend counters live here)


def _period(organization: Organization, at: datetime) -> Period:
    tz = ZoneInfo(organization.timezone)
    first_day, _ = period_bounds(organization, at)
    current_start = datetime(first_day.year, first_day.month, 1, tzinfo=tz)
    return Period(
        tz=tz, start=at - timedelta(days=DEMO_DAYS), end=at - timedelta(minutes=10), current_start=current_start
    )


def _moments(rng: random.Random, period: Period, count: int, growth: float) -> list[datetime]:
    """`count` instants in working hours, weekday-heavy, busier towards the end."""
    first = period.start.astimezone(period.tz).date()
    last = period.end.astimezone(period.tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    span = max(1, len(days) - 1)
    weights = [WEEKDAY_WEIGHTS[day.weekday()] * (1 + (growth - 1) * i / span) for i, day in enumerate(days)]
    moments = []
    for day in rng.choices(days, weights=weights, k=count):
        hour = rng.choices(HOURS, weights=HOUR_WEIGHTS)[0]
        local = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=period.tz)
        if local >= period.end:
            local = period.end - timedelta(minutes=rng.randrange(5, 240))
        if local < period.start:
            local = period.start + timedelta(minutes=rng.randrange(5, 240))
        moments.append(local)
    return moments


def _model(
    tool: str, sample: Sample, profile: UsageProfile, prices: dict[tuple[str, str], Price], rng: random.Random
) -> Price | None:
    if sample.model is not None and (tool, sample.model) in prices:
        return prices[tool, sample.model]
    choices = {m: w for m, w in profile.models.get(tool, MODELS[tool]).items() if (tool, m) in prices}
    if not choices:
        return None  # staff removed every price of this tool
    return prices[tool, _weighted(rng, choices)]


def _plan_workspace(
    *,
    workspace: Workspace,
    organization: Organization,
    profile: UsageProfile,
    prices: dict[tuple[str, str], Price],
    period: Period,
) -> WorkspacePlan:
    """Who generates what, when: the workspace's usage before it is trimmed to the credits it has."""
    limits = _limits(workspace, organization)
    rng = _rng(f"qolaba-demo/{organization.slug}/{workspace.name}")
    plan = WorkspacePlan(workspace, profile, limits, rng)
    spenders = _spenders(workspace, organization)
    if not spenders:
        return plan
    people = {user.pk: profile.people.get(user.email, ROLE_WEIGHTS[role]) for user, role in spenders}
    users = {user.pk: user for user, _ in spenders}
    unlimited = [pk for pk in people if not limits.applying_to(users[pk])]
    plan.unlimited = {users[pk]: people[pk] for pk in unlimited}

    mix = {tool: weight for tool, weight in profile.mix.items() if profile.samples.get(tool)}
    for at in sorted(_moments(rng, period, profile.events, profile.growth)):
        user = users[_weighted(rng, people)]
        if limits.applying_to(user) and at < period.current_start:
            # Spend counters are kept for the current period only: earlier work goes to a colleague without a limit.
            if not unlimited:
                continue
            user = users[_weighted(rng, {pk: people[pk] for pk in unlimited})]
        tool = _weighted(rng, mix)
        sample = rng.choice(profile.samples[tool])
        price = _model(tool, sample, profile, prices, rng)
        if price is None:
            continue
        units = rng.choice(sample.units)
        plan.events.append(
            Planned(
                at=at,
                user=user,
                price=price,
                units=units,
                sample=sample,
                metadata=_metadata(tool, sample, units, rng),
                via_hold=tool in (Tool.VIDEO, Tool.MUSIC) and rng.random() < HOLD_SHARE,
            )
        )
    return plan


def _trim(plan: WorkspacePlan, *, budget: int, period: Period) -> None:
    """Drop past generations (the expensive ones more likely) until the plan fits the credits and monthly limits.
    A running job is never dropped."""
    rng, limits = plan.rng, plan.limits

    def drop_one(candidates: list[Planned]) -> None:
        candidates = [event for event in candidates if not event.pending]
        if candidates:
            victim = rng.choices(candidates, weights=[event.credits for event in candidates])[0]
            plan.events.remove(victim)

    while any(not e.pending for e in plan.events) and sum(e.credits for e in plan.events) > budget:
        drop_one(plan.events)
    limit_keys = {key for event in plan.events for key in limits.applying_to(event.user)}
    for user_id, monthly_limit in sorted(limit_keys, key=lambda key: (key[0] is not None, key[0] or 0)):

        def counted(event: Planned, user_id: int | None = user_id) -> bool:
            return event.at >= period.current_start and (user_id is None or event.user.pk == user_id)

        while sum(e.credits for e in plan.events if counted(e)) > monthly_limit * LIMIT_SHARE:
            before = len(plan.events)
            drop_one([event for event in plan.events if counted(event)])
            if len(plan.events) == before:
                break


def _add_running_job(plans: list[WorkspacePlan], prices: dict[tuple[str, str], Price], period: Period) -> None:
    """A video still rendering in the busiest workspace that makes videos: its hold stays pending."""
    candidates = [plan for plan in plans if plan.profile.samples.get(Tool.VIDEO) and plan.unlimited]
    if not candidates:
        return
    plan = max(candidates, key=lambda p: len(p.events))
    rng = plan.rng
    sample = rng.choice(plan.profile.samples[Tool.VIDEO])
    price = _model(Tool.VIDEO, sample, plan.profile, prices, rng)
    if price is None:
        return
    units = max(sample.units)
    plan.events.append(
        Planned(
            at=period.end + timedelta(minutes=rng.randrange(1, 9)),  # started a few minutes ago
            user=_weighted(rng, plan.unlimited),
            price=price,
            units=units,
            sample=sample,
            metadata=_metadata(Tool.VIDEO, sample, units, rng),
            via_hold=True,
            pending=True,
        )
    )


def _mark_failed_job(plans: list[WorkspacePlan], rng: random.Random) -> None:
    """One long job of the organization's past failed: its hold was released (and it left no history)."""
    held = [
        event
        for plan in plans
        for event in plan.events
        if event.via_hold and not event.pending and not plan.limits.applying_to(event.user)
    ]
    if held:
        rng.choice(held).release = True


# --- writing -------------------------------------------------------------------------------------------------


@dataclass
class Backdating:
    """What was just written and the times it should carry."""

    organization: Organization
    events: list[UsageEvent] = field(default_factory=list)
    transactions: dict[int, datetime] = field(default_factory=dict)  # ledger transaction id -> when
    periods: dict[int, date] = field(default_factory=dict)  # ledger transaction id -> its budget period
    holds: list[Hold] = field(default_factory=list)
    history: dict[int, datetime] = field(default_factory=dict)  # usage event id -> when its item was written

    def apply(self, current_period: date) -> None:
        ops = connection.ops
        _update_rows(
            UsageEvent,
            ["created_at", "settled_at"],
            [
                (ops.adapt_datetimefield_value(e.created_at), ops.adapt_datetimefield_value(e.settled_at), e.pk)
                for e in self.events
            ],
        )
        _update_rows(
            Hold,
            ["created_at", "expires_at", "settled_at", "period_start"],
            [
                (
                    ops.adapt_datetimefield_value(h.created_at),
                    ops.adapt_datetimefield_value(h.expires_at),
                    ops.adapt_datetimefield_value(h.settled_at),
                    ops.adapt_datefield_value(h.period_start),
                    h.pk,
                )
                for h in self.holds
            ],
        )
        rows = []
        for pk, period_start, counted in LedgerTransaction.objects.filter(pk__in=list(self.transactions)).values_list(
            "pk", "period_start", "counted"
        ):
            if period_start is not None:
                if counted and self.periods[pk] != current_period:
                    raise CommandError(f"Demo spend {pk} moved spend counters: it cannot leave the current period.")
                period_start = self.periods[pk]
            rows.append(
                (ops.adapt_datetimefield_value(self.transactions[pk]), ops.adapt_datefield_value(period_start), pk)
            )
        _update_rows(LedgerTransaction, ["created_at", "period_start"], rows)
        _update_rows(
            HistoryItem,
            ["created_at"],
            [(ops.adapt_datetimefield_value(at), event_id) for event_id, at in self.history.items()],
            key="usage_event_id",
        )


def _update_rows(model: type[Model], fields: list[str], rows: list[tuple[Any, ...]], key: str = "id") -> None:
    """UPDATE one row per tuple (the new values of `fields`, then `key`): one statement run many times, which
    both databases do much faster than a bulk_update of hundreds of CASE branches."""
    if not rows:
        return

    def column(name: str) -> str:
        field = model._meta.get_field(name)
        assert isinstance(field, Field)  # noqa: S101 (concrete fields of our own models)
        assert field.column  # noqa: S101
        return connection.ops.quote_name(field.column)

    assignments = ", ".join(f"{column(name)} = %s" for name in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE {column(key)} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _render_time(event: Planned, rng: random.Random) -> timedelta:
    durations: dict[str, tuple[int, int]] = {Tool.VIDEO: (60, 240), Tool.MUSIC: (20, 90)}
    seconds = durations.get(event.tool, (5, 30))
    return timedelta(seconds=rng.randint(*seconds))


def _write_workspace(plan: WorkspacePlan, backdating: Backdating) -> list[tuple[Planned, int]]:
    """Run every planned generation through the metering services; returns (plan, event id) of images and tunes."""
    workspace, organization = plan.workspace, backdating.organization
    rng = _rng(f"qolaba-demo/{organization.slug}/{workspace.name}/write")
    images: list[tuple[Planned, int]] = []
    for n, planned in enumerate(sorted(plan.events, key=lambda e: e.at), start=1):
        content = HistoryContent(
            prompt=planned.sample.prompt, output_text=planned.sample.output, metadata=planned.metadata
        )
        key = demo_key(workspace, n)
        period_start = period_bounds(organization, planned.at)[0]
        if not planned.via_hold:
            event = usage_charge(
                workspace=workspace,
                user=planned.user,
                price=planned.price,
                units=planned.units,
                idempotency_key=key,
                history=content,
            ).event
            event.created_at = event.settled_at = planned.at
            backdating.transactions[event.ledger_transaction_id] = planned.at
            backdating.periods[event.ledger_transaction_id] = period_start
            backdating.history[event.pk] = planned.at
        else:
            ttl = HOLD_TTL_MAX if planned.pending else HOLD_TTL_DEFAULT
            placed = usage_hold_place(
                workspace=workspace,
                user=planned.user,
                price=planned.price,
                units=planned.units,
                ttl=ttl,
                idempotency_key=key,
                history=content,
            ).event
            hold = placed.hold
            assert hold is not None  # noqa: S101 (a placed hold always has one)
            if planned.pending:
                continue  # still running: written now, nothing to backdate
            settled = planned.at + _render_time(planned, rng)
            if planned.release:
                event = usage_hold_release(event=placed)
            else:
                event = usage_hold_capture(event=placed, workspace=workspace).event
                backdating.history[event.pk] = settled
            event.created_at, event.settled_at = planned.at, settled
            hold.created_at, hold.expires_at, hold.settled_at = planned.at, planned.at + ttl, settled
            hold.period_start = period_start
            backdating.holds.append(hold)
            backdating.transactions[hold.hold_transaction_id] = planned.at
            backdating.periods[hold.hold_transaction_id] = period_start
            backdating.transactions[event.ledger_transaction_id] = settled
            backdating.periods[event.ledger_transaction_id] = period_start
        backdating.events.append(event)
        if planned.tool in (Tool.IMAGE, Tool.MUSIC) and event.status == UsageStatus.CAPTURED:
            images.append((planned, event.pk))
    return images


def _attach_media(outputs: list[tuple[Planned, int]]) -> int:
    """Give the newest image and music items of the workspace their file (a PNG or a WAV per item, deterministic)."""
    newest = [
        pair
        for tool, keep in ((Tool.IMAGE, IMAGES_PER_WORKSPACE), (Tool.MUSIC, TUNES_PER_WORKSPACE))
        for pair in sorted((pair for pair in outputs if pair[0].tool == tool), key=lambda pair: pair[0].at)[-keep:]
    ]
    items = {
        item.usage_event_id: item for item in HistoryItem.objects.filter(usage_event_id__in=[pk for _, pk in newest])
    }
    for planned, event_id in newest:
        item = items[event_id]
        seed = f"{planned.sample.prompt}/{planned.metadata.get('seed', event_id)}"
        if planned.tool == Tool.MUSIC:
            item.media.save(f"demo-{event_id}.wav", ContentFile(demo_wav(seed)), save=False)
            item.media_content_type = "audio/wav"
        else:
            width, height = picture_size(str(planned.metadata.get("aspect_ratio", "1:1")))
            item.media.save(f"demo-{event_id}.png", ContentFile(demo_png(seed, width, height)), save=False)
            item.media_content_type = "image/png"
        item.save(update_fields=["media", "media_content_type"])
    return len(newest)


@dataclass(frozen=True)
class UsageSeeded:
    events: int = 0
    files: int = 0  # history items given a generated picture or tune
    workspaces: int = 0


def _price_list() -> dict[tuple[str, str], Price]:
    return {(price.tool, price.model): price for price in Price.objects.active()}


def usage_seed(*, organization: Organization) -> UsageSeeded:
    """A few months of usage and history in every workspace of the organization that has no demo usage yet."""
    organization.refresh_from_db()
    at = now()
    period = _period(organization, at)
    workspaces = [
        workspace
        for workspace in Workspace.objects.live().filter(organization=organization).select_related("organization")
        if not UsageEvent.objects.filter(
            workspace=workspace, idempotency_key__startswith=demo_key_prefix(workspace)
        ).exists()
    ]
    if not workspaces:
        return UsageSeeded()
    prices = _price_list()
    plans = [
        _plan_workspace(
            workspace=workspace,
            organization=organization,
            profile=PROFILES.get(workspace.name, DEFAULT_PROFILE),
            prices=prices,
            period=period,
        )
        for workspace in workspaces
    ]
    _add_running_job(plans, prices, period)
    sharing = len(workspaces) if organization.credit_mode == CreditMode.SHARED else 1  # shared: one pool for all
    for plan in plans:
        _trim(plan, budget=int(available_credits(plan.workspace, organization) * CREDIT_SHARE / sharing), period=period)
    _mark_failed_job(plans, _rng(f"qolaba-demo/{organization.slug}/failed-job"))

    backdating = Backdating(organization)
    files = 0
    for plan in plans:
        files += _attach_media(_write_workspace(plan, backdating))
    backdating.apply(current_period=period_bounds(organization, at)[0])
    _backdate_funding(organization, before=period.start)
    return UsageSeeded(
        events=sum(len(plan.events) for plan in plans), files=files, workspaces=sum(bool(p.events) for p in plans)
    )


FUNDING_KINDS = (
    TransactionKind.GRANT,
    TransactionKind.PURCHASE,
    TransactionKind.RENEWAL,
    TransactionKind.TRANSFER,
    TransactionKind.BANK_UNLOCK,
)


def _backdate_funding(organization: Organization, *, before: datetime) -> None:
    """The plan's credits and the budgets were granted and moved just now, after the (backdated) usage they paid
    for: date them an hour before the demo's first generation, in their order, so that the ledger tells the months
    as they would have happened (a workspace budget never looks negative on a statement)."""
    start = before - timedelta(hours=1)
    funding = LedgerTransaction.objects.filter(
        organization=organization, kind__in=FUNDING_KINDS, created_at__gt=start
    ).order_by("created_at", "pk")
    ops = connection.ops
    rows = [
        (ops.adapt_datetimefield_value(start + timedelta(seconds=n)), pk)
        for n, pk in enumerate(funding.values_list("pk", flat=True))
    ]
    _update_rows(LedgerTransaction, ["created_at"], rows)


def statements_seed(*, organization: Organization, at: datetime | None = None) -> int:
    """Close the statements of the months the demo's usage covers that are over (the beat task closes later ones),
    through the service the beat task uses: month by month, the Primary Workspace first. Returns how many."""
    at = at or now()
    first = month_of(organization, at - timedelta(days=DEMO_DAYS))
    last = previous_month(month_of(organization, at))
    workspaces = list(Workspace.objects.filter(organization=organization).select_related("organization"))
    closed = 0
    month = first
    while month <= last:
        for workspace in workspaces:
            try:
                closed += statement_close(workspace=workspace, period_start=month, at=at)[1]
            except StatementNotDue:
                continue  # the month ended minutes ago, or a job of it still runs: the beat task closes it
        month = next_month(month)
    return closed


def demo_holds_release_expired(*, organization: Organization) -> int:
    """The demo's running job from an earlier seeding is long over: release its hold (what the sweeper does)."""
    expired = UsageEvent.objects.filter(
        organization_id=organization.pk,
        status=UsageStatus.HELD,
        idempotency_key__startswith="demo-",
        hold__expires_at__lte=now(),
    )
    released = 0
    for event in expired:
        usage_hold_release(event=event)
        released += 1
    return released
