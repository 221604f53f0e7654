"""Workspace API keys in the workspace settings: listed for workspace admins, created with the secret shown once,
revoked behind a confirmation, audited; invisible and unreachable for everyone else."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import AuditEvent, OrganizationRole
from tests.factories import api_key_authenticate, make_member, make_organization, make_workspace
from tests.workspaces.test_views import hx_gets_without_fallback
from workspaces.models import ApiKey, Workspace, WorkspaceRole
from workspaces.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

HTMX_API_KEYS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "api-keys"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def settings_url(ws: Workspace) -> str:
    return reverse("workspaces:settings", kwargs={"org_slug": ws.organization.slug, "ws_slug": ws.slug})


def create_url(ws: Workspace) -> str:
    return reverse("workspaces:api_key_create", kwargs={"org_slug": ws.organization.slug, "ws_slug": ws.slug})


def revoke_url(ws: Workspace, key: ApiKey) -> str:
    kwargs = {"org_slug": ws.organization.slug, "ws_slug": ws.slug, "key_id": key.pk}
    return reverse("workspaces:api_key_revoke", kwargs=kwargs)


@pytest.fixture
def world():
    org = make_organization(name="Northwind")
    studio = make_workspace(org, name="Studio")
    other = make_workspace(org, name="Other")
    owner = org.created_by
    people = {
        "owner": owner,
        "org_admin": make_member(org, role=OrganizationRole.ADMIN).user,
        "ws_admin": make_member(org, workspaces={studio: WorkspaceRole.ADMIN}).user,
        "ws_member": make_member(org, workspaces={studio: WorkspaceRole.MEMBER}).user,
        "ws_viewer": make_member(org, workspaces={studio: WorkspaceRole.VIEWER}).user,
        "other_admin": make_member(org, workspaces={other: WorkspaceRole.ADMIN}).user,
        "outsider": make_organization(name="Bluepeak").created_by,
    }
    key, _ = api_key_create(workspace=studio, actor=owner, name="Image service")
    other_key, _ = api_key_create(workspace=other, actor=owner, name="Other service")
    return {"org": org, "studio": studio, "other": other, "key": key, "other_key": other_key, **people}


# --- listing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner", "org_admin", "ws_admin"])
def test_workspace_admins_see_the_api_keys_section(world, persona):
    studio, key = world["studio"], world["key"]
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now())
    never_used, _ = api_key_create(workspace=studio, actor=world["ws_admin"], name="Chat bot")
    revoked, _ = api_key_create(workspace=studio, actor=world["owner"], name="Old importer")
    api_key_revoke(api_key=revoked, actor=world["owner"])

    response = logged_in(world[persona]).get(settings_url(studio))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="api-keys"' in html
    assert "Authorization: Bearer &lt;key&gt;" in html
    assert 'href="/api/v1/docs"' in html
    assert [k.pk for k in response.context["api_keys"]] == [never_used.pk, key.pk]
    assert [k.pk for k in response.context["revoked_api_keys"]] == [revoked.pk]
    assert key.display_prefix in html
    assert "Never" in html
    assert world["ws_admin"].email in html  # created by
    assert revoke_url(studio, key) in html
    assert revoke_url(studio, revoked) not in html  # a revoked key has no action
    revoked_part = html.split('<details class="revoked-keys">')[1]
    assert "Revoked keys (1)" in revoked_part
    assert "Old importer" in revoked_part
    assert "Other service" not in html  # another workspace's key


@pytest.mark.parametrize("persona", ["ws_member", "ws_viewer", "other_admin", "outsider"])
def test_others_get_404_on_settings_and_never_see_keys(world, persona):
    client = logged_in(world[persona])
    assert client.get(settings_url(world["studio"])).status_code == 404
    overview = client.get(f"/o/{world['org'].slug}/w/{world['studio'].slug}/")
    if persona in {"ws_member", "ws_viewer"}:
        assert overview.status_code == 200
        html = overview.content.decode()
        assert "API keys" not in html
        assert world["key"].display_prefix not in html
        assert "/settings/" not in html


# --- create --------------------------------------------------------------------------------------------------


def test_create_shows_the_secret_once(world):
    studio, admin = world["studio"], world["ws_admin"]
    client = logged_in(admin)
    response = client.post(create_url(studio), {"name": "  Video renderer "})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    created = ApiKey.objects.get(workspace=studio, name="Video renderer")
    secret = response.context["new_secret"]
    assert secret.startswith(f"qlb_{created.prefix}_")
    html = response.content.decode()
    assert f'<code class="secret-value" id="new-api-key">{secret}</code>' in html
    assert "you won't see it again" in html
    assert 'data-copy="#new-api-key"' in html
    assert created.created_by == admin
    # Stored hashed, never in clear; the secret authenticates.
    assert created.secret_hash != secret
    assert secret not in created.secret_hash
    assert created.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert api_key_authenticate(secret) == created
    # Not in the session, the messages or a URL: a later visit of the page does not show it.
    assert not response.has_header("Location")
    assert secret not in str(dict(client.session))
    later = client.get(settings_url(studio))
    assert secret not in later.content.decode()
    assert created.display_prefix in later.content.decode()
    assert 'class="secret-value"' not in later.content.decode()
    event = AuditEvent.objects.get(action="api_key.created", target_id=str(created.pk))
    assert event.actor == admin
    assert event.organization == world["org"]
    assert secret not in str(event.after)


def test_create_with_htmx_renders_the_section_only(world):
    response = logged_in(world["owner"]).post(create_url(world["studio"]), {"name": "Music"}, **HTMX_API_KEYS)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<section class="panel api-keys" id="api-keys"')
    assert "<html" not in html
    assert response.context["new_secret"] in html
    assert "no-store" in response["Cache-Control"]


def test_the_create_form_works_without_javascript(world):
    html = logged_in(world["owner"]).get(settings_url(world["studio"])).content.decode()
    form = html.split('<form method="post" action="' + create_url(world["studio"]) + '"')[1].split("</form>")[0]
    assert 'hx-post="' + create_url(world["studio"]) + '"' in form
    assert 'hx-target="#api-keys"' in form
    assert "csrfmiddlewaretoken" in form
    assert 'name="name"' in form


@pytest.mark.parametrize("name", ["", "   "])
def test_create_without_a_name_is_a_form_error(world, name):
    before = ApiKey.objects.count()
    client = logged_in(world["owner"])
    response = client.post(create_url(world["studio"]), {"name": name})
    assert response.status_code == 400
    assert response.context["api_key_form"].errors["name"]
    assert not response.context["new_secret"]
    assert "<html" in response.content.decode()
    # For htmx the section comes back with the error as a 200 (htmx does not swap error statuses).
    response = client.post(create_url(world["studio"]), {"name": name}, **HTMX_API_KEYS)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<section class="panel api-keys"')
    assert 'class="error" role="alert"' in html
    assert 'class="secret-box"' not in html
    assert ApiKey.objects.count() == before


@pytest.mark.parametrize("persona", ["ws_member", "ws_viewer", "other_admin", "outsider"])
def test_non_admins_get_404_on_create(world, persona):
    before = (ApiKey.objects.count(), AuditEvent.objects.count())
    response = logged_in(world[persona]).post(create_url(world["studio"]), {"name": "Sneaky"})
    assert response.status_code == 404
    assert (ApiKey.objects.count(), AuditEvent.objects.count()) == before


def test_create_is_post_only(world):
    assert logged_in(world["owner"]).get(create_url(world["studio"])).status_code == 405


# --- revoke --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner", "org_admin", "ws_admin"])
def test_revoke_asks_then_revokes_and_is_audited(world, persona):
    studio, key = world["studio"], world["key"]
    client = logged_in(world[persona])
    confirm = client.get(revoke_url(studio, key))
    assert confirm.status_code == 200
    assert "Revoke the API key “Image service”?" in confirm.content.decode()
    dialog = client.get(revoke_url(studio, key), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dialog-body")
    assert "<html" not in dialog.content.decode()
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None

    response = client.post(revoke_url(studio, key), follow=True)
    assert response.redirect_chain == [(f"{settings_url(studio)}#api-keys", 302)]
    assert "was revoked" in response.content.decode()
    revoked = ApiKey.objects.get(pk=key.pk)
    assert revoked.revoked_at is not None
    assert revoked.revoked_by == world[persona]
    assert [k.pk for k in response.context["revoked_api_keys"]] == [key.pk]
    event = AuditEvent.objects.get(action="api_key.revoked", target_id=str(key.pk))
    assert event.actor == world[persona]
    # Revoking again changes nothing and records nothing.
    assert client.post(revoke_url(studio, key)).status_code == 302
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_a_revoked_key_no_longer_authenticates(world):
    studio = world["studio"]
    client = logged_in(world["ws_admin"])
    secret = client.post(create_url(studio), {"name": "Short-lived"}).context["new_secret"]
    key = ApiKey.objects.get(name="Short-lived")
    assert api_key_authenticate(secret) == key
    client.post(revoke_url(studio, key))
    assert api_key_authenticate(secret) is None


@pytest.mark.parametrize("persona", ["ws_member", "ws_viewer", "other_admin", "outsider"])
def test_non_admins_get_404_on_revoke(world, persona):
    client = logged_in(world[persona])
    key = world["key"]
    assert client.get(revoke_url(world["studio"], key)).status_code == 404
    assert client.post(revoke_url(world["studio"], key)).status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert not AuditEvent.objects.filter(action="api_key.revoked").exists()


def test_a_key_of_another_workspace_is_404(world):
    """The Owner administers both workspaces, but a key belongs to one: Other's key under Studio's URL is not found."""
    client = logged_in(world["owner"])
    other_key = world["other_key"]
    assert client.get(revoke_url(world["studio"], other_key)).status_code == 404
    assert client.post(revoke_url(world["studio"], other_key)).status_code == 404
    assert ApiKey.objects.get(pk=other_key.pk).revoked_at is None
    # A workspace admin of Other cannot reach Studio's key through Other's URL either.
    other_admin = logged_in(world["other_admin"])
    assert other_admin.post(revoke_url(world["other"], world["key"])).status_code == 404
    assert ApiKey.objects.get(pk=world["key"].pk).revoked_at is None


def test_a_key_of_another_organization_is_404(world):
    foreign = make_organization(name="Foreign")
    foreign_ws = Workspace.objects.get(organization=foreign, is_primary=True)
    foreign_key, _ = api_key_create(workspace=foreign_ws, actor=foreign.created_by, name="Theirs")
    assert logged_in(world["owner"]).post(revoke_url(world["studio"], foreign_key)).status_code == 404
    assert ApiKey.objects.get(pk=foreign_key.pk).revoked_at is None


def test_anonymous_visitors_are_sent_to_login(client, world):
    for url in (create_url(world["studio"]), revoke_url(world["studio"], world["key"])):
        response = client.post(url, {"name": "x"})
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")
    assert ApiKey.objects.get(pk=world["key"].pk).revoked_at is None


# --- query count ---------------------------------------------------------------------------------------------


def test_settings_page_costs_the_same_with_many_keys(world, django_assert_max_num_queries):
    client = logged_in(world["owner"])
    counts = []
    for extra in (0, 20):
        for i in range(extra):
            key, _ = api_key_create(workspace=world["studio"], actor=world["ws_admin"], name=f"Key {i}")
            if i % 3 == 0:
                api_key_revoke(api_key=key, actor=world["owner"])
        client.get(settings_url(world["studio"]))
        with django_assert_max_num_queries(12) as captured:
            assert client.get(settings_url(world["studio"])).status_code == 200
        counts.append(len(captured))
    print(f"settings queries (1 key, 21 keys): {counts}")  # noqa: T201
    assert counts[0] == counts[1]


def test_every_hx_get_on_the_settings_page_has_a_plain_link(world):
    html = logged_in(world["owner"]).get(settings_url(world["studio"])).content.decode()
    missing, found = hx_gets_without_fallback(html)
    assert found >= 3  # switcher, bell, revoke
    assert missing == []
