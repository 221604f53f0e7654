"""The Usage tab; client statements of a workspace: the list (closed ones and drafts), one statement, and its CSV and
PDF; usage exports: the CSV of a Usage tab filter, and the background exports of large ones.

The Usage tab is open to every member of the organization (`organization_view("view_organization")`): what each
sees is narrowed inside, by `usage.dashboard` (the whole organization, the workspaces they administer, or their own
usage). Every statement view resolves the workspace through `workspace_view("view_workspace_usage")`: Owners,
Admins and the workspace's admins; anyone else (members, viewers, strangers) gets a 404. Every member may export
usage, each within what they may see (`usage.reports.usage_scope_for`); a background export is only ever shown to
its requester.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.timezone import now
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from orgs.models import Organization
from qolaba.access import TenantRequest, WorkspaceRequest, organization_view, workspace_view
from qolaba.htmx import htmx_partial, render_page
from usage.dashboard import usage_dashboard
from usage.documents import statement_csv as render_csv
from usage.documents import statement_pdf as render_pdf
from usage.exports import (
    usage_export_count,
    usage_export_create,
    usage_export_events,
    usage_export_filename,
    usage_export_lines,
    usage_export_query,
    usage_exports_recent,
)
from usage.models import UsageExport, UsageExportStatus
from usage.reports import RANGE_LABELS, UsageQuery, usage_query_parse, usage_scope_for
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
from workspaces.selectors import workspaces_with_usage_view

# The page's panels: the whole report (filters, notices and panels: what a change of filter refreshes) and each panel.
USAGE_PARTIALS = frozenset({"usage-report", "usage-totals", "usage-chart", "usage-breakdowns"})


@require_GET
@organization_view("view_organization")
def usage_page(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    dashboard = usage_dashboard(user=request.user, organization=organization, params=request.GET)
    page_url = reverse("usage:dashboard", kwargs={"org_slug": organization.slug})
    context: dict[str, Any] = {"dashboard": dashboard, "page_url": page_url}
    if htmx_partial(request, USAGE_PARTIALS) is None:  # the whole page: with the client statements it links to
        context["statement_workspaces"] = list(
            workspaces_with_usage_view(user=request.user, organization=organization).only("name", "slug")
        )
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


# --- usage exports ---------------------------------------------------------------------------------------------


def _local_today(organization: Organization) -> date:
    return now().astimezone(ZoneInfo(organization.timezone)).date()


def _hidden_fields(query: UsageQuery) -> list[tuple[str, str]]:
    """The query's URL parameters as (name, value) pairs, for hidden inputs."""
    pairs: list[tuple[str, str]] = []
    for name, value in query.params().items():
        pairs.extend((name, str(item)) for item in (value if isinstance(value, list) else [value]))
    return pairs


@require_GET
@organization_view()
def usage_export_csv(request: TenantRequest, org_slug: str) -> HttpResponseBase:
    """The CSV of the Usage tab's filter (same parameters), streamed; past `USAGE_EXPORT_SYNC_MAX_ROWS` rows, a page
    that offers to prepare it in the background instead."""
    organization = request.tenant.organization
    parsed = usage_query_parse(request.GET, today=_local_today(organization))
    scope = usage_scope_for(user=request.user, organization=organization)
    events = usage_export_events(organization=organization, query=parsed.query, scope=scope)
    limit = settings.USAGE_EXPORT_SYNC_MAX_ROWS
    if usage_export_count(events, limit=limit) > limit:
        context = {
            "query": parsed.query,
            "problems": parsed.problems,
            "limit": limit,
            "fields": _hidden_fields(parsed.query),
            "own_usage_only": scope.own_usage_only,
            "ttl_hours": settings.USAGE_EXPORT_TTL_HOURS,
        }
        return render(request, "usage/export_large.html", context)
    response = StreamingHttpResponse(
        usage_export_lines(events, organization=organization), content_type="text/csv; charset=utf-8"
    )
    filename = usage_export_filename(organization, parsed.query)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response


@require_POST
@organization_view()
def usage_export_create_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    parsed = usage_query_parse(request.POST, today=_local_today(organization))
    try:
        export = usage_export_create(organization=organization, requester=request.user, query=parsed.query)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("usage:usage_exports", org_slug=organization.slug)
    return redirect("usage:usage_export", org_slug=organization.slug, export_id=export.pk)


@require_GET
@organization_view()
def usage_exports(request: TenantRequest, org_slug: str) -> HttpResponse:
    """The user's recent exports, and a form to export a period."""
    organization = request.tenant.organization
    context = {
        "recent": usage_exports_recent(user=request.user, organization=organization, limit=20),
        "ranges": list(RANGE_LABELS.items()),
        "today": _local_today(organization),
        "own_usage_only": usage_scope_for(user=request.user, organization=organization).own_usage_only,
        "limit": settings.USAGE_EXPORT_SYNC_MAX_ROWS,
        "ttl_hours": settings.USAGE_EXPORT_TTL_HOURS,
    }
    return render(request, "usage/exports.html", context)


def _export_or_404(request: TenantRequest, export_id: int) -> UsageExport:
    """The export, if the user asked for it: nobody else sees it, Owners included."""
    export = (
        UsageExport.objects.of_requester(user=request.user, organization=request.tenant.organization)
        .filter(pk=export_id)
        .first()
    )
    if export is None:
        raise Http404
    return export


def _export_page(request: TenantRequest, export: UsageExport, *, status: int = 200) -> HttpResponse:
    query = usage_export_query(export)
    context = {
        "export": export,
        "query": query,
        "fields": _hidden_fields(query),
        "expired": export.is_expired,
        "in_progress": export.status in (UsageExportStatus.QUEUED, UsageExportStatus.RUNNING),
        "recent": usage_exports_recent(user=request.user, organization=request.tenant.organization, exclude=export),
        "limit": settings.USAGE_EXPORT_SYNC_MAX_ROWS,
        "ttl_hours": settings.USAGE_EXPORT_TTL_HOURS,
    }
    return render_page(request, "usage/export.html", context, partials={"export-status"}, status=status)


@require_GET
@organization_view()
def usage_export_detail(request: TenantRequest, org_slug: str, export_id: int) -> HttpResponse:
    """A background export's progress (htmx polls the status every second while it runs) and its download."""
    response = _export_page(request, _export_or_404(request, export_id))
    patch_cache_control(response, private=True, no_store=True)
    return response


@require_GET
@organization_view()
def usage_export_download(request: TenantRequest, org_slug: str, export_id: int) -> HttpResponseBase:
    """The prepared file, to its requester only, until it expires (then 410 with the export's page)."""
    export = _export_or_404(request, export_id)
    if export.status != UsageExportStatus.DONE:
        raise Http404
    if export.is_expired:
        return _export_page(request, export, status=410)
    try:
        handle = export.file.open("rb")
    except FileNotFoundError as missing:
        raise Http404 from missing
    filename = usage_export_filename(request.tenant.organization, usage_export_query(export))
    response = FileResponse(handle, content_type="text/csv; charset=utf-8", as_attachment=True, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, no_store=True)
    return response
