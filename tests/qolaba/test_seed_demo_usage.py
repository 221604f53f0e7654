"""`seed_demo`'s AI activity: working API keys, the price list, and months of usage and history that the ledger,
the spend counters and the metering API all agree with."""

from __future__ import annotations

import io
import json
import re
import wave
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now
from PIL import Image

from billing.ledger import available_credits, period_bounds, period_starts_at
from billing.models import Hold, HoldStatus, LedgerTransaction, SpendCounter, WorkspaceLimit
from billing.reconcile import reconcile
from orgs.models import Organization, User
from qolaba.demo.assets import DEMO_KEY_NAME, demo_png, demo_wav
from qolaba.demo.usage import DEMO_DAYS
from qolaba.tools import Tool
from tests.factories import api_key_authenticate
from usage.catalog import DEFAULT_PRICES
from usage.models import BalanceItem, ClientRate, Price, Statement, UsageEvent, UsageRollupState, UsageStatus
from usage.rollup import usage_totals
from usage.statements import CLOSE_DELAY, month_bounds, month_of, next_month, statement_figures
from workspaces.models import ApiKey, HistoryItem, Workspace, WorkspaceUserObjectPermission

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def seed_json() -> dict:
    out = io.StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def demo() -> dict:
    return seed_json()


def workspaces_of(demo: dict) -> list[tuple[dict, dict]]:
    return [(org, ws) for org in demo["orgs"] for ws in org["workspaces"]]


def owner_of(demo: dict, org_slug: str) -> str:
    return next(u["email"] for u in demo["users"] if u["org"] == org_slug and u["role"] == "owner")


def demo_events():
    return UsageEvent.objects.filter(idempotency_key__startswith="demo-")


def charge(key: str, member: str, idempotency_key: str = "t1"):
    body = {"member": member, "tool": "chat", "model": "gpt-4o-mini", "units": 1, "history": {"prompt": "hi"}}
    return Client().post(
        "/api/v1/charges",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_IDEMPOTENCY_KEY=idempotency_key,
    )


def test_every_workspace_gets_a_working_api_key(demo):
    for org, ws in workspaces_of(demo):
        api_key = api_key_authenticate(ws["api_key"])
        assert api_key is not None, ws["name"]
        assert api_key.workspace_id == ws["id"]
        assert api_key.name == DEMO_KEY_NAME
        response = charge(ws["api_key"], owner_of(demo, org["slug"]))
        assert response.status_code == 201, (ws["name"], response.content)
        assert response.json()["status"] == "captured"
    nike = next(ws for _, ws in workspaces_of(demo) if ws["name"] == "Nike Spring Campaign")
    assert charge(nike["api_key"], "member@northwind.test", idempotency_key="t2").status_code == 201
    refused = charge(nike["api_key"], "viewer@northwind.test", idempotency_key="t3")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "member_not_allowed"
    assert reconcile() == []


def check_the_price_list_is_seeded(demo):
    assert set(Price.objects.active().values_list("tool", "model")) >= {(t, m) for t, m, *_ in DEFAULT_PRICES}


def check_usage_spans_months_every_tool_and_only_members_who_may_use_the_workspace(demo):
    events = list(demo_events())
    assert events
    months = {(e.created_at.year, e.created_at.month) for e in events}
    assert len(months) >= 3
    assert min(e.created_at for e in events) < now() - timedelta(days=80)
    tools = Counter(e.tool for e in events)
    assert set(tools) == set(Tool.values)
    assert tools[Tool.CHAT] > tools[Tool.IMAGE] > tools[Tool.VIDEO]  # lots of chat, fewer videos
    per_org = Counter(e.organization_id for e in events)
    assert all(50 <= count <= 500 for count in per_org.values()), per_org
    may_use = set(
        WorkspaceUserObjectPermission.objects.filter(permission__codename="use_workspace").values_list(
            "content_object_id", "user_id"
        )
    )
    assert all((e.workspace_id, e.user_id) in may_use for e in events)
    assert len({e.user_id for e in events}) >= 5
    timezones = dict(Organization.objects.values_list("pk", "timezone"))
    weekend = sum(e.created_at.astimezone(ZoneInfo(timezones[e.organization_id])).weekday() >= 5 for e in events)
    assert weekend < len(events) * 0.15  # weekday-heavy
    assert all(e.created_at <= now() for e in events)


def check_every_workspace_has_history_and_images_that_open(demo):
    for _, ws in workspaces_of(demo):
        items = HistoryItem.objects.filter(workspace_id=ws["id"])
        assert items.exists(), ws["name"]
        assert items.exclude(prompt="").count() == items.count()
    images = HistoryItem.objects.exclude(media="").filter(tool=Tool.IMAGE)
    assert images.count() >= 20
    tunes = HistoryItem.objects.exclude(media="").filter(tool=Tool.MUSIC)
    assert tunes.exists()
    assert HistoryItem.objects.exclude(media="").count() == images.count() + tunes.count()
    for item in tunes:
        assert item.media_content_type == "audio/wav"
        with item.media.open("rb") as f, wave.open(f) as audio:
            assert audio.getnframes() / audio.getframerate() >= 3
    for item in images:
        assert item.media_content_type == "image/png"
        assert item.media.name.startswith(f"history/{item.workspace_id}/")
        with item.media.open("rb") as f:
            picture = Image.open(f)
            picture.load()
        assert max(picture.size) == 512
        assert item.media.size < 30_000
    assert HistoryItem.objects.filter(tool=Tool.SPEECH, metadata__has_key="voice").exists()
    assert HistoryItem.objects.filter(tool=Tool.IMAGE, metadata__aspect_ratio="16:9").exists()


def check_history_usage_and_ledger_carry_the_same_times_and_periods(demo):
    organizations = {org.pk: org for org in Organization.objects.all()}
    items = {item.usage_event_id: item for item in HistoryItem.objects.all()}
    transactions = LedgerTransaction.objects.in_bulk()
    for event in demo_events():
        organization = organizations[event.organization_id]
        txn = transactions[event.ledger_transaction_id]
        if event.status == UsageStatus.HELD:
            assert event.pk not in items
            continue
        assert txn.created_at == event.settled_at
        assert txn.period_start == period_bounds(organization, event.created_at)[0]
        if event.status == UsageStatus.CAPTURED:
            assert items[event.pk].created_at == event.settled_at
            assert items[event.pk].credits == event.credits
        if event.hold_id is not None:
            hold = Hold.objects.select_related("hold_transaction").get(pk=event.hold_id)
            assert hold.created_at == hold.hold_transaction.created_at == event.created_at
            assert hold.period_start == txn.period_start
    assert reconcile() == []


def check_limited_spending_stays_in_the_current_period_and_matches_the_counters(demo):
    limits = WorkspaceLimit.objects.filter(user__isnull=False)
    assert limits.exists()
    for limit in limits:
        organization = limit.workspace.organization
        period_start, _ = period_bounds(organization)
        theirs = demo_events().filter(workspace=limit.workspace, user=limit.user)
        assert all(period_bounds(organization, e.created_at)[0] == period_start for e in theirs)
        spent = theirs.aggregate(total=Sum("credits"))["total"] or 0  # none early on the 1st of a month
        counters = SpendCounter.objects.filter(workspace=limit.workspace, user=limit.user).exclude(spent=0)
        assert list(counters.values_list("period_start", "spent")) == ([(period_start, spent)] if spent else [])
        assert spent <= limit.monthly_limit // 2
    # Every spend that moved a counter is in the current period of its organization.
    current = {org.pk: period_bounds(org)[0] for org in Organization.objects.all()}
    for org_id, period_start in LedgerTransaction.objects.exclude(counted=[]).values_list(
        "organization_id", "period_start"
    ):
        assert period_start == current[org_id]


MEMBER_SPENT = re.compile(r'<strong>([^<]+)</strong>(?:(?!</tr>).)*?<td class="member-spent">([\d,]+)<', re.S)


def check_every_spent_this_month_is_the_months_usage(demo):
    """The Limits page of every workspace (each member and the workspace), and every limit's counter, say what the
    live usage read says was used this month (captured and held credits)."""
    limits = set(WorkspaceLimit.objects.values_list("workspace_id", "user_id"))
    assert limits
    for workspace in Workspace.objects.live().select_related("organization"):
        organization = workspace.organization
        period_start, resets_at = period_bounds(organization)
        rows = usage_totals(
            organization=organization,
            start=period_starts_at(organization, period_start),
            end=resets_at,
            workspace_ids=[workspace.pk],
            group_by=["user"],
        ).rows
        usage = {row.user_id: row.credits + row.held_credits for row in rows}
        client = Client()
        client.force_login(User.objects.get(email=owner_of(demo, organization.slug)))
        page = client.get(reverse("billing:workspace_limit_set", args=[organization.slug, workspace.slug]))
        html = page.content.decode()
        shown = int(re.search(r'id="workspace-spent">([\d,]+)<', html).group(1).replace(",", ""))
        assert shown == sum(usage.values()), workspace.name
        members = MEMBER_SPENT.findall(html.split("<tbody>")[1])
        assert members, workspace.name
        for email, figure in members:
            user = User.objects.get(email=email)
            assert int(figure.replace(",", "")) == usage.get(user.pk, 0), (workspace.name, email)
        counters = dict(
            SpendCounter.objects.filter(workspace=workspace, period_start=period_start).values_list("user_id", "spent")
        )
        for user_id in {user_id for ws_id, user_id in limits if ws_id == workspace.pk}:
            expected = sum(usage.values()) if user_id is None else usage.get(user_id, 0)
            assert counters.get(user_id, 0) == expected, (workspace.name, user_id)


def check_long_jobs_one_running_and_credits_left_everywhere(demo):
    pending = Hold.objects.filter(status=HoldStatus.PENDING)
    assert pending.count() == len(demo["orgs"])
    assert all(hold.expires_at > now() for hold in pending)
    assert Hold.objects.filter(status=HoldStatus.CAPTURED).exists()
    assert demo_events().filter(status=UsageStatus.RELEASED, credits=0).exists()
    for workspace in Workspace.objects.select_related("organization"):
        assert available_credits(workspace, workspace.organization) > 500, workspace.name


def test_the_seeded_usage(demo):
    """One seeding, every property of what it wrote (each check is a function above)."""
    check_the_price_list_is_seeded(demo)
    check_usage_spans_months_every_tool_and_only_members_who_may_use_the_workspace(demo)
    check_every_workspace_has_history_and_images_that_open(demo)
    check_history_usage_and_ledger_carry_the_same_times_and_periods(demo)
    check_limited_spending_stays_in_the_current_period_and_matches_the_counters(demo)
    check_every_spent_this_month_is_the_months_usage(demo)
    check_long_jobs_one_running_and_credits_left_everywhere(demo)
    assert reconcile() == []


def test_rerun_adds_no_usage_replaces_the_keys_and_releases_an_expired_demo_job(demo):
    counts = (demo_events().count(), HistoryItem.objects.count())
    Hold.objects.filter(status=HoldStatus.PENDING).update(expires_at=now() - timedelta(minutes=1))
    assert reconcile() != []  # the sweeper has not run yet

    again = seed_json()

    assert (demo_events().count(), HistoryItem.objects.count()) == counts
    assert not Hold.objects.filter(status=HoldStatus.PENDING).exists()
    assert not demo_events().filter(status=UsageStatus.HELD).exists()
    assert reconcile() == []
    for (org, old), (_, new) in zip(workspaces_of(demo), workspaces_of(again), strict=True):
        assert old["id"] == new["id"]
        assert api_key_authenticate(old["api_key"]) is None
        assert api_key_authenticate(new["api_key"]).workspace_id == new["id"]
        assert charge(new["api_key"], owner_of(again, org["slug"])).status_code == 201
    assert ApiKey.objects.active().filter(name=DEMO_KEY_NAME).count() == len(workspaces_of(again))
    assert reconcile() == []


def test_demo_tunes_are_short_deterministic_wavs():
    first, again, other = demo_wav("a fox"), demo_wav("a fox"), demo_wav("a cat", seconds=2)
    assert first == again != other
    with wave.open(io.BytesIO(other)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
        assert 1.5 <= audio.getnframes() / audio.getframerate() <= 2
    assert len(first) < 100_000


def test_demo_pictures_are_small_deterministic_pngs():
    first, again, other = demo_png("a fox"), demo_png("a fox"), demo_png("a cat", 512, 288)
    assert first == again != other
    assert len(first) < 30_000
    assert Image.open(io.BytesIO(other)).size == (512, 288)


def test_the_demo_closes_the_statements_of_its_past_months(demo):
    """Every workspace has a closed statement for each month the demo's usage covers that is over, equal to its
    events; the budget-mode ones reconcile with the ledger; a rerun closes nothing twice."""
    for organization in Organization.objects.filter(slug__in=["northwind", "bluepeak"]):
        current = month_of(organization, now() - CLOSE_DELAY)  # in a month's first minutes, the last waits
        first = month_of(organization, now() - timedelta(days=DEMO_DAYS))
        months = []
        month = first
        while month < current:
            months.append(month)
            month = next_month(month)
        for workspace in Workspace.objects.filter(organization=organization):
            statements = list(Statement.objects.filter(workspace=workspace).order_by("period_start"))
            assert [s.period_start for s in statements] == months
            for statement in statements:
                starts_at, ends_at = month_bounds(organization, statement.period_start)
                events = demo_events().filter(
                    workspace=workspace, status=UsageStatus.CAPTURED, created_at__gte=starts_at, created_at__lt=ends_at
                )
                assert statement.credits == (events.aggregate(total=Sum("credits"))["total"] or 0)
                figures = statement_figures(statement)
                if organization.slug == "bluepeak":
                    assert figures.balance is not None
                    assert figures.balance.reconciles
                    assert -figures.balance.item(BalanceItem.SPENT) == statement.credits
                    assert figures.balance.opening >= 0
    numbers = list(Statement.objects.values_list("organization_id", "sequence"))
    assert len(numbers) == len(set(numbers))
    assert Statement.objects.filter(rate_per_1000__isnull=False).exists()
    assert ClientRate.objects.filter(workspace__name="Nike Spring Campaign").exists()
    before = Statement.objects.count()
    seed_json()
    assert Statement.objects.count() == before


def test_one_demo_organization_counts_its_days_in_india_time(demo):
    """Bluepeak is on UTC+05:30: its usage per local day (the live read over the roll-up the seeding rebuilt) equals
    its events cut at 18:30 UTC."""
    organization = Organization.objects.get(slug="bluepeak")
    zone = ZoneInfo(organization.timezone)
    assert organization.timezone == "Asia/Kolkata"
    assert now().astimezone(zone).utcoffset() == timedelta(hours=5, minutes=30)
    assert UsageRollupState.objects.filter(pk=1, ran_at__isnull=False).exists()  # seed_demo ran the roll-up

    # Every generation of the organization: the seeded usage and the Studio's demo chats (made today).
    events = UsageEvent.objects.filter(organization=organization, status=UsageStatus.CAPTURED)
    expected: Counter = Counter()
    for created_at, credits in events.values_list("created_at", "credits"):
        expected[created_at.astimezone(zone).date()] += credits
    start = datetime.combine(min(expected), datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(max(expected) + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    totals = usage_totals(organization=organization, start=start, end=end, period="day")
    read = {row.period_start.astimezone(zone).date(): row.credits for row in totals.rows if row.credits}
    assert read == dict(expected)
    assert all(row.period_start.astimezone(UTC).time() == time(18, 30) for row in totals.rows)
