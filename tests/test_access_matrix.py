"""Every URL of the app x every kind of person x GET/POST x own and foreign organization.

The matrix is keyed by URL name and checked against the URL configuration: a new pattern that is not in the
matrix fails `test_every_url_pattern_is_in_the_matrix`. Refused writes must leave the database as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now

from billing.catalog import plans_ensure_defaults
from billing.models import Plan
from billing.services import plan_subscribe
from orgs.models import (
    AdminKey,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    OrganizationRole,
    OrganizationUserObjectPermission,
)
from orgs.services import admin_key_create, admin_key_revoke
from qolaba.lifecycle import workspace_archive
from qolaba.tools import Tool
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage.exports import usage_export_create
from usage.models import ClientRate, UsageExport
from usage.reports import UsageQuery
from usage.statements import month_of
from usage.studio.models import MEDIA_TOOLS, ChatThread, ChatTurn, JobStatus, StudioJob, TurnStatus
from usage.tasks import usage_export_run
from workspaces.models import (
    ApiKey,
    HistoryItem,
    Workspace,
    WorkspaceMembership,
    WorkspaceRole,
    WorkspaceUserObjectPermission,
    history_storage,
)
from workspaces.services import api_key_create, api_key_revoke, history_item_create, invitations_create

PERSONAS = [
    "anonymous",
    "outsider",
    "member_without_access",
    "workspace_viewer",
    "workspace_member",
    "workspace_admin",
    "org_admin",
    "owner",
]
APP_NAMESPACES = {"orgs", "workspaces", "billing", "usage", "studio"}

# Who may do what, by the permission the view needs. "public" is the invitation link.
LEVELS: dict[str, set[str]] = {
    "authenticated": set(PERSONAS) - {"anonymous"},
    "org_member": set(PERSONAS) - {"anonymous", "outsider"},
    "view_workspace": {"workspace_viewer", "workspace_member", "workspace_admin", "org_admin", "owner"},
    "manage_workspace": {"workspace_admin", "org_admin", "owner"},
    "view_workspace_usage": {"workspace_admin", "org_admin", "owner"},
    "org_admin": {"org_admin", "owner"},
    "owner": {"owner"},
    # A background usage export is shown to its requester only (the fixture's is the workspace member's), Owners
    # included: everyone else gets a 404.
    "export_requester": {"workspace_member"},
    # Running a Studio tool: everyone who may spend in the workspace. A viewer sees the Studio and gets a 403 that
    # says why (FORBIDDEN_VISIBLE).
    "use_workspace": {"workspace_member", "workspace_admin", "org_admin", "owner"},
    # Renaming or deleting a chat thread: its author (the fixture's `subject`) or a workspace admin; the other
    # people who see the thread get a 403.
    "manage_thread": {"workspace_admin", "org_admin", "owner"},
}
# Who sees the object but is refused the action with a 403 and the reason (not a 404).
FORBIDDEN_VISIBLE: dict[str, set[str]] = {
    "use_workspace": {"workspace_viewer"},
    "manage_thread": {"workspace_viewer", "workspace_member"},
}


@dataclass(frozen=True)
class Route:
    level: str  # key of LEVELS
    methods: frozenset[str]  # the HTTP methods the view answers
    org_scoped: bool = True  # lives under /o/<org_slug>/ (so there is a foreign-org variant)


GET, POST, BOTH = frozenset({"GET"}), frozenset({"POST"}), frozenset({"GET", "POST"})

MATRIX: dict[str, Route] = {
    "home": Route("authenticated", GET, org_scoped=False),
    "orgs:list": Route("authenticated", GET, org_scoped=False),
    "orgs:organization_create": Route("authenticated", BOTH, org_scoped=False),
    "orgs:invitation_accept": Route("public", BOTH, org_scoped=False),
    "orgs:open": Route("org_member", GET),
    "orgs:members": Route("org_admin", GET),
    "orgs:invitations_create": Route("org_admin", BOTH),
    "orgs:member": Route("org_admin", GET),
    "orgs:member_role_change": Route("org_admin", POST),
    "orgs:member_workspaces_set": Route("org_admin", POST),
    "orgs:member_remove": Route("org_admin", BOTH),
    "orgs:invitation_resend": Route("org_admin", POST),
    "orgs:invitation_revoke": Route("org_admin", BOTH),
    "orgs:profile": Route("org_admin", BOTH),
    "orgs:admin_key_create": Route("org_admin", POST),
    "orgs:admin_key_revoke": Route("org_admin", BOTH),
    "orgs:organization_two_factor_require": Route("org_admin", POST),
    "orgs:ownership_transfer": Route("owner", BOTH),
    "orgs:organization_delete": Route("owner", BOTH),
    "orgs:notifications": Route("org_member", GET),
    "orgs:notifications_read": Route("org_member", POST),
    "orgs:audit": Route("org_admin", GET),
    "orgs:audit_export": Route("org_admin", GET),
    "workspaces:list": Route("org_member", GET),
    "workspaces:workspace_create": Route("org_admin", BOTH),
    "workspaces:workspace_restore": Route("org_admin", POST),
    "workspaces:overview": Route("view_workspace", GET),
    "workspaces:settings": Route("manage_workspace", BOTH),
    "workspaces:workspace_member_set": Route("manage_workspace", POST),
    "workspaces:workspace_member_remove": Route("manage_workspace", POST),
    "workspaces:workspace_archive": Route("org_admin", BOTH),
    "workspaces:history": Route("view_workspace", GET),
    "workspaces:history_item": Route("view_workspace", GET),
    "workspaces:history_media": Route("view_workspace", GET),
    # Deleting a history item is for its author or a workspace admin. The fixture item's author is the `subject`
    # (a plain workspace member, not a persona), so for every persona this is the workspace admins' level; the
    # author's own right is tested in tests/workspaces/test_history_views.py.
    "workspaces:history_item_delete": Route("manage_workspace", BOTH),
    "workspaces:api_key_create": Route("manage_workspace", POST),
    "workspaces:api_key_revoke": Route("manage_workspace", BOTH),
    "workspaces:client_rate_set": Route("org_admin", POST),
    "usage:dashboard": Route("org_member", GET),  # everyone sees usage; what they see is their scope (tests/usage)
    "usage:statements": Route("view_workspace_usage", GET),
    "usage:statement": Route("view_workspace_usage", GET),
    "usage:statement_csv": Route("view_workspace_usage", GET),
    "usage:statement_pdf": Route("view_workspace_usage", GET),
    "usage:usage_export_csv": Route("org_member", GET),
    "usage:usage_exports": Route("org_member", GET),
    "usage:usage_export_create": Route("org_member", POST),
    "usage:usage_export": Route("export_requester", GET),
    "usage:usage_export_download": Route("export_requester", GET),
    "billing:page": Route("org_admin", GET),
    "billing:plan_subscribe": Route("org_admin", BOTH),
    "billing:invoice_pdf": Route("org_admin", GET),
    "billing:credits_buy": Route("org_admin", BOTH),
    "billing:subscription_cancel": Route("org_admin", BOTH),
    "billing:subscription_resume": Route("org_admin", POST),
    "billing:credit_mode_switch": Route("org_admin", BOTH),
    "billing:credits_transfer": Route("org_admin", BOTH),
    "billing:workspace_limit_set": Route("org_admin", BOTH),
    "studio:chat": Route("view_workspace", GET),
    "studio:chat_price": Route("view_workspace", GET),
    "studio:chat_thread": Route("view_workspace", GET),
    "studio:chat_turn": Route("view_workspace", GET),
    "studio:chat_turn_start": Route("use_workspace", POST),
    "studio:chat_thread_turn_start": Route("use_workspace", POST),
    "studio:chat_turn_stop": Route("use_workspace", POST),
    "studio:chat_thread_rename": Route("manage_thread", POST),
    "studio:chat_thread_delete": Route("manage_thread", POST),
    "studio:job": Route("view_workspace", GET),
    "studio:job_media": Route("view_workspace", GET),
    "studio:job_cancel": Route("use_workspace", POST),
    **{f"studio:{tool}": Route("view_workspace", GET) for tool in MEDIA_TOOLS},
    **{f"studio:{tool}_price": Route("view_workspace", GET) for tool in MEDIA_TOOLS},
    **{f"studio:{tool}_run": Route("use_workspace", POST) for tool in MEDIA_TOOLS},
}


def _app_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list, namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                if namespace in APP_NAMESPACES:
                    names.add(f"{namespace}:{pattern.name}")
                elif namespace is None and pattern.name == "home":
                    names.add("home")

    walk(get_resolver().url_patterns, None)
    return names


def test_every_url_pattern_is_in_the_matrix():
    assert _app_url_names() == set(MATRIX), "add new URL patterns to MATRIX (and remove deleted ones)"


def _build_org(label: str, personas: dict[str, object] | None) -> dict[str, object]:
    owner = personas["owner"] if personas else UserFactory()
    org = make_organization(owner=owner, name=f"{label} Org")
    target = make_workspace(org, name=f"{label} Target")
    other = make_workspace(org, name=f"{label} Other")
    archived = make_workspace(org, name=f"{label} Archived")
    workspace_archive(workspace=archived, actor=owner)
    if personas:
        make_member(org, role=OrganizationRole.ADMIN, user=personas["org_admin"])
        make_member(org, user=personas["member_without_access"], workspaces={other: WorkspaceRole.MEMBER})
        make_member(org, user=personas["workspace_viewer"], workspaces={target: WorkspaceRole.VIEWER})
        make_member(org, user=personas["workspace_member"], workspaces={target: WorkspaceRole.MEMBER})
        make_member(org, user=personas["workspace_admin"], workspaces={target: WorkspaceRole.ADMIN})
    subject = make_member(org, workspaces={target: WorkspaceRole.MEMBER})
    item = history_item_create(
        workspace=target,
        author=subject.user,
        tool=Tool.IMAGE,
        model="flux-pro",
        credits=8,
        prompt="A lighthouse",
        media=ContentFile(b"\x89PNG\r\n\x1a\n", name="out.png"),
        media_content_type="image/png",
    )
    api_key, _ = api_key_create(workspace=target, actor=owner, name=f"{label} service")
    admin_key, _ = admin_key_create(organization=org, actor=owner, name=f"{label} finance")
    thread = ChatThread.objects.create(organization=org, workspace=target, author=subject.user, title=f"{label} thread")
    turn = ChatTurn.objects.create(
        thread=thread,
        author=subject.user,
        model="gpt-4o",
        provider="demo",
        prompt="Hello",
        reply="Hi",
        status=TurnStatus.DONE,
        estimated_credits=5,
        credits=5,
    )
    # A running video (so Cancel has something to do) with one stored output (so its media can be served).
    stored = history_storage().save(f"history/{target.pk}/job.png", ContentFile(b"\x89PNG\r\n\x1a\n"))
    job = StudioJob.objects.create(
        organization=org,
        workspace=target,
        author=subject.user,
        tool=Tool.VIDEO,
        model="kling-1.6",
        provider="demo",
        prompt="Waves",
        options={"seconds": 2},
        status=JobStatus.RUNNING,
        estimated_credits=40,
        outputs=[{"name": stored, "content_type": "image/png"}],
    )
    invitation = invitations_create(
        organization=org,
        emails=[f"invitee-{label.lower()}@example.com"],
        role=OrganizationRole.MEMBER,
        workspaces=[target],
        workspace_role=WorkspaceRole.MEMBER,
        actor=owner,
    )[0]
    requester = personas["workspace_member"] if personas else owner
    export = usage_export_create(
        organization=org, requester=requester, query=UsageQuery(start=date(2026, 3, 1), end=date(2026, 3, 31))
    )
    usage_export_run(export.pk)  # done: its file can be downloaded
    plans_ensure_defaults()
    invoice = plan_subscribe(organization=org, plan=Plan.objects.get(code="pro"), actor=owner, gateway_code="manual")
    return {
        "org_slug": org.slug,
        "export_id": export.pk,
        "number": invoice.number,
        "ws_slug": target.slug,
        "membership_id": subject.pk,
        "user_id": subject.user_id,
        "invitation_id": invitation.pk,
        "workspace_id": archived.pk,
        "item_id": item.pk,
        "key_id": api_key.pk,
        "admin_key_id": admin_key.pk,
        "thread_id": thread.pk,
        "turn_id": turn.pk,
        "job_id": job.pk,
        "index": 0,
        "period": month_of(org, now()),  # the current month: a draft statement
    }


URL_KWARGS: dict[str, tuple[str, ...]] = {
    "orgs:open": ("org_slug",),
    "orgs:members": ("org_slug",),
    "usage:dashboard": ("org_slug",),
    "orgs:invitations_create": ("org_slug",),
    "orgs:member": ("org_slug", "membership_id"),
    "orgs:member_role_change": ("org_slug", "membership_id"),
    "orgs:member_workspaces_set": ("org_slug", "membership_id"),
    "orgs:member_remove": ("org_slug", "membership_id"),
    "orgs:invitation_resend": ("org_slug", "invitation_id"),
    "orgs:invitation_revoke": ("org_slug", "invitation_id"),
    "orgs:profile": ("org_slug",),
    "orgs:admin_key_create": ("org_slug",),
    "orgs:admin_key_revoke": ("org_slug", "admin_key_id"),
    "orgs:organization_two_factor_require": ("org_slug",),
    "orgs:ownership_transfer": ("org_slug",),
    "orgs:organization_delete": ("org_slug",),
    "orgs:notifications": ("org_slug",),
    "orgs:notifications_read": ("org_slug",),
    "orgs:audit": ("org_slug",),
    "orgs:audit_export": ("org_slug",),
    "workspaces:list": ("org_slug",),
    "workspaces:workspace_create": ("org_slug",),
    "workspaces:workspace_restore": ("org_slug", "workspace_id"),
    "workspaces:overview": ("org_slug", "ws_slug"),
    "workspaces:settings": ("org_slug", "ws_slug"),
    "workspaces:workspace_member_set": ("org_slug", "ws_slug"),
    "workspaces:workspace_member_remove": ("org_slug", "ws_slug", "user_id"),
    "workspaces:workspace_archive": ("org_slug", "ws_slug"),
    "workspaces:history": ("org_slug", "ws_slug"),
    "workspaces:history_item": ("org_slug", "ws_slug", "item_id"),
    "workspaces:history_media": ("org_slug", "ws_slug", "item_id"),
    "workspaces:history_item_delete": ("org_slug", "ws_slug", "item_id"),
    "workspaces:api_key_create": ("org_slug", "ws_slug"),
    "workspaces:api_key_revoke": ("org_slug", "ws_slug", "key_id"),
    "workspaces:client_rate_set": ("org_slug", "ws_slug"),
    "usage:statements": ("org_slug", "ws_slug"),
    "usage:statement": ("org_slug", "ws_slug", "period"),
    "usage:statement_csv": ("org_slug", "ws_slug", "period"),
    "usage:statement_pdf": ("org_slug", "ws_slug", "period"),
    "usage:usage_export_csv": ("org_slug",),
    "usage:usage_exports": ("org_slug",),
    "usage:usage_export_create": ("org_slug",),
    "usage:usage_export": ("org_slug", "export_id"),
    "usage:usage_export_download": ("org_slug", "export_id"),
    "billing:page": ("org_slug",),
    "billing:plan_subscribe": ("org_slug",),
    "billing:invoice_pdf": ("org_slug", "number"),
    "billing:credits_buy": ("org_slug",),
    "billing:subscription_cancel": ("org_slug",),
    "billing:subscription_resume": ("org_slug",),
    "billing:credit_mode_switch": ("org_slug",),
    "billing:credits_transfer": ("org_slug",),
    "billing:workspace_limit_set": ("org_slug", "ws_slug"),
    "studio:chat": ("org_slug", "ws_slug"),
    "studio:chat_price": ("org_slug", "ws_slug"),
    "studio:chat_turn_start": ("org_slug", "ws_slug"),
    "studio:chat_thread": ("org_slug", "ws_slug", "thread_id"),
    "studio:chat_thread_turn_start": ("org_slug", "ws_slug", "thread_id"),
    "studio:chat_thread_rename": ("org_slug", "ws_slug", "thread_id"),
    "studio:chat_thread_delete": ("org_slug", "ws_slug", "thread_id"),
    "studio:chat_turn": ("org_slug", "ws_slug", "thread_id", "turn_id"),
    "studio:chat_turn_stop": ("org_slug", "ws_slug", "thread_id", "turn_id"),
    "studio:job": ("org_slug", "ws_slug", "job_id"),
    "studio:job_media": ("org_slug", "ws_slug", "job_id", "index"),
    "studio:job_cancel": ("org_slug", "ws_slug", "job_id"),
    **{f"studio:{tool}{suffix}": ("org_slug", "ws_slug") for tool in MEDIA_TOOLS for suffix in ("", "_price", "_run")},
}


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the history item's file
    personas = {name: UserFactory() for name in PERSONAS if name != "anonymous"}
    own = _build_org("Own", personas)
    foreign = _build_org("Foreign", None)
    make_organization(owner=personas["outsider"], name="Outsider Org")
    return {"personas": personas, "own": own, "foreign": foreign}


def _fingerprint() -> tuple:
    """Everything a refused write could have changed."""
    return (
        list(Organization.objects.order_by("pk").values_list("pk", "name", "timezone", "deleted_at")),
        list(Membership.objects.order_by("pk").values_list("pk", "role", "status")),
        list(Workspace.objects.order_by("pk").values_list("pk", "name", "description", "archived_at")),
        list(WorkspaceMembership.objects.order_by("pk").values_list("pk", "user_id", "workspace_id", "role")),
        list(Invitation.objects.order_by("pk").values_list("pk", "status", "token_hash", "expires_at")),
        OrganizationUserObjectPermission.objects.count(),
        WorkspaceUserObjectPermission.objects.count(),
        AuditEvent.objects.count(),
        list(HistoryItem.objects.order_by("pk").values_list("pk", "deleted_at")),
        list(ApiKey.objects.order_by("pk").values_list("pk", "name", "revoked_at")),
        list(AdminKey.objects.order_by("pk").values_list("pk", "name", "revoked_at")),
        list(ClientRate.objects.order_by("pk").values_list("pk", "rate_per_1000", "currency")),
        list(UsageExport.objects.order_by("pk").values_list("pk", "status", "file")),
        list(ChatThread.objects.order_by("pk").values_list("pk", "title", "deleted_at")),
        list(ChatTurn.objects.order_by("pk").values_list("pk", "status", "stop_requested")),
        list(StudioJob.objects.order_by("pk").values_list("pk", "status", "cancel_requested")),
    )


def _url(name: str, values: dict[str, object] | None) -> str:
    if name == "orgs:invitation_accept":
        return reverse(name, kwargs={"token": "not-a-real-token"})
    keys = URL_KWARGS.get(name, ())
    return reverse(name, kwargs={key: values[key] for key in keys} if values else {})


def _expected(route: Route, persona: str, method: str, foreign: bool) -> set[int]:
    """The statuses that count as right for this persona, method and organization."""
    if method not in route.methods:
        return {405}
    if route.level == "public":
        return {404}  # an unknown token: a clear "not valid" page for everyone, nothing changes
    if persona == "anonymous":
        return {302}
    allowed = persona in LEVELS[route.level] and not foreign
    if not allowed and not foreign and persona in FORBIDDEN_VISIBLE.get(route.level, set()):
        return {403}
    if not allowed:
        return {404}
    return {200, 302} if method == "GET" else {200, 302, 400}


@pytest.mark.parametrize("url_name", sorted(MATRIX))
def test_access_matrix(client, world, url_name):
    route = MATRIX[url_name]
    variants = [("own", False), ("foreign", True)] if route.org_scoped else [("own", False)]
    failures = []
    for persona in PERSONAS:
        for variant, foreign in variants:
            url = _url(url_name, world[variant])
            for method in ("GET", "POST"):
                client.logout()
                if persona != "anonymous":
                    client.force_login(world["personas"][persona])
                expected = _expected(route, persona, method, foreign)
                refused = not ({200, 302, 400} & expected) or (expected == {302} and persona == "anonymous")
                before = _fingerprint() if method == "POST" and refused else None
                # Each request runs in a savepoint that is rolled back, so what one persona may do
                # (archive, remove, ...) does not change the world the next persona sees.
                with transaction.atomic():
                    response = client.get(url) if method == "GET" else client.post(url, {})
                    after = _fingerprint() if before is not None else None
                    transaction.set_rollback(True)
                if response.status_code not in expected:
                    failures.append(f"{persona} {method} {variant} {url}: {response.status_code} not in {expected}")
                if before is not None and after != before:
                    failures.append(f"{persona} {method} {variant} {url}: refused, but the database changed")
                if persona == "anonymous" and response.status_code == 302 and route.level != "public":
                    assert response["Location"].startswith("/accounts/login/") or url_name == "home"
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_foreign_objects_inside_own_org_url_are_404(client):
    """An object id of another organization under your own organization's URL is not found."""
    owner = UserFactory()
    own = make_organization(owner=owner)
    foreign = make_organization()
    foreign_member = make_member(foreign)
    client.force_login(owner)
    url = reverse("orgs:member", kwargs={"org_slug": own.slug, "membership_id": foreign_member.pk})
    assert client.get(url).status_code == 404
    foreign_ws = make_workspace(foreign)
    workspace_archive(workspace=foreign_ws, actor=foreign.memberships.get(role=OrganizationRole.OWNER).user)
    restore = reverse("workspaces:workspace_restore", kwargs={"org_slug": own.slug, "workspace_id": foreign_ws.pk})
    assert client.post(restore).status_code == 404
    assert Workspace.objects.get(pk=foreign_ws.pk).archived_at is not None


# --- the API: every endpoint x every kind of key -------------------------------------------------------------------

# Which kind of key each API endpoint takes ("none": it needs none); every other kind is a 401.
API_MATRIX: dict[str, tuple[str, str]] = {
    "api:openapi-json": ("none", "GET"),
    "api:openapi-view": ("none", "GET"),
    "api:health": ("none", "GET"),
    "api:workspace_detail": ("workspace", "GET"),
    "api:price_list": ("workspace", "GET"),
    "api:charge_create": ("workspace", "POST"),
    "api:hold_create": ("workspace", "POST"),
    "api:hold_capture": ("workspace", "POST"),
    "api:hold_release": ("workspace", "POST"),
    "api:usage_read": ("workspace", "GET"),
    "api:organization_usage_read": ("admin", "GET"),
}
KEY_KINDS = ["missing", "workspace", "revoked workspace", "admin", "revoked admin", "garbage"]


def _api_url_names() -> set[str]:
    names: set[str] = set()
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == "api":
            names |= {f"api:{p.name}" for p in pattern.url_patterns if isinstance(p, URLPattern) and p.name}
    return names - {"api:api-root"}


def test_every_api_endpoint_is_in_the_api_matrix():
    assert _api_url_names() == set(API_MATRIX), "add new API endpoints to API_MATRIX (and remove deleted ones)"


@pytest.mark.django_db
def test_api_matrix(client):
    owner = UserFactory()
    org = make_organization(owner=owner)
    workspace = make_workspace(org)
    _, workspace_key = api_key_create(workspace=workspace, actor=owner, name="Tools")
    revoked_workspace, revoked_workspace_key = api_key_create(workspace=workspace, actor=owner, name="Old")
    api_key_revoke(api_key=revoked_workspace, actor=owner)
    _, admin_key = admin_key_create(organization=org, actor=owner, name="Finance")
    revoked_admin, revoked_admin_key = admin_key_create(organization=org, actor=owner, name="Old finance")
    admin_key_revoke(admin_key=revoked_admin, actor=owner)
    keys = {
        "missing": None,
        "workspace": workspace_key,
        "revoked workspace": revoked_workspace_key,
        "admin": admin_key,
        "revoked admin": revoked_admin_key,
        "garbage": "qlb_nothing",
    }
    failures = []
    for name, (takes, method) in API_MATRIX.items():
        url = reverse(name, kwargs={"hold_id": 1} if "hold_" in name and name != "api:hold_create" else {})
        for kind in KEY_KINDS:
            headers = {"HTTP_AUTHORIZATION": f"Bearer {keys[kind]}"} if keys[kind] else {}
            before = _fingerprint()
            if method == "GET":
                response = client.get(url, {"start": "2026-01-01", "end": "2026-01-02"}, **headers)
            else:
                response = client.post(url, {}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k", **headers)
            allowed = takes == "none" or takes == kind
            if (response.status_code == 401) == allowed:
                failures.append(f"{kind} key {method} {url}: {response.status_code}")
            if not allowed and _fingerprint() != before:
                failures.append(f"{kind} key {method} {url}: refused, but the database changed")
    assert not failures, "\n".join(failures)
