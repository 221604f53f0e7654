"""The metering API (`/api/v1/`), status by status, against the contract of issue 5.

Every test reads what the database holds afterwards (usage events, history items, ledger, stored answers), not
only the answer; `reconcile()` must find the ledger sound after every test (autouse fixture below).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils.timezone import now

from billing.ledger import available_credits, credits_grant, period_bounds
from billing.models import Hold, HoldStatus, LedgerTransaction, TransactionKind
from billing.reconcile import reconcile
from billing.services import credit_mode_switch, credits_transfer, workspace_limit_set
from orgs.models import CreditMode, Membership, Organization, OrganizationRole
from qolaba.lifecycle import organization_delete, workspace_archive
from tests.factories import make_member, make_organization, make_workspace
from tests.usage.conftest import MeteredWorkspace, make_metered_workspace
from usage.api.parser import MAX_BODY_BYTES
from usage.models import IdempotentRequest, Price, UsageEvent, UsageStatus
from workspaces.models import ApiKey, HistoryItem, Workspace, WorkspaceRole
from workspaces.services import api_key_create, api_key_revoke, member_remove, workspace_member_set

pytestmark = pytest.mark.django_db

CHARGES = "/api/v1/charges"
HOLDS = "/api/v1/holds"
JSON = "application/json"
START = 10_000  # credits of the metered organization
FLUX = {"tool": "image", "model": "flux-pro"}  # 12 credits per image
KLING = {"tool": "video", "model": "kling-1.6"}  # 20 credits per second
ERROR_KEYS = {"code", "message"}


def capture_url(hold_id: int | str) -> str:
    return f"/api/v1/holds/{hold_id}/capture"


def release_url(hold_id: int | str) -> str:
    return f"/api/v1/holds/{hold_id}/release"


class Api:
    """A test client speaking to the metering API with one workspace key (override per call)."""

    def __init__(self, metered: MeteredWorkspace, key: str | None = None) -> None:
        self.metered = metered
        self.key = key or metered.key
        self.client = Client(raise_request_exception=False)
        self._keys = 0

    def new_key(self) -> str:
        self._keys += 1
        return f"test-key-{self._keys}"

    def headers(self, auth: str | None, idempotency_key: str | None, extra: dict[str, str]) -> dict[str, str]:
        headers = {"HTTP_AUTHORIZATION": auth if auth is not None else f"Bearer {self.key}"}
        if idempotency_key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        return headers | extra

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = "auto",
        raw: bytes | str | None = None,
        auth: str | None = None,
        content_type: str = JSON,
        **extra: str,
    ):
        idempotency_key = self.new_key() if key == "auto" else key
        data = raw if raw is not None else json.dumps({} if body is None else body)
        return self.client.post(
            path, data=data, content_type=content_type, **self.headers(auth, idempotency_key, extra)
        )

    def get(self, path: str, *, auth: str | None = None, **extra: str):
        return self.client.get(path, **self.headers(auth, None, extra))

    def charge(self, member=None, *, units: int = 1, price=FLUX, history=None, key="auto", **kwargs):
        body = {"member": member or self.metered.member.email, **price, "units": units}
        if history is not None:
            body["history"] = history
        return self.post(CHARGES, body, key=key, **kwargs)

    def hold(self, member=None, *, units: int = 10, price=KLING, history=None, key="auto", **body_extra):
        body = {"member": member or self.metered.member.email, **price, "units": units, **body_extra}
        if history is not None:
            body["history"] = history
        return self.post(HOLDS, body, key=key)


@pytest.fixture(autouse=True)
def _ledger_stays_sound(db):
    yield
    assert reconcile() == []


@pytest.fixture
def api(metered) -> Api:
    return Api(metered)


def error_of(response, status: int, code: str) -> dict[str, Any]:
    """The error body, after checking the status, the JSON content type and the envelope."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(JSON)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def balance(metered: MeteredWorkspace, workspace: Workspace | None = None) -> int:
    organization = Organization.objects.get(pk=metered.organization.pk)
    return available_credits(workspace or metered.workspace, organization)


def written() -> tuple[int, int, int, int]:
    """What a refused request must not have added: usage events, history items, ledger transactions, stored
    answers."""
    return (
        UsageEvent.objects.count(),
        HistoryItem.objects.count(),
        LedgerTransaction.objects.count(),
        IdempotentRequest.objects.count(),
    )


def assert_nothing_written(metered: MeteredWorkspace, before: tuple[int, int, int, int], credits: int) -> None:
    assert written() == before
    assert balance(metered) == credits


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def assert_event(event_id: int, metered: MeteredWorkspace, **expected: Any) -> UsageEvent:
    """The usage event of a generation: organization, workspace, member, tool, model, units, credits, status,
    idempotency key, and its ledger transaction."""
    event = UsageEvent.objects.get(pk=event_id)
    assert event.organization_id == metered.organization.pk
    assert event.workspace_id == metered.workspace.pk
    expected.setdefault("user_id", metered.member.pk)
    for name, value in expected.items():
        assert getattr(event, name) == value, (name, getattr(event, name), value)
    txn = LedgerTransaction.objects.get(pk=event.ledger_transaction_id)
    assert txn.organization_id == metered.organization.pk
    assert txn.workspace_id == metered.workspace.pk
    kind = {
        UsageStatus.CAPTURED: TransactionKind.CAPTURE if event.hold_id else TransactionKind.CHARGE,
        UsageStatus.HELD: TransactionKind.HOLD,
        UsageStatus.RELEASED: TransactionKind.RELEASE,
    }[event.status]
    assert txn.kind == kind
    if kind == TransactionKind.CHARGE:
        assert txn.amount == event.credits
    return event


# --- 200: GET /workspace and GET /prices -----------------------------------------------------------------------


def test_workspace_in_shared_mode_shows_the_pool(api, metered):
    response = api.get("/api/v1/workspace")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(JSON)
    assert response.json() == {
        "id": metered.workspace.pk,
        "name": metered.workspace.name,
        "organization": {"slug": metered.organization.slug, "name": metered.organization.name},
        "credit_mode": "shared",
        "available_credits": START,
    }


def test_workspace_in_budget_mode_shows_its_own_balance(api, metered):
    organization = credit_mode_switch(organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner)
    primary = Workspace.objects.get(organization=organization, is_primary=True)
    body = api.get("/api/v1/workspace").json()
    assert body["credit_mode"] == "budget"
    assert body["available_credits"] == 0  # shared → budget starts every other workspace at zero

    credits_transfer(
        organization=organization, source=primary, target=metered.workspace, amount=2_500, actor=metered.owner
    )
    assert api.get("/api/v1/workspace").json()["available_credits"] == 2_500
    _, primary_key = api_key_create(workspace=primary, actor=metered.owner, name="Primary service")
    primary_view = Api(metered, primary_key).get("/api/v1/workspace").json()
    assert primary_view["id"] == primary.pk
    assert primary_view["available_credits"] == START - 2_500


def test_workspace_available_credits_count_pending_holds(api, metered):
    assert api.hold(units=10).status_code == 201
    assert api.get("/api/v1/workspace").json()["available_credits"] == START - 200


def test_prices_lists_the_active_price_list(api):
    Price.objects.filter(tool="chat", model="gpt-4o").update(is_active=False)
    response = api.get("/api/v1/prices")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"prices"}
    expected = list(Price.objects.active().values("tool", "model", "unit", "credits_per_unit"))
    assert body["prices"] == expected
    assert len(expected) >= 10
    assert {"tool": "image", "model": "flux-pro", "unit": "image", "credits_per_unit": 12} in body["prices"]
    assert not any(price["model"] == "gpt-4o" for price in body["prices"])
    for price in body["prices"]:
        assert set(price) == {"tool", "model", "unit", "credits_per_unit"}
        assert isinstance(price["credits_per_unit"], int)


def test_openapi_document_is_served_without_a_key():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for path in (
        "/api/v1/workspace",
        "/api/v1/prices",
        "/api/v1/charges",
        "/api/v1/holds",
        "/api/v1/holds/{hold_id}/capture",
        "/api/v1/holds/{hold_id}/release",
    ):
        assert path in paths, path


# --- 201: charges ----------------------------------------------------------------------------------------------


def test_charge_answers_201_and_records_event_history_and_ledger(api, metered):
    history = {"prompt": "a red fox", "output_text": "https://cdn/fox.png", "metadata": {"seed": 7, "size": "1024"}}
    response = api.charge(units=2, history=history, key="gen-1")
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith(JSON)
    assert "Idempotent-Replayed" not in response
    body = response.json()
    assert set(body) == {"id", "credits", "available_credits", "status"}
    assert body["credits"] == 24
    assert body["available_credits"] == START - 24
    assert body["status"] == "captured"
    assert isinstance(body["id"], int)

    event = assert_event(
        body["id"],
        metered,
        tool="image",
        model="flux-pro",
        units=2,
        credits=24,
        status=UsageStatus.CAPTURED,
        idempotency_key="gen-1",
        hold_id=None,
    )
    assert event.settled_at is not None
    item = HistoryItem.objects.get()
    assert (item.workspace_id, item.organization_id, item.author_id) == (
        metered.workspace.pk,
        metered.organization.pk,
        metered.member.pk,
    )
    assert (item.tool, item.model, item.credits, item.usage_event_id) == ("image", "flux-pro", 24, event.pk)
    assert (item.prompt, item.output_text, item.metadata) == ("a red fox", "https://cdn/fox.png", history["metadata"])
    assert balance(metered) == START - 24
    assert UsageEvent.objects.count() == 1


def test_charge_without_history_records_an_empty_history_item(api, metered):
    response = api.charge(units=1)
    assert response.status_code == 201, response.content
    item = HistoryItem.objects.get()
    assert (item.prompt, item.output_text, item.metadata) == ("", "", {})
    assert item.usage_event_id == response.json()["id"]


def test_each_tool_is_charged_at_its_price(api, metered):
    spent = 0
    for index, (tool, model, units, per_unit) in enumerate(
        [("chat", "gpt-4o-mini", 3, 1), ("speech", "whisper", 2, 3), ("music", "suno-v4", 1, 30)]
    ):
        response = api.charge(price={"tool": tool, "model": model}, units=units, key=f"tool-{index}")
        assert response.status_code == 201, response.content
        spent += units * per_unit
        assert response.json()["credits"] == units * per_unit
        assert response.json()["available_credits"] == START - spent
        assert_event(
            response.json()["id"],
            metered,
            tool=tool,
            model=model,
            units=units,
            credits=units * per_unit,
            status=UsageStatus.CAPTURED,
            idempotency_key=f"tool-{index}",
        )
    assert balance(metered) == START - spent
    assert HistoryItem.objects.count() == UsageEvent.objects.count() == 3


def test_member_email_is_case_insensitive_and_trimmed(api, metered):
    shouting = f"  {metered.member.email.upper()} "
    response = api.charge(shouting)
    assert response.status_code == 201, response.content
    assert UsageEvent.objects.get().user_id == metered.member.pk
    assert HistoryItem.objects.get().author_id == metered.member.pk


@pytest.mark.parametrize("who", ["owner", "org_admin", "workspace_admin"])
def test_owners_admins_and_workspace_admins_may_spend(api, metered, who):
    if who == "owner":
        user = metered.owner
    elif who == "org_admin":
        user = make_member(metered.organization, role=OrganizationRole.ADMIN).user  # assigned to no workspace
    else:
        user = make_member(metered.organization, workspaces={metered.workspace: WorkspaceRole.ADMIN}).user
    response = api.charge(user.email)
    assert response.status_code == 201, response.content
    assert UsageEvent.objects.get().user_id == user.pk


def test_key_records_when_it_was_last_used(api, metered):
    api_key = ApiKey.objects.get(workspace=metered.workspace)
    assert api_key.last_used_at is None
    before = now()
    assert api.get("/api/v1/workspace").status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert before <= api_key.last_used_at <= now()


def test_refused_requests_do_not_mark_another_key_used(api, metered):
    assert api.get("/api/v1/workspace", auth="Bearer qlb_00000000_" + "x" * 40).status_code == 401
    assert ApiKey.objects.get(workspace=metered.workspace).last_used_at is None


# --- replays ---------------------------------------------------------------------------------------------------


def test_replay_of_a_charge_answers_the_same_and_charges_once(api, metered):
    history = {"prompt": "a cat"}
    first = api.charge(units=3, history=history, key="retry-me")
    assert first.status_code == 201, first.content
    api.charge(units=1, key="something-else")  # the balance moves on meanwhile
    for _ in range(3):
        again = api.charge(units=3, history=history, key="retry-me")
        assert again.status_code == 201, again.content
        assert again.json() == first.json()  # the original body, available_credits included
        assert again["Idempotent-Replayed"] == "true"
    assert UsageEvent.objects.filter(idempotency_key="retry-me").count() == 1
    assert HistoryItem.objects.filter(prompt="a cat").count() == 1
    assert LedgerTransaction.objects.filter(kind=TransactionKind.CHARGE).count() == 2
    assert IdempotentRequest.objects.filter(key="retry-me").count() == 1
    assert balance(metered) == START - 36 - 12


def test_replay_with_the_member_email_in_another_case_is_the_same_request(api, metered):
    first = api.charge(metered.member.email, key="k")
    again = api.charge(metered.member.email.upper(), key="k")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert UsageEvent.objects.count() == 1


def test_replay_of_a_hold(api, metered):
    first = api.hold(units=5, key="hold-1")
    assert first.status_code == 201, first.content
    again = api.hold(units=5, key="hold-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Hold.objects.count() == UsageEvent.objects.count() == 1
    assert balance(metered) == START - 100


def test_replay_of_a_capture(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    first = api.post(capture_url(hold_id), {"units": 4}, key="cap-1")
    assert first.status_code == 200, first.content
    again = api.post(capture_url(hold_id), {"units": 4}, key="cap-1")
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert LedgerTransaction.objects.filter(kind=TransactionKind.CAPTURE).count() == 1
    assert HistoryItem.objects.count() == 1
    assert balance(metered) == START - 80


def test_the_same_key_in_another_workspace_is_another_request(api, metered):
    other = make_workspace(metered.organization)
    workspace_member_set(workspace=other, user=metered.member, role=WorkspaceRole.MEMBER, actor=None)
    _, other_key = api_key_create(workspace=other, actor=metered.owner, name="Other service")
    first = api.charge(key="shared-key")
    second = Api(metered, other_key).charge(key="shared-key")
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert first.json()["id"] != second.json()["id"]
    assert UsageEvent.objects.count() == 2


def test_replay_answers_the_original_even_after_the_price_was_deactivated(api, metered):
    first = api.charge(key="made")
    assert first.status_code == 201
    Price.objects.filter(tool="image", model="flux-pro").update(is_active=False)
    again = api.charge(key="made")
    assert again.status_code == 201, again.content
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_replay_answers_the_original_even_after_the_member_was_removed(api, metered):
    first = api.charge(key="made")
    assert first.status_code == 201
    membership = Membership.objects.get(organization=metered.organization, user=metered.member)
    member_remove(membership=membership, actor=metered.owner)
    again = api.charge(key="made")
    assert again.status_code == 201, again.content
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


# --- 409 idempotency_conflict ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"units": 2},
        {"model": "sdxl"},
        {"history": {"prompt": "another prompt"}},
        {"member": "other"},
    ],
    ids=["units", "model", "history", "member"],
)
def test_same_key_with_a_different_request_is_a_conflict(api, metered, change):
    other_member = make_member(metered.organization, workspaces={metered.workspace: WorkspaceRole.MEMBER}).user
    body = {"member": metered.member.email, **FLUX, "units": 1, "history": {"prompt": "first"}}
    assert api.post(CHARGES, body, key="k").status_code == 201
    before = written()
    if change.get("member") == "other":
        change = {"member": other_member.email}
    error = error_of(api.post(CHARGES, body | change, key="k"), 409, "idempotency_conflict")
    assert set(error) == ERROR_KEYS
    assert_nothing_written(metered, before, START - 12)


def test_a_charge_key_reused_for_a_hold_or_a_capture_is_a_conflict(api, metered):
    assert api.charge(key="k").status_code == 201
    before = written()
    error_of(api.hold(key="k"), 409, "idempotency_conflict")
    assert written() == before
    assert not Hold.objects.exists()
    hold_id = api.hold(key="h").json()["id"]
    before = written()
    error_of(api.post(capture_url(hold_id), {}, key="k"), 409, "idempotency_conflict")
    assert written() == before
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.HELD


def test_same_capture_key_with_other_units_is_a_conflict(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    assert api.post(capture_url(hold_id), {"units": 4}, key="cap").status_code == 200
    error_of(api.post(capture_url(hold_id), {"units": 5}, key="cap"), 409, "idempotency_conflict")
    assert balance(metered) == START - 80


# --- 400 invalid_request ---------------------------------------------------------------------------------------

VALID = {"member": "MEMBER", "tool": "image", "model": "flux-pro", "units": 1}


def _body(metered: MeteredWorkspace, change: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    body = {**VALID, "member": metered.member.email, **change}
    if drop:
        body.pop(drop)
    return body


INVALID_BODIES = [
    # (id, change, dropped field, the field named in "fields")
    ("units-0", {"units": 0}, None, "units"),
    ("units-negative", {"units": -3}, None, "units"),
    ("units-float", {"units": 1.5}, None, "units"),
    ("units-whole-float", {"units": 1.0}, None, "units"),
    ("units-string", {"units": "1"}, None, "units"),
    ("units-bool", {"units": True}, None, "units"),
    ("units-null", {"units": None}, None, "units"),
    ("units-list", {"units": [1]}, None, "units"),
    ("units-too-many", {"units": 1_000_001}, None, "units"),
    ("units-2**64", {"units": 2**64}, None, "units"),
    ("units-missing", {}, "units", "units"),
    ("member-int", {"member": 3}, None, "member"),
    ("member-null", {"member": None}, None, "member"),
    ("member-empty", {"member": ""}, None, "member"),
    ("member-missing", {}, "member", "member"),
    ("member-too-long", {"member": "a" * 250 + "@x.io"}, None, "member"),
    ("tool-missing", {}, "tool", "tool"),
    ("tool-int", {"tool": 5}, None, "tool"),
    ("tool-empty", {"tool": ""}, None, "tool"),
    ("model-missing", {}, "model", "model"),
    ("model-object", {"model": {"name": "flux-pro"}}, None, "model"),
    ("extra-field", {"colour": "red"}, None, "colour"),
    ("history-string", {"history": "a prompt"}, None, "history"),
    ("history-prompt-int", {"history": {"prompt": 5}}, None, "history.prompt"),
    ("history-extra", {"history": {"prompt": "x", "negative_prompt": "y"}}, None, "history.negative_prompt"),
    ("history-metadata-list", {"history": {"metadata": [1, 2]}}, None, "history.metadata"),
    ("history-prompt-too-long", {"history": {"prompt": "p" * 100_001}}, None, "history.prompt"),
]


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
@pytest.mark.parametrize(
    ("change", "drop", "field"), [case[1:] for case in INVALID_BODIES], ids=[c[0] for c in INVALID_BODIES]
)
def test_invalid_bodies_are_400_naming_the_field(api, metered, path, change, drop, field):
    before = written()
    error = error_of(api.post(path, _body(metered, change, drop)), 400, "invalid_request")
    assert isinstance(error["fields"], dict)
    assert field in error["fields"], error
    assert all(isinstance(message, str) for message in error["fields"].values())
    assert_nothing_written(metered, before, START)


@pytest.mark.parametrize(
    ("ttl", "valid"),
    [(0, False), (-1, False), (86_401, False), ("60", False), (1.5, False), (True, False), (1, True), (86_400, True)],
)
def test_hold_ttl_seconds_between_1_and_86400(api, metered, ttl, valid):
    response = api.post(HOLDS, _body(metered, {"ttl_seconds": ttl}))
    if valid:
        assert response.status_code == 201, response.content
        expires_at = parse_iso(response.json()["expires_at"])
        assert abs((expires_at - now()).total_seconds() - ttl) < 30
    else:
        error = error_of(response, 400, "invalid_request")
        assert "ttl_seconds" in error["fields"], error
        assert written()[0] == 0


def test_ttl_seconds_is_not_accepted_by_charges(api, metered):
    error = error_of(api.post(CHARGES, _body(metered, {"ttl_seconds": 60})), 400, "invalid_request")
    assert "ttl_seconds" in error["fields"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{'member': 'single quotes'}",
        b'{"member": "a@b.c", "units": 1',
        b"[]",
        b'[{"member": "a@b.c"}]',
        b"null",
        b'"a string"',
        b"42",
        b"\xff\xfe\xfa invalid utf-8",
        b'{"member": "\xc3\x28"}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=[
        "empty",
        "text",
        "single-quotes",
        "truncated",
        "empty-array",
        "array",
        "null",
        "string",
        "number",
        "invalid-utf8",
        "invalid-utf8-in-string",
        "deeply-nested",
    ],
)
@pytest.mark.parametrize("path", [CHARGES, HOLDS, "capture"])
def test_bodies_that_are_not_a_json_object_are_400(api, metered, raw, path):
    if path == "capture":
        path = capture_url(api.hold().json()["id"])
    before = written()
    error = error_of(api.post(path, raw=raw), 400, "invalid_request")
    assert isinstance(error["fields"], dict)
    assert written() == before


def test_form_encoded_body_is_400(api, metered):
    response = api.post(CHARGES, raw="member=a%40b.c&units=1", content_type="application/x-www-form-urlencoded")
    error_of(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [{"units": 0}, {"units": -1}, {"units": 1.5}, {"units": "2"}, {"units": True}, {"extra": 1}, {"history": []}],
    ids=["zero", "negative", "float", "string", "bool", "extra", "history-list"],
)
def test_invalid_capture_bodies_are_400(api, metered, body):
    hold_id = api.hold(units=10).json()["id"]
    before = written()
    error = error_of(api.post(capture_url(hold_id), body), 400, "invalid_request")
    assert isinstance(error["fields"], dict)
    assert error["fields"]
    assert written() == before
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.HELD


def test_non_integer_hold_id_is_refused(api, metered):
    for path in (capture_url("abc"), capture_url("1.5")):
        response = api.post(path, {})
        assert response.status_code in (400, 404), response.content
        assert response.json()["error"]["code"] in ("invalid_request", "not_found")


# --- 400 unknown_price -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "price",
    [
        {"tool": "image", "model": "no-such-model"},
        {"tool": "hologram", "model": "flux-pro"},
        {"tool": "chat", "model": "flux-pro"},  # a model of another tool
        {"tool": "IMAGE", "model": "flux-pro"},
        {"tool": "chat", "model": "gpt-4o"},  # deactivated below
    ],
    ids=["model", "tool", "mismatch", "case", "inactive"],
)
@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_unknown_price_is_400(api, metered, price, path):
    Price.objects.filter(tool="chat", model="gpt-4o").update(is_active=False)
    before = written()
    body = {"member": metered.member.email, **price, "units": 1}
    error = error_of(api.post(path, body), 400, "unknown_price")
    assert "prices" in error["message"]
    assert_nothing_written(metered, before, START)


# --- 400 missing_idempotency_key and malformed keys -------------------------------------------------------------


@pytest.mark.parametrize("path", [CHARGES, HOLDS, "capture"])
def test_missing_idempotency_key_is_400(api, metered, path):
    if path == "capture":
        path = capture_url(api.hold().json()["id"])
        body = {}
    else:
        body = _body(metered, {})
    before = written()
    error_of(api.post(path, body, key=None), 400, "missing_idempotency_key")
    assert_nothing_written(metered, before, balance(metered))


def test_empty_idempotency_key_is_400(api, metered):
    response = api.post(CHARGES, _body(metered, {}), key="")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("missing_idempotency_key", "invalid_request")
    assert written()[0] == 0


@pytest.mark.parametrize(
    "key",
    ["x" * 256, "two words", "tab\there", "del\x7f", "caf\u00e9", " leading", "trailing ", "x" * 1000],
    ids=["256-chars", "space", "tab", "del", "non-ascii", "leading-space", "trailing-space", "1000-chars"],
)
@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_malformed_idempotency_key_is_400(api, metered, key, path):
    before = written()
    error = error_of(api.post(path, _body(metered, {}), key=key), 400, "invalid_request")
    assert "Idempotency-Key" in error["fields"]
    assert_nothing_written(metered, before, START)


@pytest.mark.parametrize("key", ["x" * 255, "k", "!~", "".join(chr(c) for c in range(0x21, 0x7F))])
def test_idempotency_keys_of_1_to_255_visible_ascii_chars_are_accepted(api, metered, key):
    response = api.post(CHARGES, _body(metered, {}), key=key)
    assert response.status_code == 201, response.content
    assert UsageEvent.objects.get().idempotency_key == key
    again = api.post(CHARGES, _body(metered, {}), key=key)
    assert again["Idempotent-Replayed"] == "true"


# --- 401 invalid_api_key ---------------------------------------------------------------------------------------

BAD_AUTH = {
    "missing": "",
    "basic": "Basic dXNlcjpwYXNz",
    "bearer-nothing": "Bearer",
    "bearer-blank": "Bearer    ",
    "garbage": "Bearer not-a-key",
    "wrong-prefix-length": "Bearer qlb_123_" + "x" * 40,
    "unknown": "Bearer qlb_0badc0de_" + "x" * 40,
    "token-only": "KEY",
}

ENDPOINTS = [
    ("get", "/api/v1/workspace"),
    ("get", "/api/v1/prices"),
    ("post", CHARGES),
    ("post", HOLDS),
    ("post", capture_url(1)),
    ("post", release_url(1)),
]


def _call(api: Api, method: str, path: str, auth: str):
    if method == "get":
        return api.get(path, auth=auth)
    return api.post(path, _body(api.metered, {}), auth=auth)


def assert_401(response) -> None:
    error = error_of(response, 401, "invalid_api_key")
    assert set(error) == ERROR_KEYS
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("auth", list(BAD_AUTH.values()), ids=list(BAD_AUTH))
def test_bad_credentials_are_401(api, metered, method, path, auth):
    before = written()
    assert_401(_call(api, method, path, auth))
    assert_nothing_written(metered, before, START)


def test_the_right_prefix_with_a_wrong_secret_is_401(api, metered):
    prefix = ApiKey.objects.get(workspace=metered.workspace).prefix
    forged = f"qlb_{prefix}_{'A' * 40}"
    assert_401(api.get("/api/v1/workspace", auth=f"Bearer {forged}"))
    assert_401(api.charge(auth=f"Bearer {forged}"))
    assert_401(api.get("/api/v1/workspace", auth=f"Bearer {metered.key}x"))
    assert_401(api.get("/api/v1/workspace", auth=f"Bearer {metered.key[:-1]}"))


def _kill_key(metered: MeteredWorkspace, how: str) -> None:
    if how == "revoked":
        api_key_revoke(api_key=ApiKey.objects.get(workspace=metered.workspace), actor=metered.owner)
    elif how == "archived-workspace":
        workspace_archive(workspace=metered.workspace, actor=metered.owner)
    else:
        organization_delete(
            organization=metered.organization, actor=metered.owner, confirm_name=metered.organization.name
        )


@pytest.mark.parametrize("how", ["revoked", "archived-workspace", "deleted-organization"])
def test_dead_keys_are_401_at_once(api, metered, how):
    hold_id = api.hold().json()["id"]
    assert api.charge().status_code == 201
    _kill_key(metered, how)
    before = written()
    for method, path in [*ENDPOINTS, ("post", capture_url(hold_id)), ("post", release_url(hold_id))]:
        assert_401(_call(api, method, path, f"Bearer {metered.key}"))
    assert written() == before
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.HELD


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        ({"raw": b"not json"}, "invalid_request"),
        ({"raw": b'{"member": "a@b.c", "tool": "chat\\u0000"}'}, "invalid_request"),
        ({"body": {"units": "x"}}, "invalid_request"),
        (
            {"body": {"member": "a@b.c", "tool": "chat", "model": "gpt-4o-mini", "units": 1}, "key": None},
            "missing_idempotency_key",
        ),
    ],
    ids=["not-json", "nul", "invalid-fields", "no-idempotency-key"],
)
def test_a_dead_key_with_a_bad_request_is_401_not_400(api, metered, path, request_kwargs, code):
    error_of(api.post(path, **request_kwargs), 400, code)  # a live key hears what is wrong with the request
    _kill_key(metered, "revoked")
    before = written()
    assert_401(api.post(path, **request_kwargs))
    assert written() == before


def test_auth_is_checked_before_the_body(api, metered):
    assert_401(api.post(CHARGES, raw=b"not json", auth=""))
    assert_401(api.post(CHARGES, {"units": "x"}, key=None, auth="Bearer nope"))


def test_other_keys_of_the_workspace_keep_working_after_one_is_revoked(api, metered):
    _, second = api_key_create(workspace=metered.workspace, actor=metered.owner, name="Second")
    api_key_revoke(api_key=ApiKey.objects.get(workspace=metered.workspace, name="Image service"), actor=metered.owner)
    assert_401(api.get("/api/v1/workspace"))
    assert Api(metered, second).get("/api/v1/workspace").status_code == 200


# --- 402 insufficient_credits ----------------------------------------------------------------------------------


def _assert_refused_then_retry(api, metered, path, *, limit, available, resets_at, raise_limit, paying=None):
    """The request is refused 402 with the limit, what is left and when it resets; nothing is written; the very
    same request (same key) succeeds once the limit is lifted."""
    paying = paying or metered.workspace
    body = {"member": metered.member.email, **FLUX, "units": 3, "history": {"prompt": "refused"}}
    start = balance(metered, paying)
    before = written()
    response = api.post(path, body, key="will-retry")
    error = error_of(response, 402, "insufficient_credits")
    assert set(error) == ERROR_KEYS | {"limit", "available", "resets_at"}
    assert error["limit"] == limit
    assert error["available"] == available
    if resets_at is None:
        assert error["resets_at"] is None
    else:
        assert parse_iso(error["resets_at"]) == resets_at
    assert "Idempotent-Replayed" not in response
    assert written() == before
    assert balance(metered, paying) == start
    assert not HistoryItem.objects.filter(prompt="refused").exists()

    raise_limit()
    again = api.post(path, body, key="will-retry")
    assert again.status_code == 201, again.content
    assert "Idempotent-Replayed" not in again
    assert again.json()["credits"] == 36
    assert UsageEvent.objects.filter(idempotency_key="will-retry").count() == 1


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_402_workspace_balance_in_budget_mode(api, metered, path):
    organization = credit_mode_switch(organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner)
    primary = Workspace.objects.get(organization=organization, is_primary=True)
    credits_transfer(
        organization=organization, source=primary, target=metered.workspace, amount=20, actor=metered.owner
    )

    def top_up():
        credits_transfer(
            organization=organization, source=primary, target=metered.workspace, amount=100, actor=metered.owner
        )

    _assert_refused_then_retry(
        api, metered, path, limit="workspace_balance", available=20, resets_at=None, raise_limit=top_up
    )
    assert balance(metered) == 120 - 36
    assert balance(metered, primary) == START - 120  # the pool of the others was not touched


def test_402_at_zero_in_budget_mode(api, metered):
    credit_mode_switch(organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner)
    error = error_of(api.charge(), 402, "insufficient_credits")
    assert (error["limit"], error["available"], error["resets_at"]) == ("workspace_balance", 0, None)


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_402_pool_in_shared_mode(path):
    metered = make_metered_workspace(credits=30)
    api = Api(metered)

    def grant():
        credits_grant(organization=metered.organization, amount=100, actor=None)

    _assert_refused_then_retry(api, metered, path, limit="pool", available=30, resets_at=None, raise_limit=grant)
    assert balance(metered) == 130 - 36


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_402_workspace_monthly_limit(api, metered, path):
    workspace_limit_set(workspace=metered.workspace, user=None, monthly_limit=50, actor=metered.owner)
    assert api.charge(units=2).status_code == 201  # 24 of the 50 spent

    def raise_limit():
        workspace_limit_set(workspace=metered.workspace, user=None, monthly_limit=1_000, actor=metered.owner)

    _, resets_at = period_bounds(metered.organization)
    _assert_refused_then_retry(
        api,
        metered,
        path,
        limit="workspace_monthly_limit",
        available=26,
        resets_at=resets_at,
        raise_limit=raise_limit,
    )


@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_402_member_monthly_limit(api, metered, path):
    workspace_limit_set(workspace=metered.workspace, user=metered.member, monthly_limit=30, actor=metered.owner)
    assert api.charge(units=1).status_code == 201

    def raise_limit():
        workspace_limit_set(workspace=metered.workspace, user=metered.member, monthly_limit=None, actor=metered.owner)

    _, resets_at = period_bounds(metered.organization)
    _assert_refused_then_retry(
        api, metered, path, limit="member_monthly_limit", available=18, resets_at=resets_at, raise_limit=raise_limit
    )
    # The member's limit is the member's: another member of the workspace still spends.
    other = make_member(metered.organization, workspaces={metered.workspace: WorkspaceRole.MEMBER}).user
    assert api.charge(other.email).status_code == 201


def test_402_reports_the_first_binding_limit_with_its_reset_in_the_org_time_zone(api, metered):
    Organization.objects.filter(pk=metered.organization.pk).update(timezone="Asia/Kolkata")
    metered.organization.refresh_from_db()
    workspace_limit_set(workspace=metered.workspace, user=None, monthly_limit=10, actor=metered.owner)
    error = error_of(api.charge(), 402, "insufficient_credits")
    resets_at = parse_iso(error["resets_at"])
    assert resets_at == period_bounds(metered.organization)[1]
    assert resets_at.utcoffset() == timedelta(hours=5, minutes=30)


def test_pending_holds_count_against_the_pool():
    metered = make_metered_workspace(credits=200)
    api = Api(metered)
    assert api.hold(units=10).status_code == 201  # 200 held
    error = error_of(api.charge(units=1), 402, "insufficient_credits")
    assert (error["limit"], error["available"]) == ("pool", 0)


# --- 403 member_not_allowed ------------------------------------------------------------------------------------


def _stranger(metered: MeteredWorkspace, who: str) -> str:
    if who == "viewer":
        return metered.viewer.email
    if who == "removed":
        membership = Membership.objects.get(organization=metered.organization, user=metered.member)
        member_remove(membership=membership, actor=metered.owner)
        return metered.member.email
    if who == "unknown-email":
        return "nobody@example.com"
    if who == "other-workspace":
        other = make_workspace(metered.organization)
        return make_member(metered.organization, workspaces={other: WorkspaceRole.MEMBER}).user.email
    if who == "other-organization":
        return Membership.objects.get(organization=make_organization()).user.email
    if who == "inactive":
        metered.member.is_active = False
        metered.member.save(update_fields=["is_active"])
        return metered.member.email
    if who == "org-member-without-workspace":
        return make_member(metered.organization).user.email
    raise AssertionError(who)


@pytest.mark.parametrize(
    "who",
    [
        "viewer",
        "removed",
        "unknown-email",
        "other-workspace",
        "other-organization",
        "inactive",
        "org-member-without-workspace",
    ],
)
@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_members_who_may_not_spend_are_403(api, metered, who, path):
    email = _stranger(metered, who)
    before = written()
    error = error_of(api.post(path, _body(metered, {"member": email})), 403, "member_not_allowed")
    assert set(error) == ERROR_KEYS
    assert_nothing_written(metered, before, START)


def test_viewer_in_another_case_is_still_403(api, metered):
    error_of(api.charge(metered.viewer.email.upper()), 403, "member_not_allowed")


def test_a_removed_members_history_and_usage_stay(api, metered):
    assert api.charge(history={"prompt": "before removal"}).status_code == 201
    membership = Membership.objects.get(organization=metered.organization, user=metered.member)
    member_remove(membership=membership, actor=metered.owner)
    error_of(api.charge(), 403, "member_not_allowed")
    item = HistoryItem.objects.get()
    assert (item.prompt, item.author_id) == ("before removal", metered.member.pk)
    assert UsageEvent.objects.get().user_id == metered.member.pk


# --- 404 not_found ---------------------------------------------------------------------------------------------


def _assert_404(response) -> None:
    error_of(response, 404, "not_found")


@pytest.mark.parametrize("hold_id", [999_999, 99999999999999999999, 2**63, 2**63 - 1, 0, -1])
def test_unknown_hold_is_404(api, metered, hold_id):
    assert api.hold().status_code == 201
    before = written()
    _assert_404(api.post(capture_url(hold_id), {}))
    _assert_404(api.post(release_url(hold_id), {}, key=None))
    assert written() == before


def test_a_charge_is_not_a_hold(api, metered):
    charge_id = api.charge().json()["id"]
    before = written()
    _assert_404(api.post(capture_url(charge_id), {}))
    _assert_404(api.post(release_url(charge_id), {}, key=None))
    assert written() == before
    assert balance(metered) == START - 12


def test_another_workspaces_hold_is_404_and_untouched(api, metered):
    other = make_metered_workspace()
    hold_id = Api(other).hold(units=10).json()["id"]
    before = written()
    _assert_404(api.post(capture_url(hold_id), {}))
    _assert_404(api.post(release_url(hold_id), {}, key=None))
    assert written() == before
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.HELD
    assert balance(other) == START - 200
    # ... and same organization, another workspace: also 404.
    sibling = make_workspace(metered.organization)
    _, sibling_key = api_key_create(workspace=sibling, actor=metered.owner, name="Sibling")
    own_hold = api.hold().json()["id"]
    _assert_404(Api(metered, sibling_key).post(capture_url(own_hold), {}))
    _assert_404(Api(metered, sibling_key).post(release_url(own_hold), {}, key=None))
    assert UsageEvent.objects.get(pk=own_hold).status == UsageStatus.HELD


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nope"),
        ("get", "/api/v1/charges/1"),
        ("post", "/api/v1/holds/1"),
        ("post", "/api/v1/holds/1/explode"),
        ("post", "/api/v1/holds//capture"),
        ("get", "/api/v2/workspace"),
        ("get", "/api/"),
        ("get", "/api/v1/workspace/extra"),
    ],
)
@pytest.mark.parametrize("authenticated", [True, False])
def test_unknown_paths_under_the_api_are_json_404(api, metered, method, path, authenticated):
    auth = None if authenticated else ""
    response = api.get(path, auth=auth) if method == "get" else api.post(path, {}, auth=auth)
    _assert_404(response)


def test_the_api_root_is_a_json_404(api):
    _assert_404(api.get("/api/v1/"))


# --- 409 hold_not_pending and hold life cycle -------------------------------------------------------------------


def test_hold_answers_201_with_expiry_and_reserves_the_credits(api, metered):
    started = now()
    response = api.hold(units=10, history={"prompt": "a waterfall"}, key="h-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "credits", "expires_at", "status"}
    assert (body["credits"], body["status"]) == (200, "held")
    expires_at = parse_iso(body["expires_at"])
    assert started + timedelta(seconds=900) <= expires_at <= now() + timedelta(seconds=900)
    event = assert_event(
        body["id"], metered, tool="video", model="kling-1.6", units=10, credits=200, status=UsageStatus.HELD
    )
    assert event.idempotency_key == "h-1"
    hold = Hold.objects.get(pk=event.hold_id)
    assert (hold.status, hold.amount, hold.expires_at) == (HoldStatus.PENDING, 200, expires_at)
    assert not HistoryItem.objects.exists()  # the history is recorded when the generation is captured
    assert balance(metered) == START - 200


def test_full_capture_by_default(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    response = api.post(capture_url(hold_id), {}, key="cap")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"id": hold_id, "credits": 200, "available_credits": START - 200, "status": "captured"}
    assert_event(hold_id, metered, units=10, credits=200, status=UsageStatus.CAPTURED, tool="video", model="kling-1.6")
    assert Hold.objects.get().status == HoldStatus.CAPTURED
    assert HistoryItem.objects.get().credits == 200


def test_partial_capture_returns_the_remainder(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    response = api.post(capture_url(hold_id), {"units": 4})
    assert response.status_code == 200, response.content
    assert response.json() == {"id": hold_id, "credits": 80, "available_credits": START - 80, "status": "captured"}
    event = assert_event(hold_id, metered, units=4, credits=80, status=UsageStatus.CAPTURED)
    assert event.settled_at is not None
    assert Hold.objects.get().captured_amount == 80
    assert balance(metered) == START - 80
    assert api.get("/api/v1/workspace").json()["available_credits"] == START - 80


def test_partial_capture_in_budget_mode_returns_the_remainder_to_the_workspace(api, metered):
    organization = credit_mode_switch(organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner)
    primary = Workspace.objects.get(organization=organization, is_primary=True)
    credits_transfer(
        organization=organization, source=primary, target=metered.workspace, amount=500, actor=metered.owner
    )
    hold_id = api.hold(units=10).json()["id"]
    assert balance(metered) == 300
    response = api.post(capture_url(hold_id), {"units": 1})
    assert response.json()["available_credits"] == 480
    assert balance(metered) == 480
    assert balance(metered, primary) == START - 500


@pytest.mark.parametrize("units", [11, 1_000_000])
def test_capture_above_the_held_units_is_400_and_changes_nothing(api, metered, units):
    hold_id = api.hold(units=10).json()["id"]
    before = written()
    error = error_of(api.post(capture_url(hold_id), {"units": units}, key="too-much"), 400, "invalid_request")
    assert "units" in error["fields"]
    assert written() == before
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.HELD
    assert Hold.objects.get().status == HoldStatus.PENDING
    assert balance(metered) == START - 200
    # The refusal was not stored: the same key may now be used for a valid capture.
    assert api.post(capture_url(hold_id), {"units": 10}, key="too-much").status_code == 200


def test_history_given_at_hold_and_capture_is_merged_into_one_item(api, metered):
    hold_id = api.hold(units=5, history={"prompt": "a drone shot", "metadata": {"fps": 24, "style": "draft"}}).json()[
        "id"
    ]
    response = api.post(
        capture_url(hold_id), {"units": 5, "history": {"output_text": "video.mp4", "metadata": {"style": "final"}}}
    )
    assert response.status_code == 200, response.content
    item = HistoryItem.objects.get()
    assert item.prompt == "a drone shot"
    assert item.output_text == "video.mp4"
    assert item.metadata == {"fps": 24, "style": "final"}
    assert (item.usage_event_id, item.credits, item.author_id) == (hold_id, 100, metered.member.pk)
    assert item.workspace_id == metered.workspace.pk
    assert UsageEvent.objects.get(pk=hold_id).history_draft is None


def test_capture_history_without_a_hold_history(api, metered):
    hold_id = api.hold(units=1).json()["id"]
    api.post(capture_url(hold_id), {"history": {"prompt": "late prompt"}})
    assert HistoryItem.objects.get().prompt == "late prompt"


def test_release_gives_the_credits_back(api, metered):
    hold_id = api.hold(units=10, history={"prompt": "never made"}).json()["id"]
    assert balance(metered) == START - 200
    response = api.post(release_url(hold_id), key=None)
    assert response.status_code == 200, response.content
    assert response.json() == {"id": hold_id, "status": "released"}
    event = assert_event(hold_id, metered, status=UsageStatus.RELEASED, credits=0)
    assert event.settled_at is not None
    assert Hold.objects.get().status == HoldStatus.RELEASED
    assert balance(metered) == START
    assert not HistoryItem.objects.exists()


def test_release_twice_is_harmless(api, metered):
    hold_id = api.hold().json()["id"]
    assert api.post(release_url(hold_id), key=None).status_code == 200
    again = api.post(release_url(hold_id), key=None)
    assert again.status_code == 200
    assert again.json() == {"id": hold_id, "status": "released"}
    assert LedgerTransaction.objects.filter(kind=TransactionKind.RELEASE).count() == 1
    assert balance(metered) == START


def test_capture_twice_with_different_keys_is_409(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    assert api.post(capture_url(hold_id), {"units": 3}, key="a").status_code == 200
    before = written()
    error = error_of(api.post(capture_url(hold_id), {"units": 3}, key="b"), 409, "hold_not_pending")
    assert set(error) == ERROR_KEYS
    assert written() == before
    assert balance(metered) == START - 60


def test_capture_after_release_is_409(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    assert api.post(release_url(hold_id), key=None).status_code == 200
    before = written()
    error_of(api.post(capture_url(hold_id), {}), 409, "hold_not_pending")
    assert written() == before
    assert balance(metered) == START


def test_release_after_capture_is_409(api, metered):
    hold_id = api.hold(units=10).json()["id"]
    assert api.post(capture_url(hold_id), {"units": 2}).status_code == 200
    before = written()
    error_of(api.post(release_url(hold_id), key=None), 409, "hold_not_pending")
    assert written() == before
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.CAPTURED
    assert balance(metered) == START - 40


def test_capture_of_an_expired_hold_is_409(api, metered):
    hold_id = api.hold(units=10, ttl_seconds=60).json()["id"]
    with time_machine.travel(now() + timedelta(seconds=61), tick=False):
        error_of(api.post(capture_url(hold_id), {}), 409, "hold_not_pending")
    assert not HistoryItem.objects.exists()
    assert UsageEvent.objects.get(pk=hold_id).status != UsageStatus.CAPTURED
    assert LedgerTransaction.objects.filter(kind=TransactionKind.CAPTURE).count() == 0


def test_capture_of_an_expired_hold_releases_it_as_the_answer_says(api, metered):
    hold_id = api.hold(units=10, ttl_seconds=60).json()["id"]
    with time_machine.travel(now() + timedelta(seconds=61), tick=False):
        error = error_of(api.post(capture_url(hold_id), {}), 409, "hold_not_pending")
    assert "released" in error["message"]
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.RELEASED
    assert balance(metered) == START


def test_capture_after_the_sweeper_released_it_is_409(api, metered):
    from usage.tasks import holds_expire_run

    hold_id = api.hold(units=10, ttl_seconds=60).json()["id"]
    with time_machine.travel(now() + timedelta(seconds=61), tick=False):
        assert holds_expire_run.delay().get() == 1
    assert balance(metered) == START
    error_of(api.post(capture_url(hold_id), {}), 409, "hold_not_pending")
    assert balance(metered) == START


def test_an_expired_hold_not_yet_swept_can_be_released(api, metered):
    hold_id = api.hold(units=10, ttl_seconds=60).json()["id"]
    with time_machine.travel(now() + timedelta(seconds=61), tick=False):
        response = api.post(release_url(hold_id), key=None)
    assert response.status_code == 200
    assert balance(metered) == START


# --- 413 payload_too_large -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CHARGES, HOLDS, "capture", "release", "/api/v1/workspace"])
def test_bodies_over_1_mib_are_413(api, metered, path):
    if path in ("capture", "release"):
        hold_id = api.hold().json()["id"]
        path = capture_url(hold_id) if path == "capture" else release_url(hold_id)
    body = _body(metered, {"history": {"prompt": "p" * MAX_BODY_BYTES}})
    before = written()
    error = error_of(api.post(path, body), 413, "payload_too_large")
    assert set(error) == ERROR_KEYS
    assert_nothing_written(metered, before, balance(metered))
    assert UsageEvent.objects.filter(status=UsageStatus.CAPTURED).count() == 0


def test_413_comes_before_authentication(api):
    response = api.post(CHARGES, raw=b" " * (MAX_BODY_BYTES + 1), auth="")
    error_of(response, 413, "payload_too_large")


def test_a_body_of_exactly_1_mib_is_not_413(api, metered):
    prefix = json.dumps(_body(metered, {}))[:-1] + ', "history": {"metadata": {"pad": "'
    suffix = '"}}}'
    raw = prefix + "x" * (MAX_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(raw.encode()) == MAX_BODY_BYTES
    response = api.post(CHARGES, raw=raw)
    assert response.status_code == 201, response.content[:300]


# --- isolation between workspaces ------------------------------------------------------------------------------


def test_a_key_of_workspace_a_never_touches_workspace_b(api, metered):
    organization = credit_mode_switch(organization=metered.organization, mode=CreditMode.BUDGET, actor=metered.owner)
    primary = Workspace.objects.get(organization=organization, is_primary=True)
    workspace_b = make_workspace(organization, name="B")
    workspace_member_set(workspace=workspace_b, user=metered.member, role=WorkspaceRole.MEMBER, actor=None)
    for target in (metered.workspace, workspace_b):
        credits_transfer(organization=organization, source=primary, target=target, amount=1_000, actor=metered.owner)
    _, key_b = api_key_create(workspace=workspace_b, actor=metered.owner, name="B service")
    api_b = Api(metered, key_b)
    hold_b = api_b.hold(units=5).json()["id"]

    assert api.charge(units=2, history={"prompt": "made in A"}).status_code == 201
    hold_a = api.hold(units=1).json()["id"]
    assert api.post(capture_url(hold_a), {"history": {"prompt": "also A"}}).status_code == 200
    _assert_404(api.post(capture_url(hold_b), {}))
    _assert_404(api.post(release_url(hold_b), key=None))

    assert api.get("/api/v1/workspace").json()["id"] == metered.workspace.pk
    assert api_b.get("/api/v1/workspace").json()["id"] == workspace_b.pk
    assert set(UsageEvent.objects.exclude(pk=hold_b).values_list("workspace_id", flat=True)) == {metered.workspace.pk}
    assert set(HistoryItem.objects.values_list("workspace_id", flat=True)) == {metered.workspace.pk}
    assert not HistoryItem.objects.filter(workspace=workspace_b).exists()
    assert balance(metered, workspace_b) == 1_000 - 100  # only its own hold
    assert balance(metered) == 1_000 - 24 - 20
    assert UsageEvent.objects.get(pk=hold_b).status == UsageStatus.HELD


def test_a_member_of_both_workspaces_is_charged_where_the_key_belongs(api, metered):
    workspace_b = make_workspace(metered.organization)
    workspace_member_set(workspace=workspace_b, user=metered.member, role=WorkspaceRole.MEMBER, actor=None)
    response = api.charge()
    assert UsageEvent.objects.get(pk=response.json()["id"]).workspace_id == metered.workspace.pk
    assert LedgerTransaction.objects.get(kind=TransactionKind.CHARGE).workspace_id == metered.workspace.pk


# --- inputs that must never be a 500 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"member": "nul\u0000@example.com"},
        {"tool": "im\u0000age"},
        {"model": "flux\u0000pro"},
        {"history": {"prompt": "a\u0000b"}},
        {"history": {"output_text": "\u0000"}},
        {"history": {"metadata": {"k": "v\u0000"}}},
        {"history": {"metadata": {"k\u0000": 1}}},
    ],
    ids=["member", "tool", "model", "prompt", "output_text", "metadata-value", "metadata-key"],
)
@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_nul_characters_are_400_not_500(api, metered, change, path):
    before = written()
    response = api.post(path, _body(metered, change))
    error_of(response, 400, "invalid_request")
    assert written() == before


def test_nul_characters_in_a_capture_history_are_400_not_500(api, metered):
    hold_id = api.hold().json()["id"]
    error_of(api.post(capture_url(hold_id), {"history": {"prompt": "\u0000"}}), 400, "invalid_request")
    assert UsageEvent.objects.get(pk=hold_id).status == UsageStatus.HELD


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("path", [CHARGES, HOLDS])
def test_non_json_numbers_are_400_not_500(api, metered, number, path):
    body = json.dumps(_body(metered, {"history": {"metadata": {"score": "NUMBER"}}})).replace('"NUMBER"', number)
    before = written()
    error_of(api.post(path, raw=body), 400, "invalid_request")
    assert written() == before


def test_lone_surrogates_are_400(api, metered):
    raw = json.dumps(_body(metered, {"history": {"prompt": "PLACEHOLDER"}})).replace("PLACEHOLDER", "\\ud800")
    error_of(api.post(CHARGES, raw=raw), 400, "invalid_request")


def test_duplicate_json_keys_do_not_break_the_api(api, metered):
    raw = json.dumps(_body(metered, {}))[:-1] + ', "units": 2}'
    response = api.post(CHARGES, raw=raw)
    assert response.status_code in (201, 400)


@pytest.mark.parametrize(("method", "path"), [("get", CHARGES), ("put", "/api/v1/workspace"), ("delete", HOLDS)])
def test_wrong_methods_are_405_never_500(api, method, path):
    response = getattr(api.client, method)(path, **api.headers(None, "k", {}))
    assert response.status_code == 405


@pytest.mark.parametrize(("method", "path"), [("get", CHARGES), ("put", "/api/v1/workspace"), ("delete", HOLDS)])
def test_wrong_methods_answer_a_json_error(api, method, path):
    response = getattr(api.client, method)(path, **api.headers(None, "k", {}))
    assert response.status_code == 405
    assert response["Content-Type"].startswith(JSON)
    assert {"code", "message"} <= set(response.json()["error"])


def test_every_documented_operation_documents_the_statuses_it_answers():
    """What the contract lists per operation must be in the OpenAPI document (schemathesis checks the rest)."""
    document = Client().get("/api/v1/openapi.json").json()
    expected = {
        ("get", "/api/v1/workspace"): {"200", "401"},
        ("get", "/api/v1/prices"): {"200", "401"},
        ("post", "/api/v1/charges"): {"201", "400", "401", "402", "403", "409", "413"},
        ("post", "/api/v1/holds"): {"201", "400", "401", "402", "403", "409", "413"},
        ("post", "/api/v1/holds/{hold_id}/capture"): {"200", "400", "401", "404", "409", "413"},
        ("post", "/api/v1/holds/{hold_id}/release"): {"200", "401", "404", "409", "413"},
    }
    for (method, path), statuses in expected.items():
        documented = set(document["paths"][path][method]["responses"])
        assert statuses <= documented, (method, path, statuses - documented)


def test_release_of_a_non_integer_id_answers_a_documented_status(api):
    document = Client().get("/api/v1/openapi.json").json()
    documented = set(document["paths"]["/api/v1/holds/{hold_id}/release"]["post"]["responses"])
    response = api.post(release_url("abc"), key=None)
    assert response.status_code < 500
    assert str(response.status_code) in documented, (response.status_code, documented)


# --- every successful answer leaves exactly one event, and a sound ledger -----------------------------------------


def test_a_mixed_session_leaves_one_event_per_generation_and_a_sound_ledger(api, metered):
    made = []
    for index in range(5):
        made.append(api.charge(units=index + 1, key=f"c{index}").json()["id"])
        api.charge(units=index + 1, key=f"c{index}")  # replay
    holds = [api.hold(units=3, key=f"h{index}").json()["id"] for index in range(4)]
    api.post(capture_url(holds[0]), {"units": 1})
    api.post(capture_url(holds[1]), {})
    api.post(release_url(holds[2]), key=None)
    error_of(api.charge(metered.viewer.email), 403, "member_not_allowed")
    error_of(api.charge(units=1_000_000), 402, "insufficient_credits")

    assert UsageEvent.objects.count() == 9
    assert HistoryItem.objects.count() == 7  # 5 charges + 2 captures
    spent = 12 * (1 + 2 + 3 + 4 + 5) + 20 + 60
    held = 60
    assert balance(metered) == START - spent - held
    assert set(UsageEvent.objects.values_list("status", flat=True)) == {"captured", "held", "released"}
    for event in UsageEvent.objects.all():
        assert (event.organization_id, event.workspace_id, event.user_id) == (
            metered.organization.pk,
            metered.workspace.pk,
            metered.member.pk,
        )
        assert LedgerTransaction.objects.filter(pk=event.ledger_transaction_id).exists()
    assert reconcile(organization=metered.organization) == []
