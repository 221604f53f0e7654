"""Workspaces (one Primary per organization), who is assigned to them, the guardian permission table, history items
(the content of each generation) and API keys (with the key format)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import now
from guardian.models import UserObjectPermissionBase

from orgs.models import Organization
from qolaba.keys import SecretKey, key_parse, key_secret_hash
from qolaba.tools import Tool


class WorkspaceQuerySet(models.QuerySet["Workspace"]):
    def live(self) -> WorkspaceQuerySet:
        return self.filter(archived_at__isnull=True, organization__deleted_at__isnull=True)

    def for_user(self, user: Any) -> WorkspaceQuerySet:
        """Workspaces the user may open: permission rows are the single source of access."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        return self.live().filter(
            user_permissions__user=user,
            user_permissions__permission__codename="view_workspace",
        )


class Workspace(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="workspaces")
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=60)
    description = models.TextField(blank=True, max_length=500)
    is_primary = models.BooleanField(default=False, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-is_primary", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="workspace_slug_unique_per_org"),
            models.UniqueConstraint(
                Lower("name"),
                "organization",
                condition=models.Q(archived_at__isnull=True),
                name="workspace_live_name_unique_per_org",
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(is_primary=True),
                name="workspace_one_primary_per_org",
            ),
            models.CheckConstraint(
                condition=~models.Q(is_primary=True, archived_at__isnull=False),
                name="workspace_primary_never_archived",
            ),
        ]
        permissions = [
            ("view_workspace", "Open the workspace and read its history"),
            ("use_workspace", "Use the AI tools and spend credits"),
            ("manage_workspace", "Manage the workspace's members, settings and API keys"),
            ("view_workspace_usage", "See all of the workspace's usage"),
        ]
        default_permissions = ()

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class WorkspaceRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class WorkspaceMembership(models.Model):
    """An org member's assignment to a workspace. Org Owners/Admins need none: they reach every workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memberships")
    role = models.CharField(max_length=10, choices=WorkspaceRole.choices, default=WorkspaceRole.MEMBER)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="workspace_membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=WorkspaceRole.values), name="workspace_membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.get_role_display()})"


class WorkspaceUserObjectPermission(UserObjectPermissionBase):
    """Guardian's direct foreign-key table for workspaces."""

    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "content_object"])]


def history_storage() -> Storage:
    return storages["history"]


def history_media_path(item: HistoryItem, filename: str) -> str:
    """Unguessable, workspace-scoped storage names; the files are only ever served through a permission check."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"history/{item.workspace_id}/{now():%Y/%m}/{secrets.token_urlsafe(16)}.{extension[:8]}"


class HistoryItemQuerySet(models.QuerySet["HistoryItem"]):
    def visible(self) -> HistoryItemQuerySet:
        return self.filter(deleted_at__isnull=True)

    def for_user(self, user: Any) -> HistoryItemQuerySet:
        """Items of the workspaces the user may open (the same permission rows as every workspace page)."""
        return self.visible().filter(workspace__in=Workspace.objects.for_user(user))


class HistoryItem(models.Model):
    """The content of one generation. It belongs to exactly one workspace and is never shown outside it."""

    # No database foreign keys on the three references every generation writes: their checks would take KEY SHARE
    # locks on the organization, workspace and member rows that every concurrent charge shares (as the ledger
    # tables do, see billing.models). Django still cascades; users are deactivated, never deleted.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="history_items", db_index=False, db_constraint=False
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="history_items",
        db_constraint=False,
        db_index=False,  # the (workspace, author, created_at) index serves
        help_text="Stays after the member is removed: their items remain attributed to them.",
    )
    tool = models.CharField(max_length=10, choices=Tool.choices)
    model = models.CharField(max_length=100)
    prompt = models.TextField(blank=True)
    output_text = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    media = models.FileField(upload_to=history_media_path, storage=history_storage, blank=True, max_length=200)
    media_content_type = models.CharField(max_length=100, blank=True)
    credits = models.BigIntegerField(default=0)
    usage_event_id = models.BigIntegerField(
        null=True, blank=True, unique=True, help_text="The usage event (by id: that table is partitioned)."
    )
    created_at = models.DateTimeField(default=now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    objects = HistoryItemQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "-created_at"],
                condition=models.Q(deleted_at__isnull=True),
                name="history_workspace_newest",
            ),
            models.Index(
                fields=["workspace", "author", "-created_at"],
                condition=models.Q(deleted_at__isnull=True),
                name="history_workspace_author",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_tool_display()} · {self.model} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def has_image(self) -> bool:
        return bool(self.media) and self.media_content_type.startswith("image/")


API_KEY_PREFIX = "qlb"


def api_key_secret_hash(secret: str) -> str:
    # Keys carry 240 bits of randomness, so a fast hash is as safe as a slow one (`qolaba.keys`).
    return key_secret_hash(secret)


def api_key_parse(raw: str) -> tuple[str, str] | None:
    """Split `qlb_<prefix>_<secret>` into (prefix, hash of the whole key); None when it is not such a key."""
    return key_parse(raw, scheme=API_KEY_PREFIX)


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(SecretKey):
    """A workspace's key for the metering API. Only a SHA-256 of the secret is kept; it is shown once."""

    scheme = API_KEY_PREFIX

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
