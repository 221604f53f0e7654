from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from qolaba.lifecycle import workspace_create
from workspaces.models import ApiKey, HistoryItem, Workspace, WorkspaceMembership
from workspaces.services import api_key_revoke, workspace_update


class WorkspaceAddForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["organization", "name", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organization, name = cleaned.get("organization"), (cleaned.get("name") or "").strip()
        if (
            organization
            and name
            and Workspace.objects.live().filter(organization=organization, name__iexact=name).exists()
        ):
            self.add_error("name", "A workspace with this name already exists in the organization.")
        return cleaned


class WorkspaceChangeForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        name = (cleaned.get("name") or "").strip()
        live = Workspace.objects.live().filter(organization_id=self.instance.organization_id, name__iexact=name)
        if name and live.exclude(pk=self.instance.pk).exists():
            self.add_error("name", "A workspace with this name already exists in the organization.")
        return cleaned


class WorkspaceMembershipInline(admin.TabularInline):
    """Read-only here: assignments go through the services, which keep permissions in step."""

    model = WorkspaceMembership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["user", "role", "created_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "is_primary", "created_by", "created_at", "archived_at"]
    list_filter = ["is_primary", ("archived_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug", "organization__name", "organization__slug", "memberships__user__email"]
    list_select_related = ["organization", "created_by"]
    autocomplete_fields = ["organization"]
    inlines = [WorkspaceMembershipInline]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = WorkspaceAddForm if obj is None else WorkspaceChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["organization", "name", "description"]
        return ["organization", "name", "slug", "description", "is_primary", "created_by", "created_at", "archived_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return ["organization", "slug", "is_primary", "created_by", "created_at", "archived_at"]

    def save_model(self, request: HttpRequest, obj: Workspace, form: Any, change: bool) -> None:
        if change:
            workspace_update(workspace=obj, actor=request.user, name=obj.name, description=obj.description)  # type: ignore[arg-type]
            return
        created = workspace_create(
            organization=obj.organization,
            name=obj.name,
            description=obj.description,
            created_by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Workspaces are archived (and restored) through the app; the Primary Workspace never goes away.
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Support can see and revoke keys; only workspace admins create them (the secret is shown once, to them)."""

    list_display = ["name", "display_prefix", "workspace", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "=prefix", "workspace__name", "workspace__organization__name"]
    list_select_related = ["workspace__organization", "created_by"]
    readonly_fields = ["name", "display_prefix", "workspace", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user)  # type: ignore[arg-type]
            revoked += 1
        messages.success(request, f"Revoked {revoked} key(s).")


@admin.register(HistoryItem)
class HistoryItemAdmin(admin.ModelAdmin):
    """Read-only: support can check that a generation was recorded, not change what a customer made."""

    list_display = ["created_at", "workspace", "author", "tool", "model", "credits", "deleted_at"]
    list_filter = ["tool", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["workspace__name", "workspace__organization__name", "=author__email"]
    list_select_related = ["workspace__organization", "author"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in HistoryItem._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
