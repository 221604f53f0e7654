from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import now
from guardian.models import UserObjectPermissionBase

from orgs.models import Organization


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
