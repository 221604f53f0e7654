"""Organization profile (name, timezone, a validated and re-encoded logo) and deletion: Owner-only, confirmed by
the name, hidden from everyone at once, restorable by staff, purged after the retention window.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now
from PIL import Image

from orgs.models import (
    AuditEvent,
    Membership,
    Organization,
    OrganizationRole,
    OrganizationUserObjectPermission,
    User,
)
from orgs.services import organization_update, organizations_purge_deleted
from orgs.tasks import organizations_purge_deleted_run
from qolaba.lifecycle import organization_delete, organization_restore
from tests.factories import make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceRole, WorkspaceUserObjectPermission

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def image_bytes(fmt: str, size: tuple[int, int] = (600, 300), *, noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 40, 90))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def upload(data: bytes, name: str, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def team():
    org = make_organization(name="Northwind", timezone="Europe/Lisbon")
    campaign = make_workspace(org, name="Campaign")
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org, workspaces={campaign: WorkspaceRole.MEMBER})
    return {"org": org, "owner": org.created_by, "admin": admin, "member": member, "campaign": campaign}


def profile_url(org) -> str:
    return reverse("orgs:profile", kwargs={"org_slug": org.slug})


def stored_logo(org) -> Image.Image:
    org.refresh_from_db()
    assert org.logo
    with org.logo.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


# --- logo -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_service_stores_a_re_encoded_png_of_at_most_256px(team, fmt, content_type):
    org = team["org"]
    organization_update(
        organization=org,
        actor=team["owner"],
        name=org.name,
        timezone=org.timezone,
        logo=upload(image_bytes(fmt, (600, 300)), f"logo.{fmt.lower()}", content_type),
    )
    image = stored_logo(org)
    assert image.format == "PNG"
    assert image.size == (256, 128)  # bounded to 256px, aspect ratio kept
    assert org.logo.name.endswith(".png")
    assert org.logo.name.startswith("org-logos/")
    event = AuditEvent.objects.get(organization=org, action="organization.updated")
    assert event.before["logo"] == ""
    assert event.after["logo"] == org.logo.name


def test_small_logo_is_not_enlarged(team):
    org = team["org"]
    organization_update(
        organization=org,
        actor=team["owner"],
        name=org.name,
        timezone=org.timezone,
        logo=upload(image_bytes("PNG", (40, 64)), "logo.png", "image/png"),
    )
    assert stored_logo(org).size == (40, 64)


def test_data_smuggled_after_the_image_is_dropped(team):
    org = team["org"]
    payload = b"<?php system($_GET['c']); ?>"
    organization_update(
        organization=org,
        actor=team["owner"],
        name=org.name,
        timezone=org.timezone,
        logo=upload(image_bytes("PNG", (64, 64)) + payload, "logo.png", "image/png"),
    )
    org.refresh_from_db()
    with org.logo.open("rb") as handle:
        assert payload not in handle.read()


def test_view_uploads_a_logo_and_saves_name_and_timezone(team, client):
    org = team["org"]
    client.force_login(team["admin"].user)
    response = client.post(
        profile_url(org),
        {
            "name": "Northwind Studio",
            "timezone": "Asia/Tokyo",
            "logo": upload(image_bytes("JPEG"), "me.jpg", "image/jpeg"),
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == profile_url(org)
    assert "Organization profile saved." in response.content.decode()
    org.refresh_from_db()
    assert (org.name, org.timezone) == ("Northwind Studio", "Asia/Tokyo")
    assert stored_logo(org).format == "PNG"
    event = AuditEvent.objects.get(organization=org, action="organization.updated")
    assert event.actor == team["admin"].user
    assert event.before == {
        "name": "Northwind",
        "timezone": "Europe/Lisbon",
        "logo": "",
        "alert_thresholds": [80, 100],
        "runway_alert_days": 7,
    }
    assert event.after == {
        "name": "Northwind Studio",
        "timezone": "Asia/Tokyo",
        "logo": org.logo.name,
        "alert_thresholds": [80, 100],
        "runway_alert_days": 7,
    }


def test_view_removes_the_logo(team, client):
    org = team["org"]
    organization_update(
        organization=org,
        actor=team["owner"],
        name=org.name,
        timezone=org.timezone,
        logo=upload(image_bytes("PNG"), "logo.png", "image/png"),
    )
    client.force_login(team["owner"])
    client.post(profile_url(org), {"name": org.name, "timezone": org.timezone, "remove_logo": "on"})
    org.refresh_from_db()
    assert not org.logo


BAD_LOGOS = {
    "text renamed .png": (b"this is not an image at all\n" * 10, "logo.png", "image/png"),
    "gif": (image_bytes("GIF", (32, 32)), "logo.gif", "image/gif"),
    "gif renamed .png": (image_bytes("GIF", (32, 32)), "logo.png", "image/png"),
    "bmp": (image_bytes("BMP", (32, 32)), "logo.bmp", "image/bmp"),
}


@pytest.mark.parametrize("case", list(BAD_LOGOS))
def test_view_refuses_a_bad_logo_with_a_form_error_and_changes_nothing(team, client, case):
    org = team["org"]
    data, name, content_type = BAD_LOGOS[case]
    client.force_login(team["owner"])
    events = AuditEvent.objects.filter(organization=org).count()

    response = client.post(
        profile_url(org), {"name": "Renamed", "timezone": "UTC", "logo": upload(data, name, content_type)}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["logo"]
    org.refresh_from_db()
    assert (org.name, org.timezone, bool(org.logo)) == ("Northwind", "Europe/Lisbon", False)
    assert AuditEvent.objects.filter(organization=org).count() == events
    assert not (settings.MEDIA_ROOT / "org-logos").exists()


def test_view_refuses_an_oversized_logo(team, client, settings):
    settings.ORGANIZATION_LOGO_MAX_BYTES = 2048
    org = team["org"]
    data = image_bytes("PNG", (64, 64), noise=True)
    assert len(data) > 2048
    client.force_login(team["owner"])

    response = client.post(
        profile_url(org), {"name": "Renamed", "timezone": "UTC", "logo": upload(data, "big.png", "image/png")}
    )

    assert response.status_code == 400
    assert "The logo is too large: at most 2 KB." in response.context["form"].errors["logo"]
    org.refresh_from_db()
    assert (org.name, bool(org.logo)) == ("Northwind", False)


def test_service_refuses_a_gif_and_an_oversized_file(team, settings):
    org = team["org"]
    with pytest.raises(ValidationError, match="PNG, JPEG or WebP"):
        organization_update(
            organization=org,
            actor=team["owner"],
            name="Renamed",
            timezone="UTC",
            logo=upload(image_bytes("GIF"), "logo.gif", "image/gif"),
        )
    settings.ORGANIZATION_LOGO_MAX_BYTES = 100
    with pytest.raises(ValidationError, match="too large"):
        organization_update(
            organization=org,
            actor=team["owner"],
            name="Renamed",
            timezone="UTC",
            logo=upload(image_bytes("PNG"), "logo.png", "image/png"),
        )
    org.refresh_from_db()
    assert org.name == "Northwind"


@pytest.mark.parametrize(
    ("data", "field"),
    [({"name": "  ", "timezone": "UTC"}, "name"), ({"name": "X", "timezone": "Mars/Base"}, "timezone")],
)
def test_view_refuses_bad_name_or_timezone(team, client, data, field):
    client.force_login(team["owner"])
    response = client.post(profile_url(team["org"]), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    team["org"].refresh_from_db()
    assert team["org"].name == "Northwind"


def test_saving_an_unchanged_profile_writes_no_audit_event(team):
    org = team["org"]
    events = AuditEvent.objects.filter(organization=org).count()
    organization_update(organization=org, actor=team["owner"], name=org.name, timezone=org.timezone)
    assert AuditEvent.objects.filter(organization=org).count() == events


def test_replacing_the_logo_is_audited(team):
    org = team["org"]
    kwargs = {"organization": org, "actor": team["owner"], "name": org.name, "timezone": org.timezone}
    organization_update(**kwargs, logo=upload(image_bytes("PNG"), "a.png", "image/png"))
    first = org.logo.name
    organization_update(**kwargs, logo=upload(image_bytes("JPEG", (100, 100)), "b.jpg", "image/jpeg"))
    org.refresh_from_db()
    assert org.logo.name != first
    assert AuditEvent.objects.filter(organization=org, action="organization.updated").count() == 2


# --- deletion -------------------------------------------------------------------------------------------------


def urls_of(org, campaign) -> list[str]:
    return [
        reverse("orgs:open", kwargs={"org_slug": org.slug}),
        reverse("workspaces:list", kwargs={"org_slug": org.slug}),
        reverse("workspaces:overview", kwargs={"org_slug": org.slug, "ws_slug": campaign.slug}),
    ]


def test_delete_requires_the_exact_name(team, client):
    org = team["org"]
    client.force_login(team["owner"])
    url = reverse("orgs:organization_delete", kwargs={"org_slug": org.slug})
    for typed in ["northwind", "Northwind Inc", "", "NORTHWIND"]:
        response = client.post(url, {"confirm_name": typed})
        assert response.status_code == 400, typed
    org.refresh_from_db()
    assert org.deleted_at is None
    assert not AuditEvent.objects.filter(organization=org, action="organization.deleted").exists()


def test_service_refuses_a_wrong_name_and_a_non_owner(team):
    org = team["org"]
    with pytest.raises(ValidationError) as caught:
        organization_delete(organization=org, actor=team["owner"], confirm_name="northwind")
    assert "confirm_name" in caught.value.message_dict
    for actor in [team["admin"].user, team["member"].user, make_organization().created_by]:
        with pytest.raises(ValidationError, match="Only the Owner"):
            organization_delete(organization=org, actor=actor, confirm_name="Northwind")
    org.refresh_from_db()
    assert org.deleted_at is None
    assert not AuditEvent.objects.filter(organization=org, action="organization.deleted").exists()


def test_delete_hides_the_org_from_every_member_at_once(team):
    org, campaign = team["org"], team["campaign"]
    people = [team["owner"], team["admin"].user, team["member"].user]
    clients = []
    for person in people:
        c = Client()
        c.force_login(person)
        assert c.get(urls_of(org, campaign)[2]).status_code == 200
        clients.append(c)

    owner_client = clients[0]
    response = owner_client.post(
        reverse("orgs:organization_delete", kwargs={"org_slug": org.slug}), {"confirm_name": "Northwind"}, follow=True
    )
    assert "Northwind was deleted." in response.content.decode()
    # The Owner has no other organization: home offers to create one.
    assert response.redirect_chain[-1][0] == reverse("orgs:organization_create")

    org.refresh_from_db()
    assert org.deleted_at is not None
    for c in clients:
        for url in urls_of(org, campaign):
            assert c.get(url).status_code == 404, url
        assert "Northwind" not in c.get(reverse("orgs:list")).content.decode()
    assert not OrganizationUserObjectPermission.objects.filter(content_object=org).exists()
    assert not WorkspaceUserObjectPermission.objects.filter(content_object__organization=org).exists()
    # Nothing is destroyed yet: memberships and workspaces stay for a restore.
    assert Membership.objects.filter(organization=org).count() == 3
    assert Workspace.objects.filter(organization=org).count() == 2
    event = AuditEvent.objects.get(organization=org, action="organization.deleted")
    assert event.actor == team["owner"]


def test_deleted_org_leaves_the_users_other_orgs_alone(team, client):
    other = make_organization(name="Acme", owner=team["member"].user)
    organization_delete(organization=team["org"], actor=team["owner"], confirm_name="Northwind")
    client.force_login(team["member"].user)
    assert client.get("/").url == reverse("orgs:open", kwargs={"org_slug": other.slug})
    page = client.get(reverse("orgs:list")).content.decode()
    assert "Acme" in page
    assert "Northwind" not in page


def test_deleting_twice_is_refused(team):
    org = team["org"]
    organization_delete(organization=org, actor=team["owner"], confirm_name="Northwind")
    with pytest.raises(ValidationError, match="already deleted"):
        organization_delete(organization=org, actor=team["owner"], confirm_name="Northwind")
    assert AuditEvent.objects.filter(organization=org, action="organization.deleted").count() == 1


def test_restore_brings_everyones_access_back_as_it_was(team, client):
    org, campaign = team["org"], team["campaign"]
    rows_before = sorted(
        OrganizationUserObjectPermission.objects.filter(content_object=org).values_list("user_id", "permission_id")
    )
    ws_rows_before = sorted(
        WorkspaceUserObjectPermission.objects.filter(content_object__organization=org).values_list(
            "user_id", "content_object_id", "permission_id"
        )
    )
    organization_delete(organization=org, actor=team["owner"], confirm_name="Northwind")
    client.force_login(team["member"].user)
    assert client.get(urls_of(org, campaign)[2]).status_code == 404

    staff = User.objects.create_superuser("staff@qolaba.test", "pw-staff-1")
    organization_restore(organization=org, actor=staff)

    org.refresh_from_db()
    assert org.deleted_at is None
    assert client.get(urls_of(org, campaign)[2]).status_code == 200
    # Exactly as before: still no access to the workspace the member was never given.
    primary = Workspace.objects.get(organization=org, is_primary=True)
    primary_url = reverse("workspaces:overview", kwargs={"org_slug": org.slug, "ws_slug": primary.slug})
    assert client.get(primary_url).status_code == 404
    assert rows_before == sorted(
        OrganizationUserObjectPermission.objects.filter(content_object=org).values_list("user_id", "permission_id")
    )
    assert ws_rows_before == sorted(
        WorkspaceUserObjectPermission.objects.filter(content_object__organization=org).values_list(
            "user_id", "content_object_id", "permission_id"
        )
    )
    event = AuditEvent.objects.get(organization=org, action="organization.restored")
    assert event.actor == staff


def test_restoring_a_live_org_is_refused(team):
    with pytest.raises(ValidationError, match="not deleted"):
        organization_restore(organization=team["org"], actor=None)
    assert not AuditEvent.objects.filter(organization=team["org"], action="organization.restored").exists()


def test_admin_action_restores_the_selected_deleted_orgs(team, client):
    org = team["org"]
    alive = make_organization(name="Acme")
    organization_delete(organization=org, actor=team["owner"], confirm_name="Northwind")
    staff = User.objects.create_superuser("staff@qolaba.test", "pw-staff-1")
    client.force_login(staff)

    response = client.post(
        "/admin/orgs/organization/",
        {"action": "restore_organizations", "_selected_action": [org.pk, alive.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Restored 1 organization(s)" in response.content.decode()
    org.refresh_from_db()
    assert org.deleted_at is None
    assert AuditEvent.objects.get(organization=org, action="organization.restored").actor == staff
    assert not AuditEvent.objects.filter(organization=alive, action="organization.restored").exists()
    member_client = Client()
    member_client.force_login(team["member"].user)
    assert member_client.get(urls_of(org, team["campaign"])[2]).status_code == 200


# --- purge ----------------------------------------------------------------------------------------------------


def long_ago() -> datetime:
    """A start time well before anything else in the database, so the purge window only meets our orgs."""
    return (now() - timedelta(days=400)).replace(microsecond=0)


def test_purge_deletes_only_orgs_past_the_retention_window(team):
    t0 = long_ago()
    old = team["org"]
    old_owner = team["owner"]
    recent = make_organization(name="Recent")
    alive = make_organization(name="Alive")
    ours = [old.pk, recent.pk, alive.pk]
    retention = timedelta(days=settings.ORGANIZATION_RETENTION_DAYS)
    organization_update(
        organization=old,
        actor=old_owner,
        name=old.name,
        timezone=old.timezone,
        logo=upload(image_bytes("PNG", (32, 32)), "l.png", "image/png"),
    )
    old.refresh_from_db()
    logo_name = old.logo.name
    assert old.logo.storage.exists(logo_name)

    with time_machine.travel(t0, tick=False):
        organization_delete(organization=old, actor=old_owner, confirm_name="Northwind")
    with time_machine.travel(t0 + timedelta(days=10), tick=False):
        organization_delete(organization=recent, actor=recent.created_by, confirm_name="Recent")

    with time_machine.travel(t0 + retention - timedelta(minutes=1), tick=False):
        assert organizations_purge_deleted() == 0
    assert Organization.objects.filter(pk=old.pk).exists()

    with time_machine.travel(t0 + retention + timedelta(minutes=1), tick=False):
        assert organizations_purge_deleted() == 1

    assert not Organization.objects.filter(pk=old.pk).exists()
    assert not Membership.objects.filter(organization_id=old.pk).exists()
    assert not Workspace.objects.filter(organization_id=old.pk).exists()
    assert not old.logo.storage.exists(logo_name)
    assert set(Organization.objects.filter(pk__in=ours).values_list("name", flat=True)) == {"Recent", "Alive"}
    # The people stay: only the organization goes.
    assert User.objects.filter(pk=old_owner.pk).exists()
    assert alive.deleted_at is None

    # Passing `now` explicitly works the same way; running again purges nothing twice.
    assert organizations_purge_deleted(now=t0 + timedelta(days=10) + retention + timedelta(minutes=1)) == 1
    assert organizations_purge_deleted(now=t0 + timedelta(days=200)) == 0
    assert list(Organization.objects.filter(pk__in=ours).values_list("name", flat=True)) == ["Alive"]


def test_purge_task_returns_the_count(team):
    org = team["org"]
    t0 = long_ago()
    with time_machine.travel(t0, tick=False):
        organization_delete(organization=org, actor=team["owner"], confirm_name="Northwind")
    with time_machine.travel(t0 + timedelta(days=settings.ORGANIZATION_RETENTION_DAYS + 1), tick=False):
        assert organizations_purge_deleted_run.delay().get() == 1
    assert not Organization.objects.filter(pk=org.pk).exists()


def test_profile_sets_alert_thresholds_and_refuses_bad_ones(team, client):
    org = team["org"]
    client.force_login(team["owner"])
    data = {"name": org.name, "timezone": org.timezone, "alert_thresholds": "50, 90"}
    client.post(profile_url(org), data)
    org.refresh_from_db()
    assert org.alert_thresholds == [50, 90]
    for bad in ("abc", "0, 80", "80, 150"):
        response = client.post(profile_url(org), {**data, "alert_thresholds": bad})
        assert response.status_code == 400
        org.refresh_from_db()
        assert org.alert_thresholds == [50, 90]
