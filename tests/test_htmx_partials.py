"""Every view with partials answers alike (qolaba.htmx.render_page): the whole page for a normal request, for htmx's
history restore and for htmx aimed elsewhere; only the partial for htmx aimed at it; and Vary on both, so that no
cache hands out one for the other.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from orgs.models import OrganizationRole
from orgs.services import admin_key_create
from qolaba.tools import Tool
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage.exports import usage_export_create
from usage.reports import UsageQuery
from usage.studio.models import ChatThread, ChatTurn
from workspaces.models import WorkspaceRole
from workspaces.services import api_key_create, history_item_create, invitations_create

# The headers of each kind of request, for a given partial; and whether it gets the whole page.
REQUESTS = {
    "normal": (lambda partial: {}, True),
    "htmx-for-the-partial": (lambda partial: {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": partial}, False),
    "htmx-for-another-element": (lambda partial: {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "main"}, True),
    # htmx sends no target with a restore; one here shows that the restore wins over it.
    "history-restore": (
        lambda partial: {
            "HTTP_HX_REQUEST": "true",
            "HTTP_HX_TARGET": partial,
            "HTTP_HX_HISTORY_RESTORE_REQUEST": "true",
        },
        True,
    ),
}

# (URL name, its arguments, the partial = the id of the element it fills, POST data for a view that only posts)
VIEWS = [
    ("orgs:list", (), "organization-menu", None),
    ("orgs:members", ("org_slug",), "members-table", None),
    ("orgs:audit", ("org_slug",), "audit-table", None),
    ("orgs:notifications", ("org_slug",), "notification-menu", None),
    ("workspaces:list", ("org_slug",), "workspace-menu", None),
    ("workspaces:history", ("org_slug", "ws_slug"), "history-results", None),
    ("workspaces:api_key_create", ("org_slug", "ws_slug"), "api-keys", {"name": "Renderer"}),
    ("orgs:admin_key_create", ("org_slug",), "admin-keys", {"name": "Finance dashboard"}),
    ("billing:credits_transfer", ("org_slug",), "transfer-preview", None),
    ("billing:credits_transfer", ("org_slug",), "dialog-body", None),
    # Confirmations of destructive actions: the dialog's content.
    ("orgs:member_remove", ("org_slug", "membership_id"), "dialog-body", None),
    ("orgs:invitation_revoke", ("org_slug", "invitation_id"), "dialog-body", None),
    ("workspaces:workspace_archive", ("org_slug", "ws_slug"), "dialog-body", None),
    ("workspaces:history_item_delete", ("org_slug", "ws_slug", "item_id"), "dialog-body", None),
    ("workspaces:api_key_revoke", ("org_slug", "ws_slug", "key_id"), "dialog-body", None),
    ("orgs:admin_key_revoke", ("org_slug", "admin_key_id"), "dialog-body", None),
    ("billing:subscription_cancel", ("org_slug",), "dialog-body", None),
    # A background export's progress, polled while it runs.
    ("usage:usage_export", ("org_slug", "export_id"), "export-status", None),
    # The Studio: the thread search, the live price, a chat turn polled while it is written.
    ("studio:chat", ("org_slug", "ws_slug"), "thread-list", None),
    ("studio:chat_price", ("org_slug", "ws_slug"), "chat-price", None),
    ("studio:chat_turn", ("org_slug", "ws_slug", "thread_id", "turn_id"), "chat-live", None),
]


@pytest.fixture
def world(db) -> tuple[Client, dict[str, object]]:
    owner = UserFactory()
    org = make_organization(owner=owner)
    workspace = make_workspace(org)
    member = make_member(org, workspaces={workspace: WorkspaceRole.MEMBER})
    item = history_item_create(workspace=workspace, author=member.user, tool=Tool.CHAT, model="gpt", credits=1)
    api_key, _ = api_key_create(workspace=workspace, actor=owner, name="Service")
    admin_key, _ = admin_key_create(organization=org, actor=owner, name="Finance")
    invitation = invitations_create(
        organization=org,
        emails=["invitee@example.com"],
        role=OrganizationRole.MEMBER,
        workspaces=[workspace],
        workspace_role=WorkspaceRole.MEMBER,
        actor=owner,
    )[0]
    export = usage_export_create(
        organization=org, requester=owner, query=UsageQuery(start=date(2026, 3, 1), end=date(2026, 3, 31))
    )
    thread = ChatThread.objects.create(organization=org, workspace=workspace, author=owner, title="Plans")
    turn = ChatTurn.objects.create(
        thread=thread, author=owner, model="gpt-4o", provider="demo", prompt="Hi", estimated_credits=5
    )
    client = Client()
    client.force_login(owner)
    values = {
        "org_slug": org.slug,
        "ws_slug": workspace.slug,
        "membership_id": member.pk,
        "invitation_id": invitation.pk,
        "item_id": item.pk,
        "key_id": api_key.pk,
        "admin_key_id": admin_key.pk,
        "export_id": export.pk,
        "thread_id": thread.pk,
        "turn_id": turn.pk,
    }
    return client, values


@pytest.mark.parametrize("kind", REQUESTS)
@pytest.mark.parametrize(("url_name", "arguments", "partial", "data"), VIEWS, ids=[f"{v[0]}#{v[2]}" for v in VIEWS])
def test_page_or_partial(world, url_name, arguments, partial, data, kind):
    client, values = world
    url = reverse(url_name, kwargs={name: values[name] for name in arguments})
    make_headers, whole_page = REQUESTS[kind]
    headers = make_headers(partial)
    response = client.post(url, data, **headers) if data else client.get(url, **headers)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip()
    assert ("<html" in html) is whole_page
    assert {"HX-Request", "HX-Target", "HX-History-Restore-Request"} <= {
        header.strip() for header in response["Vary"].split(",")
    }
