"""The Usage tab, and the client statements of a workspace: the list (closed ones and drafts), one statement, and
its CSV and PDF.

The Usage tab is open to every member of the organization (`organization_view("view_organization")`): what each
sees is narrowed inside, by `usage.dashboard` (the whole organization, the workspaces they administer, or their own
usage). The statement views resolve the workspace through `workspace_view("view_workspace_usage")`: Owners, Admins
and the workspace's admins; anyone else (members, viewers, strangers) gets a 404.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.timezone import now
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from qolaba.access import TenantRequest, WorkspaceRequest, organization_view, workspace_view
from qolaba.htmx import htmx_partial, render_page
from usage.dashboard import usage_dashboard
from usage.documents import statement_csv as render_csv
from usage.documents import statement_pdf as render_pdf
from usage.statements import (
    StatementFigures,
    client_rate_of,
    draft_months,
    month_of,
    statement_compute,
    statement_figures,
    statement_find,
    statement_month_is_open,
    workspace_statements,
)

# The page's panels: the whole report (filters, notices and panels: what a change of filter refreshes) and each panel.
USAGE_PARTIALS = frozenset({"usage-report", "usage-totals", "usage-chart", "usage-breakdowns"})


@require_GET
@organization_view("view_organization")
def usage_page(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    dashboard = usage_dashboard(user=request.user, organization=organization, params=request.GET)
    page_url = reverse("usage:dashboard", kwargs={"org_slug": organization.slug})
    context = {"dashboard": dashboard, "page_url": page_url}
    response = render_page(request, "usage/usage.html", context, partials=USAGE_PARTIALS)
    if htmx_partial(request, USAGE_PARTIALS) == "usage-report" and not dashboard.problems:
        # The address bar gets the view's canonical URL (what a link to it would be), not the form's raw fields.
        push_url(response, f"{page_url}?{dashboard.querystring}")
    return response


def _figures_or_404(request: WorkspaceRequest, period: date) -> StatementFigures:
    """The closed statement of the month, else its live draft; a month outside the workspace's life is not found."""
    workspace = request.tenant.workspace
    closed = statement_find(workspace=workspace, period_start=period)
    if closed is not None:
        return statement_figures(closed)
    if not statement_month_is_open(workspace=workspace, period_start=period):
        raise Http404
    return statement_compute(workspace=workspace, period_start=period, as_of=now(), rate=client_rate_of(workspace))


@require_GET
@workspace_view("view_workspace_usage")
def statement_list(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    workspace = request.tenant.workspace
    closed = workspace_statements(workspace=workspace)
    rate = client_rate_of(workspace)
    at = now()
    drafts = [
        statement_compute(workspace=workspace, period_start=month, as_of=at, rate=rate)
        for month in draft_months(workspace=workspace, latest_closed=closed[0].period_start if closed else None, at=at)
    ]
    current = month_of(request.tenant.organization, at)
    context: dict[str, Any] = {
        "closed": closed,
        "drafts": drafts,
        "current": next((draft for draft in drafts if draft.period_start == current), None),
        "rate": rate,
    }
    return render(request, "usage/statements.html", context)


@require_GET
@workspace_view("view_workspace_usage")
def statement_detail(request: WorkspaceRequest, org_slug: str, ws_slug: str, period: date) -> HttpResponse:
    figures = _figures_or_404(request, period)
    return render(request, "usage/statement.html", {"statement": figures, "period": period})


def _download(content: str | bytes, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response


def _filename(request: WorkspaceRequest, figures: StatementFigures, extension: str) -> str:
    if figures.number:
        return f"statement-{figures.number}.{extension}"
    tenant = request.tenant
    return f"statement-{tenant.organization.slug}-{tenant.workspace.slug}-{figures.slug}.{extension}"


@require_GET
@workspace_view("view_workspace_usage")
def statement_csv(request: WorkspaceRequest, org_slug: str, ws_slug: str, period: date) -> HttpResponse:
    figures = _figures_or_404(request, period)
    return _download(
        render_csv(figures), content_type="text/csv; charset=utf-8", filename=_filename(request, figures, "csv")
    )


@require_GET
@workspace_view("view_workspace_usage")
def statement_pdf(request: WorkspaceRequest, org_slug: str, ws_slug: str, period: date) -> HttpResponse:
    figures = _figures_or_404(request, period)
    return _download(render_pdf(figures), content_type="application/pdf", filename=_filename(request, figures, "pdf"))
