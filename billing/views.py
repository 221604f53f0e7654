from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.documents import invoice_document
from billing.forms import CreditModeForm, LimitForm, PackPurchaseForm, SubscribeForm, TransferForm
from billing.ledger import LedgerError
from billing.models import Invoice, InvoiceStatus
from billing.selectors import (
    billing_summary,
    member_limits,
    plan_change,
    plans_on_offer,
    spending_this_month,
    workspace_balances,
)
from billing.services import (
    credit_mode_switch,
    credits_buy,
    credits_transfer,
    plan_subscribe,
    subscription_cancel,
    subscription_resume,
    workspace_limit_set,
)
from orgs.models import CreditMode, Membership, OrganizationRole
from qolaba.access import TenantRequest, WorkspaceRequest, organization_view, workspace_view
from qolaba.htmx import dialog_done, refusal_status, render_page
from qolaba.views import confirmed_action, form_add_service_errors, immediate_action
from usage.forecast import limit_forecasts, pool_forecast
from workspaces.selectors import workspace_spenders


@require_GET
@organization_view("manage_billing")
def billing_page(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    pool = pool_forecast(organization=organization)
    context = {
        "summary": billing_summary(organization=organization),
        "forecasts": [pool] if pool is not None else [],
        "subscribe_form": SubscribeForm(),
        "pack_form": PackPurchaseForm(),
    }
    return render(request, "billing/billing.html", context)


def _invoice_message(request: TenantRequest, invoice: Any, what: str) -> None:
    if invoice.status == InvoiceStatus.PAID:
        messages.success(request, f"{what}: {invoice.credits:,} credits were added to the Primary Workspace.")
    else:
        messages.success(
            request, f"{what}: invoice {invoice.number} ({invoice.amount}) is open; the credits arrive when it is paid."
        )


def _checkout(
    request: TenantRequest,
    *,
    form_class: type[SubscribeForm | PackPurchaseForm],
    open_invoice: Callable[..., Any],
    describe: Callable[[Any], str],
    success_url: str,
    template_name: str,
) -> HttpResponse:
    """Buying from the catalogue (a monthly plan or a credit pack): choose it and a gateway, and its invoice opens."""
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        plan = form.cleaned_data["plan"]
        try:
            invoice = open_invoice(
                organization=request.tenant.organization,
                plan=plan,
                actor=request.user,
                gateway_code=form.cleaned_data["gateway"],
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            _invoice_message(request, invoice, describe(plan))
            return redirect(success_url)
    return render(request, template_name, {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@organization_view("manage_billing")
def plan_subscribe_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    """Subscribe to, or switch to, a monthly plan: GET `?plan=` asks for confirmation (a dialog, or the page without
    JavaScript) saying what happens; only the confirmation's POST (`confirm=yes`) changes anything."""
    organization = request.tenant.organization
    page = reverse("billing:page", kwargs={"org_slug": org_slug})
    data: dict[str, Any] | None = None
    if request.method == "POST":
        data = request.POST.dict()
    elif "plan" in request.GET:
        data = {"plan": request.GET["plan"], "gateway": SubscribeForm().fields["gateway"].initial}
    form = SubscribeForm(data)
    change = None
    if form.is_bound and form.is_valid():
        change = plan_change(organization=organization, plan=form.cleaned_data["plan"])
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                invoice = plan_subscribe(
                    organization=organization,
                    plan=change.plan,
                    actor=request.user,
                    gateway_code=form.cleaned_data["gateway"],
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                _invoice_message(request, invoice, f"{change.plan.name} plan")
                return redirect(page)
    context = {"form": form, "change": change, "plans": plans_on_offer(), "cancel_url": page}
    status = 400 if form.errors else 200
    return render_page(request, "billing/subscribe.html", context, partials={"dialog-body"}, status=status)


@require_GET
@organization_view("manage_billing")
def invoice_pdf(request: TenantRequest, org_slug: str, number: str) -> HttpResponse:
    """An invoice of the organization as a PDF (404 for anything else)."""
    organization = request.tenant.organization
    invoice = get_object_or_404(Invoice.objects.select_related("plan"), organization=organization, number=number)
    response = HttpResponse(invoice_document(invoice, organization), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="invoice-{invoice.number}.pdf"'
    return response


@require_http_methods(["GET", "POST"])
@organization_view("manage_credits")
def credits_buy_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    # A purchase may lead back to the page it was made from, never to another site.
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = reverse("billing:page", kwargs={"org_slug": org_slug})
    return _checkout(
        request,
        form_class=PackPurchaseForm,
        open_invoice=credits_buy,
        describe=lambda plan: plan.name,
        success_url=next_url,
        template_name="billing/buy.html",
    )


@require_http_methods(["GET", "POST"])
@organization_view("manage_billing")
def subscription_cancel_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    page = reverse("billing:page", kwargs={"org_slug": org_slug})
    return confirmed_action(
        request,
        run=lambda: subscription_cancel(organization=request.tenant.organization, actor=request.user),
        success_message="Your plan ends at the end of this period. Your credits stay.",
        success_url=page,
        confirmation={
            "title": "Cancel the subscription?",
            "body": "It stays active until the end of the current period, and no further renewals are charged. "
            "Credits you have stay usable.",
            "confirm_label": "Cancel at period end",
            "cancel_url": page,
        },
    )


@require_POST
@organization_view("manage_billing")
def subscription_resume_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    return immediate_action(
        request,
        run=lambda: subscription_resume(organization=request.tenant.organization, actor=request.user),
        success_message="Your subscription will renew as usual.",
        success_url=reverse("billing:page", kwargs={"org_slug": org_slug}),
    )


@require_http_methods(["GET", "POST"])
@organization_view("manage_credits")
def credit_mode_switch_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    form = CreditModeForm(request.POST or None, initial={"mode": organization.credit_mode})
    if request.method == "POST" and form.is_valid():
        try:
            credit_mode_switch(organization=organization, mode=form.cleaned_data["mode"], actor=request.user)
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            label = CreditMode(form.cleaned_data["mode"]).label
            messages.success(request, f"Credit mode is now: {label}.")
            return redirect("workspaces:list", org_slug=org_slug)
    return render(request, "billing/credit_mode.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@organization_view("manage_credits")
def credits_transfer_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    """Manage credits (budget mode): pick source, target and amount, preview the balances, transfer."""
    organization = request.tenant.organization
    data = request.POST if request.method == "POST" else (request.GET if "amount" in request.GET else None)
    form = TransferForm(data, organization=organization, initial={"source": request.GET.get("source")})
    balances = workspace_balances(organization=organization)
    preview = None
    if form.is_bound and form.is_valid():
        source, target, amount = (form.cleaned_data[k] for k in ("source", "target", "amount"))
        if amount > balances.get(source.pk, 0):
            form.add_error("amount", f"{source.name} has only {balances.get(source.pk, 0):,} credits.")
        elif request.method == "POST":
            try:
                credits_transfer(
                    organization=organization, source=source, target=target, amount=amount, actor=request.user
                )
            except (LedgerError, ValidationError) as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, f"Moved {amount:,} credits from {source.name} to {target.name}.")
                return dialog_done(request, reverse("workspaces:list", kwargs={"org_slug": org_slug}))
        else:
            preview = {
                "source": source,
                "target": target,
                "source_after": balances.get(source.pk, 0) - amount,
                "target_after": balances.get(target.pk, 0) + amount,
            }
    context = {
        "form": form,
        "preview": preview,
        "workspace_options": [(ws, balances.get(ws.pk, 0)) for ws in form.fields["source"].queryset],  # type: ignore[attr-defined]
        "budget_mode": organization.credit_mode == CreditMode.BUDGET,
        "posted": request.method == "POST",
    }
    status = refusal_status(request) if form.errors and request.method == "POST" else 200
    partials = {"transfer-preview", "dialog-body"}
    return render_page(request, "billing/transfer.html", context, partials=partials, status=status)


@require_http_methods(["GET", "POST"])
@workspace_view("manage_credits")
def workspace_limit_set_view(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    """Monthly limits of the workspace (shared mode) and of each member in it."""
    workspace = request.tenant.workspace
    spenders = workspace_spenders(workspace=workspace)
    members = list(
        Membership.objects.active()
        .filter(organization=request.tenant.organization, user__in=spenders)
        .select_related("user")
        .order_by("-role", "user__email")
    )
    if request.method == "POST":
        target_id = request.POST.get("member") or None
        form = LimitForm(request.POST)
        member = None
        if target_id is not None:
            member = get_object_or_404(
                Membership.objects.active().select_related("user"),
                pk=target_id if str(target_id).isdigit() else 0,
                organization=request.tenant.organization,
                user__in=spenders,
            ).user
        if form.is_valid():
            try:
                workspace_limit_set(
                    workspace=workspace,
                    user=member,
                    monthly_limit=form.cleaned_data["monthly_limit"],
                    actor=request.user,
                )
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                who = member.email if member else workspace.name
                messages.success(request, f"Monthly limit of {who} saved.")
                return redirect("billing:workspace_limit_set", org_slug=org_slug, ws_slug=ws_slug)
        else:
            messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    limits = member_limits(workspace=workspace)
    spent = spending_this_month(workspace=workspace, organization=request.tenant.organization)
    forecasts = limit_forecasts(
        organization=request.tenant.organization,
        workspace=workspace,
        limits=limits,
        spent=spent,
        emails={m.user_id: m.user.email for m in members},
    )
    rows = [
        {
            "membership": m,
            "limit": limits.get(m.user_id),
            "spent": spent.get(m.user_id, 0),
            "is_admin": m.role >= OrganizationRole.ADMIN,
        }
        for m in members
    ]
    context = {
        "rows": rows,
        "workspace_limit": limits.get(None),
        "workspace_spent": spent.get(None, 0),
        "shared_mode": request.tenant.organization.credit_mode == CreditMode.SHARED,
        "workspace_forecast": forecasts.get(None),
        "forecasts": [forecasts[m.user_id] for m in members if m.user_id in forecasts],
    }
    return render(request, "billing/limits.html", context)
