from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from orgs.forms import OrganizationCreateForm
from orgs.selectors import memberships_for_menu
from orgs.services import organization_create
from qolaba.access import (
    SESSION_ORGANIZATION,
    AuthenticatedRequest,
    TenantRequest,
    organization_view,
    remembered_organization,
    remembered_workspace,
)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send people where they left off: their organization and workspace, or to create one."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    organization = remembered_organization(request)
    if organization is None:
        return redirect("orgs:create")
    return redirect("orgs:open", org_slug=organization.slug)


@require_GET
@login_required
def organization_list(request: AuthenticatedRequest) -> HttpResponse:
    context = {
        "memberships": memberships_for_menu(user=request.user),
        "current_organization_id": request.session.get(SESSION_ORGANIZATION),
    }
    if request.htmx and request.htmx.target == "organization-menu":
        return render(request, "orgs/list.html#organization-menu", context)
    return render(request, "orgs/list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def organization_create_view(request: AuthenticatedRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = organization_create(
                name=form.cleaned_data["name"], owner=request.user, timezone=form.cleaned_data["timezone"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{organization.name} is ready. This is its Primary Workspace.")
            return redirect("orgs:open", org_slug=organization.slug)
    has_organizations = memberships_for_menu(user=request.user).exists()
    return render(request, "orgs/create.html", {"form": form, "has_organizations": has_organizations})


@require_GET
@organization_view()
def organization_open(request: TenantRequest, org_slug: str) -> HttpResponse:
    """Switching organization lands here: open the remembered (or first reachable) workspace."""
    organization = request.tenant.organization
    workspace = remembered_workspace(request, organization)
    if workspace is None:
        return render(request, "orgs/no_workspace.html", status=200)
    return redirect("workspaces:overview", org_slug=organization.slug, ws_slug=workspace.slug)
