"""Staff in the admin: edit the price list (never delete a price), read usage events and history (never edit
them), and revoke API keys through the service (audited)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from orgs.models import AuditEvent, User
from usage.models import Price, UsageEvent
from workspaces.models import ApiKey, HistoryItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = User.objects.create_superuser("staff@qolaba.test", "staff-password-1")
    client = Client()
    client.force_login(user)
    return SimpleNamespace(user=user, client=client)


@pytest.fixture
def charged(client, metered):
    body = {"member": metered.member.email, "tool": "chat", "model": "gpt-4o", "units": 3, "history": {"prompt": "hi"}}
    response = client.post(
        "/api/v1/charges",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="admin-1",
        **metered.auth(),
    )
    assert response.status_code == 201
    return metered


@pytest.mark.parametrize(
    ("model", "lookup"),
    [
        ("usage_price", lambda: Price.objects.first()),
        ("usage_usageevent", lambda: UsageEvent.objects.get()),
        ("workspaces_historyitem", lambda: HistoryItem.objects.get()),
        ("workspaces_apikey", lambda: ApiKey.objects.get()),
    ],
)
def test_changelists_and_object_pages_open(staff, charged, model, lookup):
    assert staff.client.get(reverse(f"admin:{model}_changelist")).status_code == 200
    assert staff.client.get(reverse(f"admin:{model}_changelist"), {"q": "gpt"}).status_code == 200
    assert staff.client.get(reverse(f"admin:{model}_change", args=[lookup().pk])).status_code == 200


def test_staff_edit_a_price_and_the_next_charge_uses_it(staff, charged, client):
    price = Price.objects.get(tool="chat", model="gpt-4o")
    form = {
        "tool": "chat",
        "model": "gpt-4o",
        "unit": "message",
        "credits_per_unit": "7",
        "description": price.description,
        "is_active": "on",
        "provider": "openai-compatible",
        "provider_model": "gpt-4o-2024-11-20",
    }
    response = staff.client.post(reverse("admin:usage_price_change", args=[price.pk]), form)
    assert response.status_code == 302
    price.refresh_from_db()
    assert (price.provider, price.provider_model_name) == ("openai-compatible", "gpt-4o-2024-11-20")
    body = {"member": charged.member.email, "tool": "chat", "model": "gpt-4o", "units": 2}
    answer = client.post(
        "/api/v1/charges",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="admin-2",
        **charged.auth(),
    )
    assert answer.json()["credits"] == 14


def test_a_price_below_one_credit_is_refused(staff, charged):
    price = Price.objects.get(tool="chat", model="gpt-4o")
    form = {"tool": "chat", "model": "gpt-4o", "unit": "message", "credits_per_unit": "0", "is_active": "on"}
    response = staff.client.post(reverse("admin:usage_price_change", args=[price.pk]), form)
    assert response.status_code == 200  # the form again, with its error
    price.refresh_from_db()
    assert price.credits_per_unit == 5


def test_prices_are_never_deleted_and_usage_is_read_only(staff, charged):
    price = Price.objects.first()
    assert staff.client.post(reverse("admin:usage_price_delete", args=[price.pk]), {"post": "yes"}).status_code == 403
    event = UsageEvent.objects.get()
    assert staff.client.post(reverse("admin:usage_usageevent_change", args=[event.pk]), {}).status_code == 403
    assert staff.client.get(reverse("admin:usage_usageevent_add")).status_code == 403
    item = HistoryItem.objects.get()
    assert staff.client.post(reverse("admin:workspaces_historyitem_change", args=[item.pk]), {}).status_code == 403
    assert Price.objects.filter(pk=price.pk).exists()


def test_staff_revoke_a_key_through_the_service(staff, charged, client):
    api_key = ApiKey.objects.get()
    response = staff.client.post(
        reverse("admin:workspaces_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_by == staff.user
    assert AuditEvent.objects.filter(action="api_key.revoked", target_id=str(api_key.pk)).exists()
    assert client.get("/api/v1/workspace", **charged.auth()).status_code == 401
