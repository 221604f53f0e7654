from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from orgs.models import (
    AdminKey,
    AuditEvent,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    Organization,
    User,
    timezone_choices,
)
from orgs.services import admin_key_revoke, invitation_revoke
from qolaba.lifecycle import organization_create, organization_restore


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]


class MembershipInline(admin.TabularInline):
    """Read-only here: membership changes go through the services, which keep permissions in step."""

    model = Membership
    extra = 0
    fields = ["user", "role", "status", "joined_at", "removed_at"]
    readonly_fields = ["user", "role", "status", "joined_at", "removed_at"]
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrganizationAddForm(forms.ModelForm):
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), help_text="Becomes the Owner.")
    timezone = forms.ChoiceField(choices=timezone_choices, initial="UTC")

    class Meta:
        model = Organization
        fields = ["name", "timezone"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "credit_mode", "member_count", "created_at", "deleted_at"]
    list_filter = ["credit_mode", ("deleted_at", admin.EmptyFieldListFilter), "timezone"]
    search_fields = ["name", "slug", "memberships__user__email"]
    readonly_fields = ["slug", "credit_mode", "created_by", "created_at", "deleted_at"]
    fields = ["name", "slug", "logo", "timezone", "credit_mode", "created_by", "created_at", "deleted_at"]
    inlines = [MembershipInline]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_members=Count(
                    "memberships", filter=Q(memberships__status=MembershipStatus.ACTIVE), distinct=True
                )
            )
        )

    @admin.display(description="Members", ordering="active_members")
    def member_count(self, obj: Organization) -> int:
        return getattr(obj, "active_members", 0)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = OrganizationAddForm
            kwargs["fields"] = ["name", "timezone", "owner"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "timezone", "owner"] if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = organization_create(
            name=form.cleaned_data["name"], owner=form.cleaned_data["owner"], timezone=form.cleaned_data["timezone"]
        )
        obj.pk = created.pk
        obj.slug = created.slug

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Organizations are soft-deleted by their Owner and purged by a scheduled job, never from here.
        return False

    @admin.action(description="Restore the selected deleted organizations")
    def restore_organizations(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        restored = 0
        for organization in queryset.filter(deleted_at__isnull=False):
            organization_restore(organization=organization, actor=request.user)  # type: ignore[arg-type]
            restored += 1
        self.message_user(request, f"Restored {restored} organization(s); their members have access again.")

    actions = ["restore_organizations"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "status", "joined_at"]
    list_filter = ["role", "status"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["user", "organization", "role", "status", "joined_at", "removed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "invited_by", "sent_at", "expires_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "organization__name", "organization__slug", "invited_by__email"]
    list_select_related = ["organization", "invited_by"]
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name != "token_hash"] + ["workspaces"]
    exclude = ["token_hash"]
    actions = ["revoke_invitations"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected pending invitations")
    def revoke_invitations(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        revoked = 0
        for invitation in queryset.filter(status=InvitationStatus.PENDING):
            invitation_revoke(invitation=invitation, actor=request.user, by_staff=True)  # type: ignore[arg-type]
            revoked += 1
        self.message_user(request, f"Revoked {revoked} invitation(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_email", "action", "target_repr", "ip_address"]
    list_filter = ["action"]
    search_fields = ["actor_email", "organization__name", "organization__slug", "target_repr", "action"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AdminKey)
class AdminKeyAdmin(admin.ModelAdmin):
    """Support can see and revoke organization admin keys; only Owners and Admins create them (shown once, to them)."""

    list_display = ["name", "display_prefix", "organization", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "=prefix", "organization__name", "organization__slug"]
    list_select_related = ["organization", "created_by"]
    readonly_fields = [
        "name",
        "display_prefix",
        "organization",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AdminKey]) -> None:
        revoked = 0
        for admin_key in queryset.filter(revoked_at__isnull=True):
            admin_key_revoke(admin_key=admin_key, actor=request.user, by_staff=True)  # type: ignore[arg-type]
            revoked += 1
        messages.success(request, f"Revoked {revoked} key(s).")
