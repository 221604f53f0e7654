"""Every view of one period gives the same figures.

One organization in Asia/Kolkata (+05:30) spends through the real metering services (charges, a hold captured, a
hold released, a hold still pending) in three workspaces, including a charge at 18:40 UTC on 28 February — 00:10 on
1 March there — and one at 18:20 UTC, still February there. Part of it is rolled up, part is newer than the
watermark. Then, for "this month" (March, in the organization's time zone), the Usage tab, the Members and
Workspaces columns, each workspace's Overview, the CSV export, the draft client statements, the usage API (admin and
workspace keys), History's filtered totals and the monthly limits' "spent this month" are compared with the captured
events summed here, group by group (Chatbot, Image & Speech, Total).
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse

from billing.ledger import credits_grant
from billing.selectors import spending_this_month
from orgs.models import OrganizationRole
from orgs.services import admin_key_create
from qolaba.tools import TOOL_GROUP, ReportGroup
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from tests.usage.test_rollups import as_dict, expected, raw_events
from usage.catalog import prices_ensure_defaults
from usage.models import Price, UsageDailyRollup, UsageDailyZone, UsageEvent, UsageStatus
from usage.rollup import rollup_update, usage_totals
from usage.rollup.sql import run_statements
from usage.services import usage_charge, usage_hold_capture, usage_hold_place, usage_hold_release
from usage.statements import statement_compute
from workspaces.models import HistoryItem, Workspace, WorkspaceRole
from workspaces.selectors import history_items, history_totals
from workspaces.services import api_key_create

KOLKATA = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)  # 15:30 in Kolkata
MARCH = date(2026, 3, 1)
MARCH_STARTS = datetime(2026, 3, 1, tzinfo=KOLKATA)  # 28 February, 18:30 UTC


def _groups(credits_by_tool: dict[str, int]) -> dict[str, int]:
    chatbot = sum(c for tool, c in credits_by_tool.items() if TOOL_GROUP[tool] == ReportGroup.CHATBOT)
    image_speech = sum(c for tool, c in credits_by_tool.items() if TOOL_GROUP[tool] == ReportGroup.IMAGE_SPEECH)
    return {"chatbot": chatbot, "image_speech": image_speech, "total": chatbot + image_speech}


def _expected(events: list[UsageEvent], **only: object) -> dict[str, int]:
    """The captured credits of March (local) by group, summed from the raw events."""
    by_tool: dict[str, int] = {}
    for event in events:
        local = event.created_at.astimezone(KOLKATA)
        if event.status != UsageStatus.CAPTURED or (local.year, local.month) != (2026, 3):
            continue
        if any(getattr(event, name) != value for name, value in only.items()):
            continue
        by_tool[event.tool] = by_tool.get(event.tool, 0) + event.credits
    return _groups(by_tool)


def _bound_passed(newest: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(run_statements("postgresql").bound)
        return int(cursor.fetchone()[0]) > newest


@pytest.fixture
def world():
    """Spend in three workspaces between 28 February and 20 March, in Kolkata time."""
    prices_ensure_defaults()
    owner = UserFactory(email="owner@agree.test")
    org = make_organization(owner=owner, name="Agree Studio", timezone="Asia/Kolkata")
    primary = Workspace.objects.get(organization=org, is_primary=True)
    alpha, beta = make_workspace(org, name="Alpha"), make_workspace(org, name="Beta")
    ana = make_member(org, user=UserFactory(email="ana@agree.test"), workspaces={alpha: WorkspaceRole.MEMBER}).user
    ben = make_member(
        org,
        user=UserFactory(email="ben@agree.test"),
        workspaces={alpha: WorkspaceRole.MEMBER, beta: WorkspaceRole.MEMBER},
    ).user
    make_member(org, role=OrganizationRole.ADMIN)
    credits_grant(organization=org, amount=1_000_000, actor=None)
    price = {(p.tool, p.model): p for p in Price.objects.active()}
    chat, image, speech = price[("chat", "gpt-4o")], price[("image", "flux-pro")], price[("speech", "whisper")]
    keys = iter(range(1, 1000))

    def charge(at: datetime, workspace: Workspace, user, p: Price, units: int = 1) -> None:
        with time_machine.travel(at, tick=False):
            usage_charge(workspace=workspace, user=user, price=p, units=units, idempotency_key=f"agree-{next(keys)}")

    charge(datetime(2026, 2, 28, 18, 20, tzinfo=UTC), alpha, ana, chat, 7)  # 23:50 on 28 Feb in Kolkata: February
    charge(datetime(2026, 2, 28, 18, 40, tzinfo=UTC), alpha, ana, image, 2)  # 00:10 on 1 March in Kolkata: March
    charge(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), alpha, ben, chat, 3)
    charge(datetime(2026, 3, 5, 12, 0, tzinfo=UTC), beta, ben, speech, 4)
    charge(datetime(2026, 3, 8, 20, 0, tzinfo=UTC), primary, owner, image, 1)
    with time_machine.travel(datetime(2026, 3, 10, 8, 0, tzinfo=UTC), tick=False):
        captured = usage_hold_place(
            workspace=beta, user=ben, price=image, units=3, ttl=timedelta(hours=1), idempotency_key="agree-hold-1"
        ).event
        released = usage_hold_place(
            workspace=alpha, user=ana, price=chat, units=5, ttl=timedelta(hours=1), idempotency_key="agree-hold-2"
        ).event
    with time_machine.travel(datetime(2026, 3, 10, 8, 5, tzinfo=UTC), tick=False):
        usage_hold_capture(event=captured, workspace=beta, units=2)
        usage_hold_release(event=released)

    # Roll up what there is so far (every transaction older than the events must have ended first).
    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(changed_seq) FROM usage_usageevent")
        newest = int(cursor.fetchone()[0])
    deadline = time.monotonic() + 60
    while not _bound_passed(newest):
        assert time.monotonic() < deadline, "a long transaction on the server holds the roll-up back"
        time.sleep(0.05)
    assert rollup_update().added > 0

    # Newer than the watermark: read from the raw events.
    charge(datetime(2026, 3, 15, 6, 0, tzinfo=UTC), alpha, ana, chat, 2)
    charge(datetime(2026, 3, 19, 23, 0, tzinfo=UTC), beta, ben, image, 1)  # 04:30 on 20 March in Kolkata
    with time_machine.travel(datetime(2026, 3, 20, 9, 0, tzinfo=UTC), tick=False):
        usage_hold_place(
            workspace=alpha, user=ben, price=image, units=1, ttl=timedelta(hours=24), idempotency_key="agree-pending"
        )
    _, workspace_key = api_key_create(workspace=alpha, actor=owner, name="agree")
    _, admin_key = admin_key_create(organization=org, actor=owner, name="agree")
    return {
        "org": org,
        "owner": owner,
        "workspaces": [primary, alpha, beta],
        "members": [owner, ana, ben],
        "alpha": alpha,
        "workspace_key": workspace_key,
        "admin_key": admin_key,
        "events": list(UsageEvent.objects.filter(organization=org)),
    }


@pytest.mark.django_db(transaction=True)
def test_every_view_of_this_month_gives_the_same_figures(world):
    org, events = world["org"], world["events"]
    expected = _expected(events)
    assert expected["total"] > 0
    assert expected != _groups({})
    client = Client()
    client.force_login(world["owner"])
    slug = org.slug

    with time_machine.travel(NOW, tick=False):
        # The Usage tab: Chatbot / Image & Speech / Total.
        dashboard = client.get(f"/o/{slug}/usage/?range=this_month").context["dashboard"]
        assert {change.key: change.current for change in dashboard.totals} == expected

        # The Members and Workspaces columns (this month by default): every row, and the organization's total.
        members = client.get(reverse("orgs:members", args=[slug])).context
        assert _credits(members["usage"].organization_total) == expected
        assert _sum(credits for _, credits in members["member_rows"]) == expected
        for member in world["members"]:
            assert _credits(members["usage"].of(member.pk)) == _expected(events, user_id=member.pk)
        workspaces = client.get(reverse("workspaces:list", args=[slug])).context
        assert _credits(workspaces["usage"].organization_total) == expected
        assert _sum(row[1] for row in workspaces["rows"]) == expected

        for workspace in world["workspaces"]:
            of_workspace = _expected(events, workspace_id=workspace.pk)
            assert _credits(workspaces["usage"].of(workspace.pk)) == of_workspace
            # The Overview of the workspace.
            overview = client.get(reverse("workspaces:overview", args=[slug, workspace.slug])).context["usage"]
            assert _credits(overview.workspace) == of_workspace
            assert _credits(overview.mine) == _expected(events, workspace_id=workspace.pk, user_id=world["owner"].pk)
            # The client statement of March, drafted now.
            statement = statement_compute(workspace=workspace, period_start=MARCH, as_of=NOW)
            assert sum(line.credits for line in statement.lines) == of_workspace["total"]
            # History, filtered to March.
            items = history_items(workspace=workspace, date_from=MARCH, date_to=date(2026, 3, 31))
            assert history_totals(items).credits == of_workspace["total"]
            # The monthly limits' "spent this month": the captured usage and what is still held.
            held = sum(
                e.credits
                for e in UsageEvent.objects.filter(workspace=workspace, status=UsageStatus.HELD)
                if e.created_at >= MARCH_STARTS
            )
            assert spending_this_month(workspace=workspace, organization=org).get(None, 0) == (
                of_workspace["total"] + held
            )

        # The CSV export of the same filter: the captured rows add up to the same.
        response = client.get(f"/o/{slug}/usage/export.csv?range=this_month")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        by_tool: dict[str, int] = {}
        for row in rows:
            if row["status"] == UsageStatus.CAPTURED:
                by_tool[row["tool"]] = by_tool.get(row["tool"], 0) + int(row["credits"])
        assert _groups(by_tool) == expected
        assert not any(row["time"].startswith("2026-02") for row in rows)  # 28 Feb 18:40 UTC is 1 March there
        assert any(row["time"].startswith("2026-03-01T00:10:00+05:30") for row in rows)

        # The usage API: the organization's (admin key) and one workspace's (workspace key).
        query = "start=2026-03-01&end=2026-03-31&bucket=none"
        answer = client.get(
            f"/api/v1/organization/usage?{query}", HTTP_AUTHORIZATION=f"Bearer {world['admin_key']}"
        ).json()
        assert _api(answer["totals"]) == expected
        answer = client.get(f"/api/v1/usage?{query}", HTTP_AUTHORIZATION=f"Bearer {world['workspace_key']}").json()
        assert _api(answer["totals"]) == _expected(events, workspace_id=world["alpha"].pk)

    assert HistoryItem.objects.filter(organization=org).count() == sum(e.status == UsageStatus.CAPTURED for e in events)


def _credits(group) -> dict[str, int]:
    return {"chatbot": group.chatbot, "image_speech": group.image_speech, "total": group.total}


def _sum(groups) -> dict[str, int]:
    listed = [g for g in groups if g is not None]
    return _groups_sum(listed)


def _groups_sum(listed) -> dict[str, int]:
    chatbot = sum(g.chatbot for g in listed)
    image_speech = sum(g.image_speech for g in listed)
    return {"chatbot": chatbot, "image_speech": image_speech, "total": chatbot + image_speech}


def _api(totals: dict[str, int]) -> dict[str, int]:
    return {
        "chatbot": totals["chatbot_credits"],
        "image_speech": totals["image_speech_credits"],
        "total": totals["credits"],
    }


# --- the daily level: whole local days from the day rows, the edges and the newest changes from the rest ------------


def _rolled_up() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(changed_seq) FROM usage_usageevent")
        newest = int(cursor.fetchone()[0])
    deadline = time.monotonic() + 60
    while not _bound_passed(newest):
        assert time.monotonic() < deadline, "a long transaction on the server holds the roll-up back"
        time.sleep(0.05)
    rollup_update()


def _read_equals_events(org, **query) -> None:
    """`usage_totals` equals the organization's raw events summed in Python (tests.usage.test_rollups.expected)."""
    tz = query.pop("tz", org.timezone)
    actual = as_dict(usage_totals(organization=org, tz=tz, **query).rows)
    assert actual == expected(raw_events(org.pk), tz=tz, **query), query


def _late_changes(world) -> None:
    """Holds rolled up while held, then captured or released after the watermark, in the middle of whole local days
    (their buckets are read from the events and taken out of their day rows), one with a new charge beside it."""
    org, alpha, beta = world["org"], world["alpha"], world["workspaces"][2]
    ben = world["members"][2]
    price = {(p.tool, p.model): p for p in Price.objects.active()}
    with time_machine.travel(datetime(2026, 3, 12, 10, 0, tzinfo=UTC), tick=False):
        captured = usage_hold_place(
            workspace=alpha, user=ben, price=price[("image", "flux-pro")], units=3, ttl=timedelta(hours=23),
            idempotency_key="late-1",
        ).event  # fmt: skip
        released = usage_hold_place(
            workspace=beta, user=ben, price=price[("speech", "whisper")], units=2, ttl=timedelta(hours=23),
            idempotency_key="late-2",
        ).event  # fmt: skip
    _rolled_up()
    assert UsageDailyZone.objects.get(organization_id=org.pk).timezone == "Asia/Kolkata"
    assert UsageDailyRollup.objects.filter(organization_id=org.pk).exists()
    with time_machine.travel(datetime(2026, 3, 12, 10, 5, tzinfo=UTC), tick=False):
        usage_hold_capture(event=captured, workspace=alpha, units=1)
        usage_hold_release(event=released)
        usage_charge(workspace=alpha, user=ben, price=price[("image", "flux-pro")], units=1, idempotency_key="late-3")


@pytest.mark.django_db(transaction=True)
def test_ranges_across_local_midnights_agree_with_the_events(world):
    """Ranges that start and end on, before and after Kolkata midnights (18:30 UTC), so every read combines partial
    days at both edges (15-minute rows and events) with whole days (day rows), and changes newer than the watermark
    inside whole days; every grouping the views use, in days, weeks and months."""
    org = world["org"]
    _late_changes(world)
    starts = [
        datetime(2026, 2, 28, 18, 30, tzinfo=UTC),  # 1 March, 00:00 in Kolkata
        datetime(2026, 2, 28, 18, 15, tzinfo=UTC),  # 23:45 the day before
        datetime(2026, 2, 28, 18, 45, tzinfo=UTC),  # 00:15
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC),  # 05:30: most of a day
    ]
    ends = [
        datetime(2026, 3, 20, 18, 30, tzinfo=UTC),  # 21 March, 00:00 in Kolkata
        datetime(2026, 3, 20, 9, 0, tzinfo=UTC),  # now: part of today
        datetime(2026, 3, 12, 18, 45, tzinfo=UTC),  # 15 minutes into 13 March
        datetime(2026, 3, 4, 18, 15, tzinfo=UTC),  # 15 minutes short of 5 March: one whole day, the 4th
    ]
    shapes = [
        {},
        {"group_by": ("tool",), "period": "day"},
        {"group_by": ("workspace",), "period": "week"},
        {"group_by": ("user", "model"), "period": "month"},
        {"group_by": ("workspace", "user", "tool", "model")},
        {"group_by": ("tool",), "workspace_ids": [world["alpha"].pk], "period": "day"},
    ]
    for start in starts:
        for end in ends:
            for shape in shapes:
                _read_equals_events(org, start=start, end=end, **shape)
    # Hours are never read from days; a read in another zone neither (the days are cut in Kolkata's).
    _read_equals_events(org, start=starts[0], end=ends[0], group_by=("tool",), period="hour")
    _read_equals_events(org, start=starts[0], end=ends[0], group_by=("tool",), period="day", tz="Asia/Kathmandu")


@pytest.mark.django_db(transaction=True)
def test_a_changed_time_zone_is_never_read_from_days_cut_in_the_old_one(world):
    """The day rows are read only while cut in the organization's zone: right after the zone changes the read sums
    15-minute rows (exact), and the next roll-up run cuts every day again in the new zone."""
    org = world["org"]
    _late_changes(world)
    march = {"start": datetime(2026, 2, 28, 18, 30, tzinfo=UTC), "end": datetime(2026, 3, 20, 18, 30, tzinfo=UTC)}
    before = usage_totals(organization=org, **march).rows[0].credits
    _read_equals_events(org, **march)
    # A day row with 1,000 credits too many shows in the read: the read takes whole days from the day rows.
    day = UsageDailyRollup.objects.filter(organization_id=org.pk, day_start__gte=march["start"]).first()
    assert day is not None
    UsageDailyRollup.objects.filter(pk=day.pk).update(credits=day.credits + 1000)
    assert usage_totals(organization=org, **march).rows[0].credits == before + 1000

    org.timezone = "Asia/Kathmandu"  # +05:45: its days start at 18:15 UTC
    org.save(update_fields=["timezone"])
    kathmandu = {"start": datetime(2026, 2, 28, 18, 15, tzinfo=UTC), "end": datetime(2026, 3, 20, 18, 15, tzinfo=UTC)}
    # Before a run: the days cut in Kolkata (the altered one among them) are not read for Kathmandu's days...
    _read_equals_events(org, **kathmandu, group_by=("tool",), period="day")
    _read_equals_events(org, **kathmandu)
    # ...while a read in Kolkata still takes them: they are Kolkata's days (the day rows are keyed by their zone).
    assert usage_totals(organization=org, tz="Asia/Kolkata", **march).rows[0].credits == before + 1000

    _rolled_up()
    assert UsageDailyZone.objects.get(organization_id=org.pk).timezone == "Asia/Kathmandu"
    starts = set(UsageDailyRollup.objects.filter(organization_id=org.pk).values_list("day_start", flat=True))
    assert starts
    assert all((at.hour, at.minute) == (18, 15) for at in starts)  # Kathmandu midnights, nothing older
    for shape in ({}, {"group_by": ("tool",), "period": "day"}, {"group_by": ("workspace", "user", "tool", "model")}):
        _read_equals_events(org, **kathmandu, **shape)
    # The usage API answers in the new zone, with the same totals.
    answer = (
        Client()
        .get(
            "/api/v1/organization/usage?start=2026-03-01&end=2026-03-20&bucket=none",
            HTTP_AUTHORIZATION=f"Bearer {world['admin_key']}",
        )
        .json()
    )
    assert answer["timezone"] == "Asia/Kathmandu"
    total = usage_totals(organization=org, **kathmandu).rows[0]
    assert answer["totals"]["credits"] == total.credits
    assert total.credits == sum(
        e.credits for e in UsageEvent.objects.filter(organization=org, status=UsageStatus.CAPTURED)
        if kathmandu["start"] <= e.created_at < kathmandu["end"]
    )  # fmt: skip
