"""Staff tools: edit the price list (and which provider runs each model in the Studio); read usage events (they
are written only by the metering services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from usage.models import Price, UsageEvent


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = [
        "tool",
        "model",
        "unit",
        "credits_per_unit",
        "provider",
        "provider_model",
        "is_active",
        "updated_at",
    ]
    list_editable = ["credits_per_unit", "is_active"]
    list_filter = ["tool", "is_active", "provider"]
    search_fields = ["model", "description"]
    ordering = ["tool", "model"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Past usage names its model; retire a price by making it inactive instead.
        return False


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "workspace", "user", "tool", "model", "units", "credits", "status"]
    list_filter = ["status", "tool"]
    search_fields = ["idempotency_key", "=organization__slug", "=user__email"]
    list_select_related = ["organization", "workspace", "user"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting tens of millions of rows on every page is not affordable

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in UsageEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
