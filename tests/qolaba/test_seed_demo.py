"""`manage.py seed_demo`: a realistic, idempotent demo whose --json output is enough to log in and look around."""

from __future__ import annotations

import io
import json

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client

from billing.models import LedgerTransaction
from orgs.models import AuditEvent, Membership, Organization, OrganizationUserObjectPermission, User
from qolaba.demo.management.commands import seed_demo as seed_demo_command
from qolaba.demo.usage import UsageSeeded
from usage.models import UsageEvent
from workspaces.models import HistoryItem, Workspace, WorkspaceMembership, WorkspaceUserObjectPermission

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def seed_json() -> dict:
    return json.loads(seed("--json"))


def domain_row_counts() -> dict[str, int]:
    models = [
        User,
        EmailAddress,
        Organization,
        Membership,
        Workspace,
        WorkspaceMembership,
        OrganizationUserObjectPermission,
        WorkspaceUserObjectPermission,
        UsageEvent,
        HistoryItem,
        LedgerTransaction,
    ]
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the demo's history images


@pytest.fixture
def with_usage() -> None:
    """Seed the months of usage too (the other tests here skip it: test_seed_demo_usage.py covers it)."""


@pytest.fixture(autouse=True)
def _without_usage(request, monkeypatch):
    if "with_usage" not in request.fixturenames:
        monkeypatch.setattr(seed_demo_command, "usage_seed", lambda **kwargs: UsageSeeded())


@pytest.fixture
def demo() -> dict:
    return seed_json()


def without_api_keys(data: dict) -> dict:
    return {
        **data,
        "orgs": [
            {
                **{k: v for k, v in org.items() if k != "admin_key"},
                "workspaces": [{k: v for k, v in ws.items() if k != "api_key"} for ws in org["workspaces"]],
            }
            for org in data["orgs"]
        ],
    }


def test_json_output_is_exactly_one_json_object_with_users_and_orgs():
    out = seed("--json")
    data = json.loads(out)  # fails if anything else (e.g. emails) was printed to stdout
    assert isinstance(data, dict)
    assert set(data) == {"users", "orgs"}
    assert data["users"]
    assert data["orgs"]


def test_json_shape(demo):
    org_slugs = {org["slug"] for org in demo["orgs"]}
    all_ws_ids = set()
    for org in demo["orgs"]:
        assert {"slug", "name", "admin_key", "workspaces"} <= set(org)
        assert org["admin_key"].startswith("qlbadm_")
        assert isinstance(org["slug"], str)
        assert isinstance(org["name"], str)
        assert sum(ws["is_primary"] for ws in org["workspaces"]) == 1
        for ws in org["workspaces"]:
            assert set(ws) == {"id", "api_key", "slug", "name", "is_primary"}
            assert isinstance(ws["id"], int)
            assert isinstance(ws["api_key"], str)
            assert ws["api_key"].startswith("qlb_")
            assert isinstance(ws["is_primary"], bool)
            all_ws_ids.add(ws["id"])
    for user in demo["users"]:
        assert {"email", "password", "org", "role", "workspaces"} <= set(user)
        assert user["org"] in org_slugs
        assert user["role"] in {"owner", "admin", "member"}
        assert isinstance(user["password"], str)
        assert user["password"]
        assert set(user["workspaces"]) <= all_ws_ids
    assert {u["role"] for u in demo["users"]} == {"owner", "admin", "member"}


def test_json_matches_the_database(demo):
    for org in demo["orgs"]:
        db_org = Organization.objects.get(slug=org["slug"])
        assert db_org.name == org["name"]
        db_workspaces = Workspace.objects.live().filter(organization=db_org)
        assert {ws["id"] for ws in org["workspaces"]} == set(db_workspaces.values_list("pk", flat=True))
        for ws in org["workspaces"]:
            db_ws = db_workspaces.get(pk=ws["id"])
            assert (db_ws.slug, db_ws.name, db_ws.is_primary) == (ws["slug"], ws["name"], ws["is_primary"])
    for user in demo["users"]:
        membership = Membership.objects.get(user__email=user["email"], organization__slug=user["org"])
        assert membership.get_role_display().lower() == user["role"]


def test_every_org_has_exactly_one_owner_and_members_of_every_role(demo):
    for org in demo["orgs"]:
        roles = [u["role"] for u in demo["users"] if u["org"] == org["slug"]]
        assert roles.count("owner") == 1
        assert "member" in roles


def test_running_twice_creates_nothing_new(with_usage):
    first = seed_json()
    counts = domain_row_counts()

    second = seed_json()

    assert domain_row_counts() == counts
    assert without_api_keys(second) == without_api_keys(first)
    first_keys = {ws["api_key"] for org in first["orgs"] for ws in org["workspaces"]}
    second_keys = {ws["api_key"] for org in second["orgs"] for ws in org["workspaces"]}
    assert not first_keys & second_keys  # secrets are stored hashed: --json hands out new ones
    first_admin_keys = {org["admin_key"] for org in first["orgs"]}
    assert not first_admin_keys & {org["admin_key"] for org in second["orgs"]}


def test_running_twice_writes_no_new_audit_events(with_usage):
    seed()
    events = AuditEvent.objects.count()
    seed()
    assert AuditEvent.objects.count() == events


def test_json_rerun_audits_only_the_replaced_api_keys():
    first = seed_json()
    events = AuditEvent.objects.count()
    seed_json()
    new = AuditEvent.objects.order_by("pk")[events:]
    workspaces = sum(len(org["workspaces"]) for org in first["orgs"])
    organizations = len(first["orgs"])
    assert sorted(event.action for event in new) == (
        ["admin_key.created"] * organizations
        + ["admin_key.revoked"] * organizations
        + ["api_key.created"] * workspaces
        + ["api_key.revoked"] * workspaces
    )


def test_json_admin_keys_read_their_organizations_usage(demo):
    for org in demo["orgs"]:
        response = Client().get(
            "/api/v1/organization/usage",
            {"start": "2026-01-01", "end": "2026-01-31", "group_by": "workspace"},
            HTTP_AUTHORIZATION=f"Bearer {org['admin_key']}",
        )
        assert response.status_code == 200, response.content
        assert response.json()["organization"] == org["slug"]


def test_plain_run_prints_the_users_and_the_password(demo):
    out = seed()
    assert "Demo data is ready" in out
    for user in demo["users"]:
        assert user["email"] in out
    assert demo["users"][0]["password"] in out


def test_no_two_orgs_or_workspaces_share_a_name(demo):
    org_names = [org["name"] for org in demo["orgs"]]
    ws_names = [ws["name"].lower() for org in demo["orgs"] for ws in org["workspaces"]]
    assert len(org_names) == len(set(org_names))
    assert len(ws_names) == len(set(ws_names))


def test_some_member_can_access_only_some_of_their_orgs_workspaces(demo):
    ws_by_org = {org["slug"]: {ws["id"] for ws in org["workspaces"]} for org in demo["orgs"]}
    partial = [
        u for u in demo["users"] if u["role"] == "member" and 0 < len(u["workspaces"]) < len(ws_by_org[u["org"]])
    ]
    assert partial


def test_owners_and_admins_reach_every_workspace_of_their_org(demo):
    ws_by_org = {org["slug"]: sorted(ws["id"] for ws in org["workspaces"]) for org in demo["orgs"]}
    for user in demo["users"]:
        if user["role"] in {"owner", "admin"}:
            assert sorted(user["workspaces"]) == ws_by_org[user["org"]], user["email"]


def test_every_listed_user_logs_in_and_sees_exactly_their_workspaces(demo):
    workspaces = {ws["id"]: (org["slug"], ws["slug"]) for org in demo["orgs"] for ws in org["workspaces"]}
    ws_ids_by_org = {org["slug"]: {ws["id"] for ws in org["workspaces"]} for org in demo["orgs"]}
    checked_denials = 0
    for user in demo["users"]:
        client = Client()
        assert client.login(email=user["email"], password=user["password"]), user["email"]
        for ws_id in ws_ids_by_org[user["org"]]:
            org_slug, ws_slug = workspaces[ws_id]
            status = client.get(f"/o/{org_slug}/w/{ws_slug}/").status_code
            expected = 200 if ws_id in user["workspaces"] else 404
            assert status == expected, (user["email"], ws_slug)
            checked_denials += expected == 404
    assert checked_denials > 0  # the demo does show someone a 404


def test_the_seeded_audit_events_carry_an_address(demo):
    events = AuditEvent.objects.all()
    assert events.exists()
    assert not events.filter(ip_address__isnull=True).exists()
