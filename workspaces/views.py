from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.timezone import now
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.selectors import credits_overview
from orgs.models import User
from qolaba.access import TenantRequest, WorkspaceRequest, organization_view, workspace_view
from qolaba.views import confirmed_action, form_add_service_errors
from workspaces.forms import WorkspaceForm, WorkspaceMemberForm
from workspaces.models import Workspace
from workspaces.selectors import (
    archived_workspaces,
    workspace_overview_figures,
    workspace_people,
    workspaces_for_management,
    workspaces_for_switcher,
)
from workspaces.services import (
    workspace_archive,
    workspace_create,
    workspace_membership_remove,
    workspace_membership_set,
    workspace_restore,
    workspace_restore_deadline,
    workspace_update,
)


@require_GET
@organization_view()
def workspace_list(request: TenantRequest, org_slug: str) -> HttpResponse:
    """The switcher's list (all roles); Owners/Admins get the management table of the Workspaces tab."""
    organization = request.tenant.organization
    context: dict[str, Any]
    if request.htmx and request.htmx.target == "workspace-menu":
        context = {"workspaces": workspaces_for_switcher(user=request.user, organization=organization)}
        return render(request, "workspaces/list.html#workspace-menu", context)
    if request.tenant.can("manage_workspaces"):
        archived = [(ws, workspace_restore_deadline(ws)) for ws in archived_workspaces(organization=organization)]
        context = {
            "workspaces": workspaces_for_management(organization=organization),
            "archived": archived,
            "now": now(),
        }
    else:
        context = {"workspaces": workspaces_for_switcher(user=request.user, organization=organization)}
    return render(request, "workspaces/list.html", context)


@require_http_methods(["GET", "POST"])
@organization_view("manage_workspaces")
def workspace_create_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = workspace_create(
                organization=request.tenant.organization,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                created_by=request.user,
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, f"Workspace “{workspace.name}” created. Add its members below.")
            return redirect("workspaces:settings", org_slug=org_slug, ws_slug=workspace.slug)
    return render(request, "workspaces/create.html", {"form": form}, status=400 if form.errors else 200)


@require_GET
@workspace_view()
def workspace_overview(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    tenant = request.tenant
    figures = workspace_overview_figures(user=request.user, workspace=tenant.workspace)
    credits = credits_overview(workspace=tenant.workspace, organization=tenant.organization, user=request.user)
    return render(request, "workspaces/overview.html", {"figures": figures, "credits": credits})


def _settings_page(
    request: WorkspaceRequest,
    form: WorkspaceForm | None = None,
    member_form: WorkspaceMemberForm | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = request.tenant.workspace
    context = {
        "form": form or WorkspaceForm(initial={"name": workspace.name, "description": workspace.description}),
        "member_form": member_form or WorkspaceMemberForm(workspace=workspace),
        "people": workspace_people(workspace=workspace),
    }
    return render(request, "workspaces/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
@workspace_view("manage_workspace")
def workspace_settings(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    if request.method != "POST":
        return _settings_page(request)
    form = WorkspaceForm(request.POST)
    if form.is_valid():
        try:
            workspace_update(
                workspace=request.tenant.workspace,
                actor=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, "Workspace saved.")
            return redirect("workspaces:settings", org_slug=org_slug, ws_slug=ws_slug)
    return _settings_page(request, form=form, status=400)


@require_POST
@workspace_view("manage_workspace")
def workspace_member_set(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    workspace = request.tenant.workspace
    form = WorkspaceMemberForm(request.POST, workspace=workspace)
    if form.is_valid():
        member = form.cleaned_data["member"]
        try:
            workspace_membership_set(
                workspace=workspace, user=member.user, role=form.cleaned_data["role"], actor=request.user
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, f"{member.user.email} is now {form.cleaned_data['role']} of {workspace.name}.")
            return redirect("workspaces:settings", org_slug=org_slug, ws_slug=ws_slug)
    return _settings_page(request, member_form=form, status=400)


@require_POST
@workspace_view("manage_workspace")
def workspace_member_remove(request: WorkspaceRequest, org_slug: str, ws_slug: str, user_id: int) -> HttpResponse:
    workspace = request.tenant.workspace
    user = get_object_or_404(User, pk=user_id, workspace_memberships__workspace=workspace)
    try:
        workspace_membership_remove(workspace=workspace, user=user, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{user.email} no longer has access to {workspace.name}.")
    return redirect("workspaces:settings", org_slug=org_slug, ws_slug=ws_slug)


@require_http_methods(["GET", "POST"])
@workspace_view("manage_workspaces")
def workspace_delete(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    workspace = request.tenant.workspace
    list_url = reverse("workspaces:list", kwargs={"org_slug": org_slug})
    return confirmed_action(
        request,
        run=lambda: workspace_archive(workspace=workspace, actor=request.user),
        success_message=f"Workspace “{workspace.name}” deleted. You can restore it from this list.",
        success_url=list_url,
        confirmation={
            "title": f"Delete the workspace “{workspace.name}”?",
            "body": "Its members lose access and no more credits can be spent in it. Its history and usage stay "
            "for reports, and you can restore it within the retention window.",
            "confirm_label": "Delete workspace",
            "cancel_url": list_url,
        },
    )


@require_POST
@organization_view("manage_workspaces")
def workspace_restore_view(request: TenantRequest, org_slug: str, workspace_id: int) -> HttpResponse:
    workspace = get_object_or_404(
        Workspace, pk=workspace_id, organization=request.tenant.organization, archived_at__isnull=False
    )
    try:
        workspace_restore(workspace=workspace, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Workspace “{workspace.name}” restored with its members.")
    return redirect("workspaces:list", org_slug=org_slug)
