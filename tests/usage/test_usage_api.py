"""The usage reports of the API: `GET /api/v1/usage` (a workspace key: its workspace) and
`GET /api/v1/organization/usage` (an organization admin key: every workspace of its organization).

The expected figures are computed here from the raw usage events (captured ones only: held ones wait for their
capture, released ones cost nothing), cut into the organization's local days with zoneinfo; the answers must equal
them and the live read `usage_totals` for the same period. The organization is in Asia/Kolkata (+05:30), and the
events sit on both sides of its local midnights, which are 18:30 UTC.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.ledger import credits_grant
from orgs.models import AdminKey, OrganizationRole
from orgs.services import admin_key_create, admin_key_revoke
from qolaba.lifecycle import organization_delete, workspace_archive
from qolaba.tools import TOOL_GROUP, ReportGroup
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from tests.usage.test_rollups import rollup_caught_up
from usage.catalog import prices_ensure_defaults
from usage.models import Price, UsageEvent, UsageRollup, UsageStatus
from usage.rollup import rollup_state, usage_totals
from usage.selectors import held_event_find
from usage.services import usage_charge, usage_hold_capture, usage_hold_place, usage_hold_release
from workspaces.models import WorkspaceRole
from workspaces.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage"
ORG_USAGE = "/api/v1/organization/usage"
ZONE = ZoneInfo("Asia/Kolkata")
# Local midnights of Asia/Kolkata are 18:30 UTC: events a minute either side fall on different local days.
MOMENTS = [
    datetime(2026, 3, 29, 18, 29, tzinfo=UTC),
    datetime(2026, 3, 29, 18, 30, tzinfo=UTC),
    datetime(2026, 3, 30, 0, 10, tzinfo=UTC),
    datetime(2026, 3, 30, 23, 59, tzinfo=UTC),
    datetime(2026, 3, 31, 18, 29, 59, tzinfo=UTC),
    datetime(2026, 3, 31, 18, 30, tzinfo=UTC),  # 1 April, local
    datetime(2026, 4, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 4, 2, 18, 29, tzinfo=UTC),  # the last minute of 2 April, local
]
START, END = "2026-03-29", "2026-04-02"  # the local days holding every moment (29 March 18:29 UTC is 23:59 local)


# --- the world -------------------------------------------------------------------------------------------------


class World:
    """An organization in Asia/Kolkata with two workspaces (a key for the first), two members and usage of every
    kind; a foreign organization with usage of its own; an admin key for each organization."""

    def __init__(self, events: int = 24, seed: int = 7) -> None:
        prices_ensure_defaults()
        self.owner = UserFactory()
        self.organization = make_organization(owner=self.owner, name="Kolkata Studio", timezone="Asia/Kolkata")
        self.workspace = make_workspace(self.organization, name="Alpha")
        self.other = make_workspace(self.organization, name="Beta")
        self.members = [UserFactory(), UserFactory()]
        for user in self.members:
            make_member(
                self.organization,
                user=user,
                workspaces={self.workspace: WorkspaceRole.MEMBER, self.other: WorkspaceRole.MEMBER},
            )
        credits_grant(organization=self.organization, amount=10_000_000, actor=None)
        _, self.key = api_key_create(workspace=self.workspace, actor=self.owner, name="Tools")
        self.admin_key_row, self.admin_key = admin_key_create(
            organization=self.organization, actor=self.owner, name="Finance"
        )
        foreign_owner = UserFactory()
        self.foreign = make_organization(owner=foreign_owner, name="Foreign", timezone="Asia/Kolkata")
        self.foreign_workspace = make_workspace(self.foreign, name="Foreign work")
        credits_grant(organization=self.foreign, amount=1_000_000, actor=None)
        _, self.foreign_admin_key = admin_key_create(organization=self.foreign, actor=foreign_owner, name="F")
        self.foreign_owner = foreign_owner
        self.rng = random.Random(seed)
        self._keys = 0
        self.add(events)

    def charge(self, at: datetime, *, workspace=None, user=None, tool: str | None = None, units: int = 1) -> None:
        price = self._price(tool)
        self._keys += 1
        with time_machine.travel(at, tick=False):
            usage_charge(
                workspace=workspace or self.workspace,
                user=user or self.members[0],
                price=price,
                units=units,
                idempotency_key=f"c{self._keys}",
            )

    def hold(self, at: datetime, *, capture: int | None, workspace=None, user=None, tool: str = "video") -> None:
        """A hold placed at `at`, then captured (`capture` units of 5) or, with None, released, 10 minutes later."""
        workspace = workspace or self.workspace
        self._keys += 1
        with time_machine.travel(at, tick=False):
            placed = usage_hold_place(
                workspace=workspace,
                user=user or self.members[1],
                price=self._price(tool),
                units=5,
                ttl=timedelta(hours=1),
                idempotency_key=f"h{self._keys}",
            )
        with time_machine.travel(at + timedelta(minutes=10), tick=False):
            event = held_event_find(workspace=workspace, event_id=placed.event.pk)
            if capture is None:
                usage_hold_release(event=event)
            else:
                usage_hold_capture(event=event, workspace=workspace, units=capture)

    def add(self, count: int) -> None:
        """`count` charges at random moments near the local midnights, in random workspaces, by random members,
        with random tools; plus a captured hold, a released hold and a hold still held; and foreign usage."""
        rng = self.rng
        for _ in range(count):
            self.charge(
                rng.choice(MOMENTS) + timedelta(seconds=rng.randrange(60)),
                workspace=rng.choice([self.workspace, self.other]),
                user=rng.choice(self.members),
                tool=rng.choice(["chat", "image", "video", "speech", "music"]),
                units=rng.randint(1, 4),
            )
        self.hold(MOMENTS[1], capture=3)
        self.hold(MOMENTS[4], capture=None)
        self._keys += 1
        with time_machine.travel(MOMENTS[6], tick=False):  # still held: counts nowhere yet
            usage_hold_place(
                workspace=self.workspace,
                user=self.members[0],
                price=self._price("music"),
                units=2,
                ttl=timedelta(hours=1),
                idempotency_key=f"p{self._keys}",
            )
        self.charge(MOMENTS[3], workspace=self.foreign_workspace, user=self.foreign_owner, units=3)

    def _price(self, tool: str | None) -> Price:
        return Price.objects.active().filter(tool=tool or "image").order_by("pk").first()  # type: ignore[return-value]

    def get(self, path: str, key: str | None, **params: str) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key is not None else {}
        return Client(raise_request_exception=False).get(path, params, **headers)


@pytest.fixture
def world(db) -> World:
    return World()


def raw_captured(organization_id: int, workspace_id: int | None = None) -> list[dict[str, Any]]:
    events = UsageEvent.objects.filter(organization_id=organization_id, status=UsageStatus.CAPTURED)
    if workspace_id is not None:
        events = events.filter(workspace_id=workspace_id)
    return list(events.values("workspace_id", "user_id", "tool", "model", "units", "credits", "created_at"))


def local_range(start: str, end: str) -> tuple[datetime, datetime]:
    return (
        datetime.combine(date.fromisoformat(start), time.min, tzinfo=ZONE),
        datetime.combine(date.fromisoformat(end) + timedelta(days=1), time.min, tzinfo=ZONE),
    )


def expected_by_day(events: list[dict[str, Any]], start: str, end: str, keys: tuple[str, ...]) -> dict:
    """{(local day, *key): [generations, units, credits]} from the raw events."""
    low, high = local_range(start, end)
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for event in events:
        if low <= event["created_at"] < high:
            names = {"workspace": event["workspace_id"], "member": event["user_id"]}
            key = (event["created_at"].astimezone(ZONE).date(), *(names.get(k, event.get(k)) for k in keys))
            figures = sums[key]
            figures[0] += 1
            figures[1] += event["units"]
            figures[2] += event["credits"]
    return dict(sums)


def answered_by_day(body: dict[str, Any], keys: tuple[str, ...]) -> dict:
    found = {}
    for bucket in body["buckets"]:
        day = datetime.fromisoformat(bucket["start"]).astimezone(ZONE).date()
        for result in bucket["results"]:
            key = (day, *(result[k]["id"] if k in ("workspace", "member") else result[k] for k in keys))
            assert key not in found
            found[key] = [result["generations"], result["units"], result["credits"]]
    return found


def expected_totals(events: list[dict[str, Any]], start: str, end: str) -> dict[str, int]:
    low, high = local_range(start, end)
    inside = [event for event in events if low <= event["created_at"] < high]
    return {
        "generations": len(inside),
        "units": sum(event["units"] for event in inside),
        "credits": sum(event["credits"] for event in inside),
        "chatbot_credits": sum(e["credits"] for e in inside if TOOL_GROUP[e["tool"]] == ReportGroup.CHATBOT),
        "image_speech_credits": sum(e["credits"] for e in inside if TOOL_GROUP[e["tool"]] == ReportGroup.IMAGE_SPEECH),
    }


def error_fields(response) -> dict[str, str]:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"]
    return error["fields"]


# --- parameters ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": END}, "start"),
        ({"start": START}, "end"),
        ({"start": "2026-3-29", "end": END}, "start"),
        ({"start": "2026-02-30", "end": END}, "start"),
        ({"start": "yesterday", "end": END}, "start"),
        ({"start": "", "end": END}, "start"),
        ({"start": "2026-03-29T00:00", "end": END}, "start"),
        ({"start": START, "end": "20260402"}, "end"),
        ({"start": "1999-12-31", "end": "2000-01-02"}, "start"),
        ({"start": "2999-12-30", "end": "3000-01-01"}, "end"),
        ({"start": START, "end": END, "bucket": "week"}, "bucket"),
        ({"start": START, "end": END, "bucket": ""}, "bucket"),
        ({"start": START, "end": END, "bucket": "DAY"}, "bucket"),
        ({"start": START, "end": END, "group_by": "workspace"}, "group_by"),
        ({"start": START, "end": END, "group_by": "tool,tool"}, "group_by"),
        ({"start": START, "end": END, "group_by": "tool,"}, "group_by"),
        ({"start": START, "end": END, "group_by": "Tool"}, "group_by"),
        ({"start": START, "end": END, "group_by": "tool model"}, "group_by"),
        ({"start": START, "end": END, "tz": "UTC"}, "tz"),
        ({"start": "2026-04-02", "end": "2026-03-29"}, "end"),
    ],
)
def test_every_parameter_error_is_a_400_naming_the_field(world, params, field):
    fields = error_fields(world.get(USAGE, world.key, **params))
    assert field in fields
    assert all(isinstance(message, str) and message for message in fields.values())


def test_a_repeated_parameter_is_a_400(world):
    response = Client().get(f"{USAGE}?start={START}&start={START}&end={END}", HTTP_AUTHORIZATION=f"Bearer {world.key}")
    assert set(error_fields(response)) == {"start"}


def test_every_problem_is_named_at_once(world):
    fields = error_fields(world.get(USAGE, world.key, start="x", bucket="week", group_by="x", extra="1"))
    assert set(fields) == {"start", "end", "bucket", "group_by", "extra"}


def test_the_organization_report_also_groups_by_workspace_and_checks_the_same_parameters(world):
    assert world.get(ORG_USAGE, world.admin_key, start=START, end=END, group_by="workspace,member").status_code == 200
    assert "group_by" in error_fields(world.get(ORG_USAGE, world.admin_key, start=START, end=END, group_by="team"))
    assert "end" in error_fields(world.get(ORG_USAGE, world.admin_key, start=END, end=START))


@pytest.mark.parametrize("path", [USAGE, ORG_USAGE])
def test_ranges_up_to_400_days_and_hourly_up_to_31_days(world, path):
    key = world.key if path == USAGE else world.admin_key
    # 400 days, start and end included: accepted, one bucket per day.
    ok = world.get(path, key, start="2025-03-29", end="2026-05-02")
    assert ok.status_code == 200, ok.content
    assert len(ok.json()["buckets"]) == 400
    assert "end" in error_fields(world.get(path, key, start="2025-03-28", end="2026-05-02"))
    assert "end" in error_fields(world.get(path, key, start="2025-03-28", end="2026-05-02", bucket="none"))
    hourly = world.get(path, key, start="2026-03-03", end="2026-04-02", bucket="hour")
    assert hourly.status_code == 200
    assert len(hourly.json()["buckets"]) == 31 * 24
    assert "bucket" in error_fields(world.get(path, key, start="2026-03-02", end="2026-04-02", bucket="hour"))
    month = world.get(path, key, start="2025-03-29", end="2026-05-02", bucket="month")
    assert month.status_code == 200
    assert len(month.json()["buckets"]) == 15  # March 2025 (from the 29th) to May 2026 (to the 2nd)


def test_a_dead_key_with_bad_parameters_is_401_not_400(world):
    api_key_revoke(api_key=world.workspace.api_keys.get(), actor=world.owner)
    response = world.get(USAGE, world.key, start="nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    admin_key_revoke(admin_key=world.admin_key_row, actor=world.owner)
    response = world.get(ORG_USAGE, world.admin_key, start="nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


# --- the figures -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", [(), ("tool",), ("model",), ("member",), ("tool", "model", "member")])
def test_workspace_report_equals_the_raw_captured_events_by_local_day(world, group_by):
    response = world.get(USAGE, world.key, start=START, end=END, bucket="day", group_by=",".join(group_by))
    assert response.status_code == 200, response.content
    body = response.json()
    events = raw_captured(world.organization.pk, world.workspace.pk)
    assert answered_by_day(body, group_by) == expected_by_day(events, START, END, group_by)
    assert body["totals"] == expected_totals(events, START, END)
    assert body["workspace"] == world.workspace.pk
    assert body["timezone"] == "Asia/Kolkata"
    assert (body["start"], body["end"], body["bucket"]) == (START, END, "day")
    # Local days are not UTC days here: an event at 18:29 UTC and one at 18:30 UTC fall on different days.
    assert [b["start"] for b in body["buckets"]] == [f"2026-0{d}T00:00:00+05:30" for d in ("3-29", "3-30", "3-31",
                                                                                          "4-01", "4-02")]  # fmt: skip


def test_organization_report_equals_the_raw_captured_events_of_every_workspace(world):
    keys = ("workspace", "member", "tool", "model")
    body = world.get(ORG_USAGE, world.admin_key, start=START, end=END, group_by="model,tool,member,workspace").json()
    events = raw_captured(world.organization.pk)
    assert {e["workspace_id"] for e in events} == {world.workspace.pk, world.other.pk}
    assert answered_by_day(body, keys) == expected_by_day(events, START, END, keys)
    assert body["totals"] == expected_totals(events, START, END)
    assert body["organization"] == world.organization.slug
    assert "workspace" not in body
    result = body["buckets"][0]["results"][0]
    assert list(result) == ["workspace", "member", "tool", "model", "generations", "units", "credits"]
    names = {world.workspace.pk: "Alpha", world.other.pk: "Beta"}
    emails = {user.pk: user.email for user in world.members}
    for bucket in body["buckets"]:
        for result in bucket["results"]:
            assert result["workspace"]["name"] == names[result["workspace"]["id"]]
            assert result["member"]["email"] == emails[result["member"]["id"]]


def test_held_and_released_generations_are_not_counted_and_a_capture_counts_what_it_captured(world):
    by_status = defaultdict(list)
    for event in UsageEvent.objects.filter(workspace=world.workspace, hold__isnull=False):
        by_status[event.status].append(event)
    assert {len(events) for events in by_status.values()} == {1}
    captured = by_status[UsageStatus.CAPTURED][0]
    assert captured.units == 3
    body = world.get(USAGE, world.key, start=START, end=END, bucket="none", group_by="tool").json()
    (bucket,) = body["buckets"]
    video = next(result for result in bucket["results"] if result["tool"] == "video")
    plain_video = UsageEvent.objects.filter(
        workspace=world.workspace, tool="video", hold__isnull=True, status=UsageStatus.CAPTURED
    )
    assert video["credits"] == captured.credits + sum(event.credits for event in plain_video)
    assert video["generations"] == 1 + plain_video.count()
    music = [result for result in bucket["results"] if result["tool"] == "music"]
    assert (
        sum(r["generations"] for r in music)
        == UsageEvent.objects.filter(workspace=world.workspace, tool="music", status=UsageStatus.CAPTURED).count()
    )


@pytest.mark.parametrize("bucket", ["hour", "day", "month", "none"])
def test_the_answer_equals_usage_totals_for_the_same_period(world, bucket):
    body = world.get(ORG_USAGE, world.admin_key, start=START, end=END, bucket=bucket, group_by="workspace,tool").json()
    low, high = local_range(START, END)
    period = None if bucket == "none" else bucket
    read = usage_totals(
        organization=world.organization, start=low, end=high, group_by=("workspace", "tool"), period=period
    )
    expected = {
        (row.period_start or low, row.workspace_id, row.tool): (row.generations, row.units, row.credits)
        for row in read.rows
        if row.generations
    }
    answered = {
        (datetime.fromisoformat(b["start"]), r["workspace"]["id"], r["tool"]): (
            r["generations"],
            r["units"],
            r["credits"],
        )
        for b in body["buckets"]
        for r in b["results"]
    }
    if bucket == "month":  # the first month starts before the range: the answer's first bucket is cut to it
        expected = {(max(start, low), *rest): sums for (start, *rest), sums in expected.items()}
    assert answered == expected
    assert body["totals"]["credits"] == sum(row.credits for row in read.rows)


@pytest.mark.parametrize(
    ("bucket", "count", "first", "last_end"),
    [
        ("hour", 5 * 24, "2026-03-29T00:00:00+05:30", "2026-04-03T00:00:00+05:30"),
        ("day", 5, "2026-03-29T00:00:00+05:30", "2026-04-03T00:00:00+05:30"),
        ("month", 2, "2026-03-29T00:00:00+05:30", "2026-04-03T00:00:00+05:30"),
        ("none", 1, "2026-03-29T00:00:00+05:30", "2026-04-03T00:00:00+05:30"),
    ],
)
def test_every_period_of_the_range_is_a_bucket_used_or_not(world, bucket, count, first, last_end):
    body = world.get(USAGE, world.key, start=START, end=END, bucket=bucket).json()
    buckets = body["buckets"]
    assert len(buckets) == count
    assert (buckets[0]["start"], buckets[-1]["end"]) == (first, last_end)
    for before, after in pairwise(buckets):
        assert before["end"] == after["start"]
    events = raw_captured(world.organization.pk, world.workspace.pk)
    for each in buckets:
        low, high = datetime.fromisoformat(each["start"]), datetime.fromisoformat(each["end"])
        assert bool(each["results"]) is any(low <= event["created_at"] < high for event in events)
    if bucket == "hour":
        assert any(not b["results"] for b in buckets)  # 8 moments cannot fill 120 hours: empty ones are there too
    assert sum(r["credits"] for b in buckets for r in b["results"]) == body["totals"]["credits"]
    if bucket == "month":
        assert buckets[0]["end"] == "2026-04-01T00:00:00+05:30"


def test_a_range_without_usage_answers_zeros_and_empty_buckets(world):
    body = world.get(USAGE, world.key, start="2025-01-01", end="2025-01-03", group_by="tool").json()
    assert [b["results"] for b in body["buckets"]] == [[], [], []]
    assert body["totals"] == dict.fromkeys(
        ("generations", "units", "credits", "chatbot_credits", "image_speech_credits"), 0
    )


def test_as_of_is_when_the_answer_was_computed(world):
    moment = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        body = world.get(USAGE, world.key, start=START, end=END).json()
    assert datetime.fromisoformat(body["as_of"]) == moment
    assert body["as_of"].endswith("+05:30")


# --- who sees what ---------------------------------------------------------------------------------------------


def test_a_workspace_key_sees_only_its_workspace(world):
    body = world.get(USAGE, world.key, start=START, end=END, bucket="none").json()
    mine = raw_captured(world.organization.pk, world.workspace.pk)
    assert body["totals"]["credits"] == sum(e["credits"] for e in mine)
    everything = raw_captured(world.organization.pk)
    assert body["totals"]["credits"] < sum(e["credits"] for e in everything)
    _, other_key = api_key_create(workspace=world.other, actor=world.owner, name="Beta tools")
    other = world.get(USAGE, other_key, start=START, end=END, bucket="none").json()
    assert other["workspace"] == world.other.pk
    assert body["totals"]["credits"] + other["totals"]["credits"] == sum(e["credits"] for e in everything)


def test_an_admin_key_sees_every_workspace_of_its_organization_and_never_another(world):
    body = world.get(ORG_USAGE, world.admin_key, start=START, end=END, bucket="none", group_by="workspace").json()
    seen = {r["workspace"]["id"] for b in body["buckets"] for r in b["results"]}
    assert seen == {world.workspace.pk, world.other.pk}
    assert body["totals"]["credits"] == sum(e["credits"] for e in raw_captured(world.organization.pk))
    foreign = world.get(ORG_USAGE, world.foreign_admin_key, start=START, end=END, group_by="workspace").json()
    assert foreign["organization"] == world.foreign.slug
    assert {r["workspace"]["id"] for b in foreign["buckets"] for r in b["results"]} == {world.foreign_workspace.pk}


def test_an_archived_workspace_still_counts_in_the_organization_report(world):
    before = world.get(ORG_USAGE, world.admin_key, start=START, end=END, bucket="none").json()["totals"]
    workspace_archive(workspace=world.other, actor=world.owner)
    after = world.get(ORG_USAGE, world.admin_key, start=START, end=END, bucket="none").json()["totals"]
    assert after == before


def unauthorized(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response["WWW-Authenticate"] == 'Bearer realm="qolaba"'


def test_a_workspace_key_is_refused_by_the_organization_report(world):
    unauthorized(world.get(ORG_USAGE, world.key, start=START, end=END))
    unauthorized(world.get(ORG_USAGE, None, start=START, end=END))
    unauthorized(world.get(ORG_USAGE, "qlbadm_12345678_" + "x" * 40, start=START, end=END))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/charges"),
        ("post", "/api/v1/holds"),
        ("post", "/api/v1/holds/1/capture"),
        ("post", "/api/v1/holds/1/release"),
        ("get", "/api/v1/workspace"),
        ("get", "/api/v1/prices"),
        ("get", USAGE),
    ],
)
def test_an_admin_key_is_refused_everywhere_but_the_organization_report(world, method, path):
    before = UsageEvent.objects.count()
    client = Client(raise_request_exception=False)
    body = {"member": world.members[0].email, "tool": "image", "model": "flux-pro", "units": 1}
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.admin_key}", "HTTP_IDEMPOTENCY_KEY": "admin-try"}
    if method == "post":
        response = client.post(path, body, content_type="application/json", **headers)
    else:
        response = client.get(path, {"start": START, "end": END}, **headers)
    unauthorized(response)
    assert UsageEvent.objects.count() == before


@pytest.mark.parametrize("how", ["revoked", "organization deleted"])
def test_dead_admin_keys_are_401_at_once(world, how):
    assert world.get(ORG_USAGE, world.admin_key, start=START, end=END).status_code == 200
    if how == "revoked":
        admin_key_revoke(admin_key=world.admin_key_row, actor=world.owner)
    else:
        organization_delete(organization=world.organization, actor=world.owner, confirm_name=world.organization.name)
    unauthorized(world.get(ORG_USAGE, world.admin_key, start=START, end=END))


def test_an_admin_key_records_when_it_was_last_used(world):
    assert world.admin_key_row.last_used_at is None
    world.get(ORG_USAGE, world.admin_key, start=START, end=END)
    assert AdminKey.objects.get(pk=world.admin_key_row.pk).last_used_at is not None


def test_a_removed_admin_does_not_stop_the_keys_they_made(world):
    """Keys belong to the organization, like workspace keys: Owners and Admins revoke them on the Profile tab."""
    admin = make_member(world.organization, role=OrganizationRole.ADMIN).user
    _, secret = admin_key_create(organization=world.organization, actor=admin, name="Made by an admin")
    assert world.get(ORG_USAGE, secret, start=START, end=END).status_code == 200


# --- cost ------------------------------------------------------------------------------------------------------


def _queries(world: World, path: str, key: str, **params: str) -> int:
    world.get(path, key, start=START, end=END, **params)  # marks the key used: not part of every request
    with CaptureQueriesContext(connection) as captured:
        response = world.get(path, key, start=START, end=END, **params)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("path", "params", "bound"),
    [
        (USAGE, {}, 3),  # the key, the roll-up's watermark, the read
        (USAGE, {"group_by": "tool,model,member", "bucket": "hour"}, 4),  # + the members' emails
        (ORG_USAGE, {"group_by": "workspace,member", "bucket": "month"}, 5),  # + the workspaces' names
    ],
)
def test_query_count_is_bounded_and_the_same_at_two_data_sizes(world, path, params, bound):
    key = world.key if path == USAGE else world.admin_key
    small = _queries(world, path, key, **params)
    world.add(60)
    assert _queries(world, path, key, **params) == small <= bound


def test_the_openapi_document_describes_both_reports():
    document = Client().get("/api/v1/openapi.json").json()
    for path, key in ((USAGE, "workspace"), (ORG_USAGE, "organization")):
        operation = document["paths"][path]["get"]
        names = {parameter["name"]: parameter for parameter in operation["parameters"]}
        assert set(names) == {"start", "end", "bucket", "group_by"}
        assert names["start"]["required"]
        assert names["end"]["required"]
        assert names["bucket"]["schema"]["enum"] == ["hour", "day", "month", "none"]
        assert {"200", "400", "401"} <= set(operation["responses"])
        schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
        assert key in schema["properties"]
    assert document["paths"][ORG_USAGE]["get"]["security"] == [{"AdminKey": []}]


@pytest.mark.django_db(transaction=True)
def test_the_answer_is_exact_across_the_rollup_and_the_events_after_its_watermark():
    """Committed usage, rolled up; then a late capture of a hold the roll-up saw held, and new charges in buckets
    it already holds: the answer still equals the raw captured events (the roll-up for what did not change since,
    the raw events for every bucket that did)."""
    world = World(events=12, seed=11)
    rollup_caught_up()
    assert UsageRollup.objects.filter(organization_id=world.organization.pk).exists()
    assert rollup_state().watermark > 0
    pending = UsageEvent.objects.get(workspace=world.workspace, status=UsageStatus.HELD)
    with time_machine.travel(pending.created_at + timedelta(minutes=20), tick=False):
        usage_hold_capture(
            event=held_event_find(workspace=world.workspace, event_id=pending.pk), workspace=world.workspace
        )
    for moment in MOMENTS[:4]:
        world.charge(moment + timedelta(seconds=5), tool="chat", units=2)
    keys = ("tool", "member")
    body = world.get(USAGE, world.key, start=START, end=END, group_by="tool,member").json()
    events = raw_captured(world.organization.pk, world.workspace.pk)
    assert answered_by_day(body, keys) == expected_by_day(events, START, END, keys)
    assert body["totals"] == expected_totals(events, START, END)
    org = world.get(ORG_USAGE, world.admin_key, start=START, end=END, bucket="month").json()
    assert org["totals"] == expected_totals(raw_captured(world.organization.pk), START, END)
