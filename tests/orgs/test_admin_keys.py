"""Organization admin keys on the Profile tab: Owners and Admins create them (the secret shown once, stored hashed)
and revoke them behind a confirmation, both audited; Members (whatever their workspace role) and outsiders get 404
and change nothing. The keys themselves are tested against the API in tests/usage/test_usage_api.py."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import AdminKey, AuditAction, AuditEvent, Organization, OrganizationRole
from orgs.selectors import admin_key_find
from orgs.services import admin_key_create, admin_key_revoke
from qolaba.keys import key_parse
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import WorkspaceRole, api_key_parse

pytestmark = pytest.mark.django_db

HTMX_ADMIN_KEYS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "admin-keys"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def profile_url(org: Organization) -> str:
    return reverse("orgs:profile", kwargs={"org_slug": org.slug})


def create_url(org: Organization) -> str:
    return reverse("orgs:admin_key_create", kwargs={"org_slug": org.slug})


def revoke_url(org: Organization, key: AdminKey) -> str:
    return reverse("orgs:admin_key_revoke", kwargs={"org_slug": org.slug, "admin_key_id": key.pk})


def authenticate(secret: str) -> AdminKey | None:
    parsed = key_parse(secret, scheme="qlbadm")
    return admin_key_find(prefix=parsed[0], secret_hash=parsed[1]) if parsed is not None else None


@pytest.fixture
def world():
    org = make_organization(name="Northwind")
    studio = make_workspace(org, name="Studio")
    owner = org.created_by
    people = {
        "owner": owner,
        "org_admin": make_member(org, role=OrganizationRole.ADMIN).user,
        "ws_admin": make_member(org, workspaces={studio: WorkspaceRole.ADMIN}).user,
        "ws_member": make_member(org, workspaces={studio: WorkspaceRole.MEMBER}).user,
        "ws_viewer": make_member(org, workspaces={studio: WorkspaceRole.VIEWER}).user,
        "outsider": make_organization(name="Bluepeak").created_by,
    }
    key, _ = admin_key_create(organization=org, actor=owner, name="Finance dashboard")
    return {"org": org, "key": key, **people}


def fingerprint() -> tuple:
    return (
        list(AdminKey.objects.order_by("pk").values_list("pk", "name", "revoked_at")),
        AuditEvent.objects.count(),
    )


# --- services ------------------------------------------------------------------------------------------------


def test_create_stores_only_the_hash_and_audits(world):
    org, admin = world["org"], world["org_admin"]
    key, secret = admin_key_create(organization=org, actor=admin, name="  Looker  ")
    assert key.name == "Looker"
    assert secret.startswith(f"qlbadm_{key.prefix}_")
    assert len(secret.split("_", 2)[2]) >= 40  # 240 bits, URL-safe base64
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in key.secret_hash
    assert authenticate(secret) == key
    assert api_key_parse(secret) is None  # never taken for a workspace key
    event = AuditEvent.objects.get(action=AuditAction.ADMIN_KEY_CREATED, target_id=str(key.pk))
    assert (event.actor, event.organization, event.target_type) == (admin, org, "orgs.adminkey")
    assert event.after == {"name": "Looker", "prefix": key.display_prefix}
    assert secret not in str(event.after)


def test_a_wrong_secret_with_the_right_prefix_is_refused(world):
    _, secret = admin_key_create(organization=world["org"], actor=world["owner"], name="Sheets")
    assert authenticate(secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")) is None


@pytest.mark.parametrize("persona", ["ws_admin", "ws_member", "outsider"])
def test_only_owners_and_admins_may_create_or_revoke(world, persona):
    before = fingerprint()
    with pytest.raises(ValidationError):
        admin_key_create(organization=world["org"], actor=world[persona], name="Sneaky")
    with pytest.raises(ValidationError):
        admin_key_revoke(admin_key=world["key"], actor=world[persona])
    assert fingerprint() == before


def test_create_refuses_an_empty_name(world):
    with pytest.raises(ValidationError):
        admin_key_create(organization=world["org"], actor=world["owner"], name="   ")


def test_revoke_is_audited_once_and_stops_the_key(world):
    _, secret = admin_key_create(organization=world["org"], actor=world["owner"], name="Sheets")
    key = authenticate(secret)
    assert key is not None
    revoked = admin_key_revoke(admin_key=key, actor=world["org_admin"])
    assert revoked.revoked_at is not None
    assert revoked.revoked_by == world["org_admin"]
    assert authenticate(secret) is None
    admin_key_revoke(admin_key=key, actor=world["org_admin"])  # twice: nothing more
    events = AuditEvent.objects.filter(action=AuditAction.ADMIN_KEY_REVOKED, target_id=str(key.pk))
    assert events.count() == 1
    assert events.get().before == {"name": "Sheets", "prefix": key.display_prefix}


def test_staff_may_revoke_from_the_admin(world):
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin_key_revoke(admin_key=world["key"], actor=staff, by_staff=True)
    assert AdminKey.objects.get(pk=world["key"].pk).is_revoked
    assert AdminKey in site._registry


# --- the Profile tab -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner", "org_admin"])
def test_owners_and_admins_see_the_admin_keys_section(world, persona):
    org = world["org"]
    revoked, _ = admin_key_create(organization=org, actor=world["owner"], name="Old export")
    admin_key_revoke(admin_key=revoked, actor=world["owner"])
    response = logged_in(world[persona]).get(profile_url(org))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="admin-keys"' in html
    assert "GET /api/v1/organization/usage" in html
    assert [k.pk for k in response.context["admin_keys"]] == [world["key"].pk]
    assert [k.pk for k in response.context["revoked_admin_keys"]] == [revoked.pk]
    assert f"qlbadm_<wbr>{world['key'].prefix}_…" in html
    assert revoke_url(org, world["key"]) in html
    assert revoke_url(org, revoked) not in html
    assert "Revoked keys (1)" in html


@pytest.mark.parametrize("persona", ["ws_admin", "ws_member", "ws_viewer", "outsider"])
def test_members_viewers_and_outsiders_get_404_and_change_nothing(world, persona):
    client = logged_in(world[persona])
    org, key = world["org"], world["key"]
    before = fingerprint()
    assert client.get(profile_url(org)).status_code == 404
    assert client.post(create_url(org), {"name": "Sneaky"}).status_code == 404
    assert client.get(revoke_url(org, key)).status_code == 404
    assert client.post(revoke_url(org, key)).status_code == 404
    assert fingerprint() == before


def test_create_shows_the_secret_once_and_is_not_cached(world):
    org, admin = world["org"], world["org_admin"]
    client = logged_in(admin)
    response = client.post(create_url(org), {"name": "Metabase"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    created = AdminKey.objects.get(organization=org, name="Metabase")
    secret = response.context["new_secret"]
    assert authenticate(secret) == created
    html = response.content.decode()
    assert f'<code class="secret-value" id="new-admin-key">{secret}</code>' in html
    assert "<html" in html  # without JavaScript: the whole Profile tab
    assert secret not in str(dict(client.session))
    later = client.get(profile_url(org)).content.decode()
    assert secret not in later
    assert f"qlbadm_<wbr>{created.prefix}_…" in later
    assert AuditEvent.objects.filter(action=AuditAction.ADMIN_KEY_CREATED, target_id=str(created.pk)).exists()


def test_create_with_htmx_answers_the_section_and_a_refusal_in_it(world):
    client = logged_in(world["owner"])
    response = client.post(create_url(world["org"]), {"name": "Sheets"}, **HTMX_ADMIN_KEYS)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<section class="panel api-keys" id="admin-keys"')
    assert response.context["new_secret"] in html
    before = fingerprint()
    refused = client.post(create_url(world["org"]), {"name": " "}, **HTMX_ADMIN_KEYS)
    assert refused.status_code == 200
    assert 'class="error" role="alert"' in refused.content.decode()
    assert 'class="secret-box"' not in refused.content.decode()
    no_js = client.post(create_url(world["org"]), {"name": ""})
    assert no_js.status_code == 400
    assert no_js.context["admin_key_form"].errors["name"]
    assert fingerprint() == before


def test_revoke_asks_then_revokes(world):
    org, key = world["org"], world["key"]
    client = logged_in(world["org_admin"])
    confirm = client.get(revoke_url(org, key))
    assert confirm.status_code == 200
    assert "Revoke the admin key “Finance dashboard”?" in confirm.content.decode()
    assert not AdminKey.objects.get(pk=key.pk).is_revoked
    response = client.post(revoke_url(org, key))
    assert response.status_code == 302
    assert response["Location"] == profile_url(org) + "#admin-keys"
    assert AdminKey.objects.get(pk=key.pk).revoked_by == world["org_admin"]


def test_another_organizations_key_is_404_under_your_url(world):
    outsider = world["outsider"]
    foreign_org = Organization.objects.get(memberships__user=outsider)
    foreign_key, _ = admin_key_create(organization=foreign_org, actor=outsider, name="Theirs")
    url = reverse("orgs:admin_key_revoke", kwargs={"org_slug": world["org"].slug, "admin_key_id": foreign_key.pk})
    assert logged_in(world["owner"]).post(url).status_code == 404
    assert not AdminKey.objects.get(pk=foreign_key.pk).is_revoked


def test_the_profile_tab_reads_the_keys_in_one_query_whatever_their_number(world, django_assert_num_queries):
    client = logged_in(world["owner"])
    url = profile_url(world["org"])
    client.get(url)
    with CaptureQueriesContext(connection) as one_key:
        assert client.get(url).status_code == 200
    for index in range(6):
        key, _ = admin_key_create(organization=world["org"], actor=world["org_admin"], name=f"Key {index}")
        if index % 2:
            admin_key_revoke(admin_key=key, actor=world["owner"])
    assert len(one_key) <= 12
    with django_assert_num_queries(len(one_key)):
        response = client.get(url)
    assert len(response.context["admin_keys"]) + len(response.context["revoked_admin_keys"]) == 7
