from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from qolaba.access import TenantRequest, WorkspaceRequest, organization_view, workspace_view
from workspaces.selectors import workspace_overview_figures, workspaces_for_switcher


@require_GET
@organization_view()
def workspace_list(request: TenantRequest, org_slug: str) -> HttpResponse:
    context = {"workspaces": workspaces_for_switcher(user=request.user, organization=request.tenant.organization)}
    if request.htmx and request.htmx.target == "workspace-menu":
        return render(request, "workspaces/list.html#workspace-menu", context)
    return render(request, "workspaces/list.html", context)


@require_GET
@workspace_view()
def workspace_overview(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    figures = workspace_overview_figures(user=request.user, workspace=request.tenant.workspace)
    return render(request, "workspaces/overview.html", {"figures": figures})
