"""Reads of the workspaces app: switcher and Overview figures, the Members table, API key lookup, who may spend
in a workspace, and History's filters and full-text search."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Substr

from orgs.models import Invitation, InvitationStatus, Membership, MembershipStatus, Organization, OrganizationRole, User
from workspaces.models import (
    ApiKey,
    HistoryItem,
    Workspace,
    WorkspaceMembership,
    WorkspaceUserObjectPermission,
)
from workspaces.roles import SPEND_PERMISSION


def workspaces_for_switcher(*, user: Any, organization: Any) -> QuerySet[Workspace]:
    """The live workspaces of `organization` that `user` can open, Primary first."""
    return Workspace.objects.for_user(user).filter(organization=organization).order_by("-is_primary", "name")


@dataclass(frozen=True)
class OverviewFigures:
    workspace_people: int
    organization_members: int
    my_workspaces: int


def workspace_overview_figures(*, user: Any, workspace: Workspace) -> OverviewFigures:
    """Counts for the Overview: who can open this workspace, the org's members, the user's workspaces."""
    return OverviewFigures(
        workspace_people=WorkspaceUserObjectPermission.objects.filter(
            content_object=workspace, permission__codename="view_workspace"
        ).count(),
        organization_members=Membership.objects.active().filter(organization_id=workspace.organization_id).count(),
        my_workspaces=workspaces_for_switcher(user=user, organization=workspace.organization).count(),
    )


def workspace_ids_with_usage_view(*, user: Any, organization: Organization) -> set[int]:
    """The live workspaces of `organization` whose usage `user` may see (`view_workspace_usage`: Owners, Admins and
    the workspace's admins), in one query."""
    rows = Workspace.objects.live().filter(
        organization=organization,
        user_permissions__user=user,
        user_permissions__permission__codename="view_workspace_usage",
    )
    return set(rows.values_list("pk", flat=True))


def workspaces_with_usage_view(*, user: Any, organization: Organization) -> QuerySet[Workspace]:
    """The live workspaces whose usage (and client statements) `user` may see, by name."""
    return (
        Workspace.objects.live()
        .filter(
            organization=organization,
            user_permissions__user=user,
            user_permissions__permission__codename="view_workspace_usage",
        )
        .order_by("name")
    )


def archived_workspaces(*, organization: Organization) -> QuerySet[Workspace]:
    return Workspace.objects.filter(organization=organization, archived_at__isnull=False).order_by("-archived_at")


def workspace_people(*, workspace: Workspace) -> list[dict[str, Any]]:
    """Everyone who can open the workspace, with how they got access, Owner/Admins first."""
    organization_admins = (
        Membership.objects.active()
        .filter(organization_id=workspace.organization_id, role__gte=OrganizationRole.ADMIN)
        .select_related("user")
        .order_by("-role", "user__email")
    )
    assigned = (
        WorkspaceMembership.objects.filter(
            workspace=workspace,
            user__memberships__organization_id=workspace.organization_id,
            user__memberships__status=MembershipStatus.ACTIVE,
            user__memberships__role=OrganizationRole.MEMBER,
        )
        .select_related("user")
        .order_by("user__email")
    )
    people: list[dict[str, Any]] = [
        {"user": m.user, "role": "admin", "via": m.get_role_display(), "assigned": False} for m in organization_admins
    ]
    people += [{"user": wm.user, "role": wm.role, "via": "Assigned", "assigned": True} for wm in assigned]
    return people


def api_key_find(*, prefix: str, secret_hash: str) -> ApiKey | None:
    """The live key with this public prefix and secret hash (compared in constant time), or None."""
    api_key = (
        ApiKey.objects.active()
        .filter(
            prefix=prefix,
            workspace__archived_at__isnull=True,
            workspace__organization__deleted_at__isnull=True,
        )
        .select_related("workspace__organization")
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, secret_hash):
        return None
    return api_key


def workspace_spenders(*, workspace: Workspace) -> QuerySet[User]:
    """The active users who may spend credits in `workspace`: those holding its `use_workspace` permission row — the
    same rows that guard every page (Owners, Admins and the workspace's admins and members; never viewers, removed
    members or strangers). The one definition of "who may spend here"; the metering fast path's SQL joins the same
    row (`usage/fastpath.py`)."""
    return User.objects.filter(
        is_active=True,
        workspaceuserobjectpermission__content_object=workspace,
        workspaceuserobjectpermission__permission__codename=SPEND_PERMISSION,
    )


def workspace_spender(*, workspace: Workspace, email: str) -> User | None:
    """The spender of `workspace` with this email, if any (the metering API names members by email)."""
    return workspace_spenders(workspace=workspace).filter(email=email.strip().lower()).first()


# --- history -------------------------------------------------------------------------------------------------

# The expression of the GIN index `history_fulltext` (migration 0003), written the same way so that PostgreSQL's
# planner matches it (the index is partial: the query must also say `deleted_at IS NULL`, which `visible()` does).
HISTORY_FULLTEXT_DOCUMENT = (
    "to_tsvector('simple'::regconfig, "
    """COALESCE("workspaces_historyitem"."prompt", '') || ' ' || """
    """COALESCE("workspaces_historyitem"."output_text", ''))"""
)
HISTORY_FULLTEXT_MATCH = f"{HISTORY_FULLTEXT_DOCUMENT} @@ websearch_to_tsquery('simple'::regconfig, %s)"
HISTORY_EXCERPT_LENGTH = 240


def history_search(items: QuerySet[HistoryItem], text: str) -> QuerySet[HistoryItem]:
    """Items whose prompt or output contains the words of `text`.

    PostgreSQL: full-text search over the indexed expression (words, any order; "quoted phrases" and -excluded
    words as in a web search engine). SQLite (the embedded demo): a case-insensitive substring search.
    """
    text = text.strip()
    if not text:
        return items
    if connection.vendor == "postgresql":
        # A constant SQL text; the user's words are a bound parameter.
        return items.filter(RawSQL(HISTORY_FULLTEXT_MATCH, [text], output_field=BooleanField()))  # noqa: S611
    return items.filter(Q(prompt__icontains=text) | Q(output_text__icontains=text))


@dataclass(frozen=True)
class HistoryAuthor:
    pk: int
    email: str
    name: str  # as the History table shows them (`User.display_name`)
    has_access: bool  # False for people removed from the organization or the workspace


def history_authors(*, workspace: Workspace) -> list[HistoryAuthor]:
    """Everyone who authored a visible item of `workspace`, by name, in one query. Removed members are included
    (their items stay attributed to them); `has_access` says whether they can still open the workspace."""
    authored = HistoryItem.objects.visible().filter(workspace=workspace).values("author_id")
    can_open = WorkspaceUserObjectPermission.objects.filter(
        content_object=workspace, user=OuterRef("pk"), permission__codename="view_workspace"
    )
    authors = User.objects.filter(pk__in=authored).annotate(has_access=Exists(can_open))
    rows = authors.values_list("pk", "email", "name", "has_access")
    found = [HistoryAuthor(pk, email, User(email=email, name=name).display_name, ok) for pk, email, name, ok in rows]
    return sorted(found, key=lambda author: (author.name.casefold(), author.email))


@dataclass(frozen=True)
class HistoryTotals:
    items: int
    credits: int


def history_totals(items: QuerySet[HistoryItem]) -> HistoryTotals:
    """How many items a (filtered) History list holds and what they cost, all pages together, in one query."""
    found = items.order_by().aggregate(items=Count("pk"), credits=Sum("credits"))
    return HistoryTotals(items=found["items"], credits=int(found["credits"] or 0))


def user_can_open_workspace(*, user_id: int, workspace: Workspace) -> bool:
    """Whether the user still holds the permission row that opens `workspace` (False once removed)."""
    return WorkspaceUserObjectPermission.objects.filter(
        content_object=workspace, user_id=user_id, permission__codename="view_workspace"
    ).exists()


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def history_items(
    *,
    workspace: Workspace,
    tool: str = "",
    author_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    search: str = "",
) -> QuerySet[HistoryItem]:
    """The visible items of `workspace`, newest first, for the History list.

    Dates are calendar days in the organization's time zone (both ends included). The long texts are not loaded:
    the list gets a `prompt_excerpt` and the author in the same query.
    """
    items: QuerySet[HistoryItem] = HistoryItem.objects.visible().filter(workspace=workspace)
    if tool:
        items = items.filter(tool=tool)
    if author_id is not None:
        items = items.filter(author_id=author_id)
    zone = ZoneInfo(workspace.organization.timezone)
    if date_from is not None:
        items = items.filter(created_at__gte=_day_start(date_from, zone))
    if date_to is not None:
        items = items.filter(created_at__lt=_day_start(date_to + timedelta(days=1), zone))
    items = history_search(items, search)
    return (
        items.select_related("author")
        .annotate(prompt_excerpt=Substr("prompt", 1, HISTORY_EXCERPT_LENGTH))
        .defer("prompt", "output_text", "metadata", "author__password")
        .order_by("-created_at", "-pk")
    )


def workspace_api_keys(*, workspace: Workspace) -> tuple[list[ApiKey], list[ApiKey]]:
    """The workspace's API keys, newest first, in one query: (active, revoked)."""
    keys = list(ApiKey.objects.filter(workspace=workspace).select_related("created_by", "revoked_by"))
    return [k for k in keys if not k.is_revoked], [k for k in keys if k.is_revoked]


def organization_admins(organization: Organization) -> list[User]:
    """The organization's Owner and Admins: admins of every workspace, so their rows change with each workspace."""
    return list(
        User.objects.filter(
            memberships__organization=organization,
            memberships__role__gte=OrganizationRole.ADMIN,
        )
    )


def workspace_users_with_access(workspace: Workspace) -> list[User]:
    """Org Owners/Admins plus the members assigned to the workspace: whose rows change with it."""
    return list(
        User.objects.filter(
            Q(memberships__organization_id=workspace.organization_id, memberships__role__gte=OrganizationRole.ADMIN)
            | Q(workspace_memberships__workspace=workspace)
        ).distinct()
    )


def workspace_restore_deadline(workspace: Workspace) -> datetime | None:
    """Until when an archived workspace can be restored (None: it is not archived)."""
    if workspace.archived_at is None:
        return None
    return workspace.archived_at + timedelta(days=settings.ORGANIZATION_RETENTION_DAYS)


def history_item_can_delete(*, item: HistoryItem, user: User, workspace_permissions: frozenset[str]) -> bool:
    """The author, or an admin of the workspace (org Owners and Admins are admins of every workspace)."""
    return item.author_id == user.pk or "manage_workspace" in workspace_permissions


def members_table(
    *, organization: Organization, search: str = "", status: str = ""
) -> tuple[QuerySet[Membership], QuerySet[Invitation]]:
    """Members (newest role first) and pending/expired invitations of the Members tab, filtered alike.

    Workspace assignments are prefetched, so a page of rows costs a constant number of queries.
    """
    members = (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        # Whether the member has two-factor sign-in (an authenticator app; recovery codes alone do not count).
        .annotate(
            has_two_factor=Exists(
                Authenticator.objects.filter(user_id=OuterRef("user_id")).exclude(
                    type=Authenticator.Type.RECOVERY_CODES
                )
            )
        )
        .prefetch_related(
            Prefetch(
                "user__workspace_memberships",
                queryset=WorkspaceMembership.objects.filter(
                    workspace__organization=organization, workspace__archived_at__isnull=True
                ).select_related("workspace"),
                to_attr="org_workspace_memberships",
            )
        )
        .order_by("-role", "user__email")
    )
    invitations = (
        Invitation.objects.filter(organization=organization, status=InvitationStatus.PENDING)
        .prefetch_related("workspaces")
        .select_related("invited_by")
        .order_by("email")
    )
    if search:
        members = members.filter(Q(user__email__icontains=search) | Q(user__name__icontains=search))
        invitations = invitations.filter(email__icontains=search)
    if status == "active":
        members, invitations = members.filter(status=MembershipStatus.ACTIVE), invitations.none()
    elif status == "removed":
        members, invitations = members.filter(status=MembershipStatus.REMOVED), invitations.none()
    elif status == "pending":
        members = members.none()
    return members, invitations
