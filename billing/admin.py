"""Staff tools: read the ledger, edit the catalog, mark invoices paid, grant or refund credits with a reason.

Every write here goes through billing.services, like the app's own writes.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.ledger import LedgerError
from billing.models import (
    Account,
    Hold,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    LedgerTransaction,
    PackLot,
    Plan,
    Subscription,
    TransactionKind,
)
from billing.services import credits_grant_by_staff, credits_refund_by_staff, invoice_mark_paid, invoice_void
from orgs.models import Organization
from qolaba.views import form_add_service_errors


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "organization", "kind", "live_balance", "stripes"]
    list_filter = ["kind"]
    search_fields = ["organization__name", "organization__slug", "workspace__name"]
    list_select_related = ["organization", "workspace"]

    @admin.display(description="Balance", ordering="balance")
    def live_balance(self, obj: Account) -> int:
        return obj.balance  # type: ignore[attr-defined]


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ["from_account", "to_account", "amount"]
    readonly_fields = ["from_account", "to_account", "amount"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GrantForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.alive())
    amount = forms.IntegerField(min_value=1, max_value=10**12, label="Credits")
    reason = forms.CharField(max_length=200, help_text="Shown in the ledger and the organization's audit log.")


class RefundForm(forms.Form):
    amount = forms.IntegerField(min_value=1, max_value=10**12, label="Credits to give back")
    reason = forms.CharField(max_length=200)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organization", "kind", "amount", "workspace", "actor", "memo", "refund_link"]
    list_filter = ["kind"]
    search_fields = ["organization__name", "organization__slug", "idempotency_key", "memo", "actor__email"]
    list_select_related = ["organization", "workspace", "actor"]
    inlines = [LedgerEntryInline]
    date_hierarchy = "created_at"
    change_list_template = "admin/billing/ledgertransaction/change_list.html"

    @admin.display(description="Refund")
    def refund_link(self, obj: LedgerTransaction) -> str:
        if obj.kind not in (TransactionKind.CHARGE, TransactionKind.CAPTURE):
            return ""
        return format_html('<a href="{}">Refund…</a>', reverse("admin:billing_refund", args=[obj.pk]))

    def get_urls(self) -> list[Any]:
        return [
            path("grant/", self.admin_site.admin_view(self.grant_view), name="billing_grant"),
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="billing_refund"),
            *super().get_urls(),
        ]

    def _form_page(self, request: HttpRequest, form: forms.Form, title: str) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "form": form, "title": title, "opts": self.model._meta}
        return TemplateResponse(request, "admin/billing/staff_form.html", context)

    def grant_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("billing.add_ledgertransaction"):
            messages.error(request, "You may not grant credits.")
            return HttpResponseRedirect(reverse("admin:billing_ledgertransaction_changelist"))
        form = GrantForm(request.POST or None, initial={"organization": request.GET.get("organization")})
        if request.method == "POST" and form.is_valid():
            try:
                credits_grant_by_staff(
                    organization=form.cleaned_data["organization"],
                    amount=form.cleaned_data["amount"],
                    actor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                )
            except (ValidationError, LedgerError) as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, f"Granted {form.cleaned_data['amount']:,} credits.")
                return HttpResponseRedirect(reverse("admin:billing_ledgertransaction_changelist"))
        return self._form_page(request, form, "Grant credits")

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("billing.add_ledgertransaction"):
            messages.error(request, "You may not refund credits.")
            return HttpResponseRedirect(reverse("admin:billing_ledgertransaction_changelist"))
        original = get_object_or_404(LedgerTransaction, pk=pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                credits_refund_by_staff(
                    original=original,
                    amount=form.cleaned_data["amount"],
                    actor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                )
            except (ValidationError, LedgerError) as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, f"Refunded {form.cleaned_data['amount']:,} credits.")
                return HttpResponseRedirect(reverse("admin:billing_ledgertransaction_changelist"))
        return self._form_page(request, form, f"Refund {original}")


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "organization",
        "workspace",
        "user",
        "amount",
        "captured_amount",
        "status",
        "expires_at",
    ]
    list_filter = ["status"]
    search_fields = ["organization__name", "workspace__name", "user__email"]
    list_select_related = ["organization", "workspace", "user"]


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "kind", "credits", "price", "validity_months", "is_active", "sort_order"]
    list_filter = ["kind", "is_active"]
    list_editable = ["is_active", "sort_order"]
    search_fields = ["name", "code"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # invoices refer to plans; retire a plan by unticking "active"


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["organization", "plan", "status", "current_period_end", "cancel_at_period_end"]
    list_filter = ["status", "plan"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization", "plan"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "organization", "purpose", "plan", "credits", "amount", "gateway", "status", "created_at"]
    list_filter = ["status", "purpose", "gateway"]
    search_fields = ["number", "organization__name", "organization__slug"]
    list_select_related = ["organization", "plan"]
    actions = ["mark_paid", "void"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("billing.change_invoice")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Invoice._meta.fields]

    @admin.action(description="Mark the selected invoices paid (grants their credits)", permissions=["change"])
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        paid = 0
        for invoice in queryset.filter(status=InvoiceStatus.OPEN):
            invoice_mark_paid(invoice=invoice, actor=request.user)  # type: ignore[arg-type]
            paid += 1
        self.message_user(request, f"{paid} invoice(s) marked paid; their credits were granted.")

    @admin.action(description="Void the selected open invoices", permissions=["change"])
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        voided = 0
        for invoice in queryset.filter(status=InvoiceStatus.OPEN):
            invoice_void(invoice=invoice, actor=request.user)  # type: ignore[arg-type]
            voided += 1
        self.message_user(request, f"{voided} invoice(s) voided.")


@admin.register(PackLot)
class PackLotAdmin(ReadOnlyAdmin):
    list_display = ["organization", "credits", "granted_at", "expires_at", "expired_at", "banked"]
    list_select_related = ["organization"]
