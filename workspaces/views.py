from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.timezone import now
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.selectors import credits_overview, workspaces_for_management
from orgs.models import User
from qolaba.access import TenantRequest, WorkspaceRequest, organization_view, workspace_view
from qolaba.htmx import htmx_partial, render_page
from qolaba.lifecycle import workspace_archive, workspace_create, workspace_restore
from qolaba.views import (
    confirmed_action,
    form_add_service_errors,
    immediate_action,
    usage_column_headers,
    usage_columns_params,
    usage_period_param,
)
from usage.columns import (
    ColumnsPeriodChoice,
    GroupCredits,
    TrendDay,
    allocation_uses,
    columns_sorted,
    usage_columns_by_workspace,
    workspace_usage_overview,
)
from usage.forecast import budget_forecasts, pool_forecast
from usage.selectors import price_list
from usage.statements import client_rate_of, client_rate_set
from usage.studio.models import MEDIA_TOOLS
from workspaces.forms import ApiKeyForm, ClientRateForm, HistoryFilterForm, WorkspaceForm, WorkspaceMemberForm
from workspaces.models import ApiKey, HistoryItem, Workspace, history_storage
from workspaces.selectors import (
    archived_workspaces,
    history_authors,
    history_item_can_delete,
    history_items,
    history_totals,
    user_can_open_workspace,
    workspace_api_keys,
    workspace_ids_with_usage_view,
    workspace_overview_figures,
    workspace_people,
    workspace_restore_deadline,
    workspaces_for_switcher,
)
from workspaces.services import (
    api_key_create,
    api_key_revoke,
    history_item_delete,
    workspace_member_remove,
    workspace_member_set,
    workspace_update,
)


@require_GET
@organization_view()
def workspace_list(request: TenantRequest, org_slug: str) -> HttpResponse:
    """The switcher's list (all roles); Owners/Admins get the management table of the Workspaces tab. Credit columns
    show the workspaces whose usage the user may see (Owners/Admins: all; a workspace admin: theirs; else none)."""
    organization = request.tenant.organization
    partials = {"workspace-menu", "workspaces-table"}
    target = htmx_partial(request, partials)
    # The menu is the switcher's list for everyone: the management table is not worth its queries there.
    if target == "workspace-menu":
        menu = {"workspaces": workspaces_for_switcher(user=request.user, organization=organization)}
        return render_page(request, "workspaces/list.html", menu, partials=partials)
    manage = request.tenant.can("manage_workspaces")
    context: dict[str, Any] = {"manage": manage}
    if manage:
        workspaces = list(workspaces_for_management(organization=organization))
        visible = {ws.pk for ws in workspaces}
        if target is None:
            context["archived"] = [
                (ws, workspace_restore_deadline(ws)) for ws in archived_workspaces(organization=organization)
            ]
            context["now"] = now()
            # The forecasts use the balances the table shows: `workspaces` is read once.
            balances = {ws.pk: ws.balance for ws in workspaces if ws.is_primary}  # type: ignore[attr-defined]
            budgets = budget_forecasts(organization=organization, workspaces=workspaces)
            pool = pool_forecast(organization=organization, balance=next(iter(balances.values()), None))
            context["forecasts"] = [pool] if pool is not None else list(budgets.values())
    else:
        workspaces = list(workspaces_for_switcher(user=request.user, organization=organization))
        visible = workspace_ids_with_usage_view(user=request.user, organization=organization)
    context["workspaces"] = workspaces
    context["rows"] = [(ws, None, None) for ws in workspaces]
    if visible:
        context |= _workspace_usage_context(request, workspaces, visible, manage)
    return render_page(request, "workspaces/list.html", context, partials=partials)


def _workspace_usage_context(
    request: TenantRequest, workspaces: list[Workspace], visible: set[int], manage: bool
) -> dict[str, Any]:
    """The Workspaces tab's credit columns (only the `visible` workspaces' figures), their period, sort and bars."""
    organization = request.tenant.organization
    period, sort = usage_columns_params(request, organization)
    usage = usage_columns_by_workspace(
        organization=organization, period=period, workspace_ids=None if manage else sorted(visible)
    )
    bars = (
        allocation_uses(
            organization=organization,
            columns=usage,
            workspaces=workspaces,
            balances={ws.pk: ws.balance for ws in workspaces},  # type: ignore[attr-defined]  # annotated
        )
        if manage
        else {}
    )
    rows = [(ws, usage.of(ws.pk) if ws.pk in visible else None, bars.get(ws.pk)) for ws in workspaces]
    params = {"period": usage_period_param(period)}
    return {
        "usage": usage,
        "sort": sort,
        "rows": columns_sorted(rows, usage=lambda row: row[1] or GroupCredits(), sort=sort),
        "usage_headers": usage_column_headers(sort=sort, params=params),
        "period_choices": ColumnsPeriodChoice.choices,
        "deleted_usage": usage.others(visible) if manage else None,
    }


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
    # Everyone sees their own usage; the whole workspace's only those who may see everyone's there.
    usage = workspace_usage_overview(
        workspace=tenant.workspace, user=request.user, with_workspace=tenant.can("view_workspace_usage")
    )
    context = {
        "figures": figures,
        "credits": credits,
        "prices": price_list(),
        "usage": usage,
        "trend": _trend_chart(usage.trend),
    }
    return render(request, "workspaces/overview.html", context)


@dataclass(frozen=True)
class _TrendBar:
    day: date
    credits: int
    x: float
    y: float
    height: float


TREND_WIDTH, TREND_HEIGHT, TREND_BAR_SPACING = 300, 80, 0.7


def _trend_chart(days: list[TrendDay]) -> dict[str, Any]:
    """The geometry of the Overview's daily bars (an inline SVG the server draws: no script, no library)."""
    peak = max((day.credits for day in days), default=0)
    slot = TREND_WIDTH / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        height = round((TREND_HEIGHT - 4) * day.credits / peak, 2) if peak else 0
        if day.credits and height < 1:
            height = 1  # a day with any usage stays visible
        bars.append(_TrendBar(day.day, day.credits, round(index * slot, 2), round(TREND_HEIGHT - height, 2), height))
    busiest = max(days, key=lambda day: day.credits) if peak else None
    return {
        "bars": bars,
        "bar_width": round(slot * TREND_BAR_SPACING, 2),
        "width": TREND_WIDTH,
        "height": TREND_HEIGHT,
        "total": sum(day.credits for day in days),
        "busiest": busiest,
        "first_day": days[0].day if days else None,
        "last_day": days[-1].day if days else None,
    }


def _api_keys_context(
    request: WorkspaceRequest, form: ApiKeyForm | None = None, new_key: ApiKey | None = None, new_secret: str = ""
) -> dict[str, Any]:
    active, revoked = workspace_api_keys(workspace=request.tenant.workspace)
    return {
        "api_key_form": form or ApiKeyForm(),
        "api_keys": active,
        "revoked_api_keys": revoked,
        "new_key": new_key,
        "new_secret": new_secret,
    }


def _settings_context(
    request: WorkspaceRequest,
    form: WorkspaceForm | None = None,
    member_form: WorkspaceMemberForm | None = None,
    api_keys: dict[str, Any] | None = None,
    rate_form: ClientRateForm | None = None,
) -> dict[str, Any]:
    workspace = request.tenant.workspace
    context = {
        "form": form or WorkspaceForm(initial={"name": workspace.name, "description": workspace.description}),
        "member_form": member_form or WorkspaceMemberForm(workspace=workspace),
        "people": workspace_people(workspace=workspace),
        **(api_keys or _api_keys_context(request)),
    }
    rate = client_rate_of(workspace)
    context["client_rate"] = rate
    if request.tenant.can("manage_workspaces"):
        initial = {"rate_per_1000": rate.rate_per_1000.normalize(), "currency": rate.currency} if rate else {}
        context["rate_form"] = rate_form or ClientRateForm(initial=initial)
    return context


def _settings_page(
    request: WorkspaceRequest,
    form: WorkspaceForm | None = None,
    member_form: WorkspaceMemberForm | None = None,
    rate_form: ClientRateForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = _settings_context(request, form=form, member_form=member_form, rate_form=rate_form)
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
@workspace_view("manage_workspaces")
def client_rate_set_view(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    """The client rate printed on the workspace's statements: Owners and Admins set it (a commercial term of the
    organization with its client), workspace admins only see it."""
    form = ClientRateForm(request.POST)
    if form.is_valid():
        rate = form.cleaned_data["rate_per_1000"]
        try:
            client_rate_set(
                workspace=request.tenant.workspace,
                rate_per_1000=rate,
                currency=form.cleaned_data["currency"],
                actor=request.user,
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            if rate is None:
                messages.success(request, "Client rate removed: statements print credits only.")
            else:
                messages.success(
                    request,
                    f"Client rate set: {rate.normalize():f} {form.cleaned_data['currency']} per 1,000 credits. "
                    "Closed statements keep the rate they were closed with.",
                )
            return redirect(
                reverse("workspaces:settings", kwargs={"org_slug": org_slug, "ws_slug": ws_slug}) + "#client-rate"
            )
    return _settings_page(request, rate_form=form, status=400)


@require_POST
@workspace_view("manage_workspace")
def workspace_member_set_view(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    workspace = request.tenant.workspace
    form = WorkspaceMemberForm(request.POST, workspace=workspace)
    if form.is_valid():
        member = form.cleaned_data["member"]
        try:
            workspace_member_set(
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
def workspace_member_remove_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, user_id: int) -> HttpResponse:
    workspace = request.tenant.workspace
    user = get_object_or_404(User, pk=user_id, workspace_memberships__workspace=workspace)
    return immediate_action(
        request,
        run=lambda: workspace_member_remove(workspace=workspace, user=user, actor=request.user),
        success_message=f"{user.email} no longer has access to {workspace.name}.",
        success_url=reverse("workspaces:settings", kwargs={"org_slug": org_slug, "ws_slug": ws_slug}),
    )


@require_http_methods(["GET", "POST"])
@workspace_view("manage_workspaces")
def workspace_archive_view(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    workspace = request.tenant.workspace
    list_url = reverse("workspaces:list", kwargs={"org_slug": org_slug})
    return confirmed_action(
        request,
        run=lambda: workspace_archive(workspace=workspace, actor=request.user),
        success_message=f"Workspace “{workspace.name}” deleted. You can restore it from this list.",
        success_url=list_url,
        confirmation={
            "title": f"Delete the workspace “{workspace.name}”?",
            "body": "Its members lose access and no more credits can be spent in it; its remaining credits return to "
            "the Primary Workspace. Its history and usage records are kept, and you can restore it within "
            f"{settings.ORGANIZATION_RETENTION_DAYS} days.",
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
    return immediate_action(
        request,
        run=lambda: workspace_restore(workspace=workspace, actor=request.user),
        success_message=f"Workspace “{workspace.name}” restored with its members.",
        success_url=reverse("workspaces:list", kwargs={"org_slug": org_slug}),
    )


# --- history -------------------------------------------------------------------------------------------------

HISTORY_PAGE_SIZE = 25
HISTORY_FILTER_PARAMETERS = ("q", "tool", "member", "date_from", "date_to")
# Images a browser may show inline. Anything else (SVG included: it can carry scripts) is only ever downloaded.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})
# Audio and video the page plays in <audio>/<video>: served inline (under the same sandboxing headers) to play.
PLAYABLE_AUDIO_TYPES = frozenset({"audio/mpeg", "audio/wav", "audio/x-wav", "audio/ogg", "audio/webm", "audio/mp4"})
PLAYABLE_VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/ogg"})
INLINE_MEDIA_TYPES = INLINE_IMAGE_TYPES | PLAYABLE_AUDIO_TYPES | PLAYABLE_VIDEO_TYPES


# The Studio's own references (which thread, turn or job made the item): the page links to them instead.
STUDIO_REFERENCE_KEYS = frozenset({"studio", "thread_id", "turn_id", "job_id"})


def metadata_rows(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """A generation's settings as label/value pairs a person reads: `aspect_ratio` → "Aspect ratio"."""
    rows = []
    for key in sorted(metadata):
        if key in STUDIO_REFERENCE_KEYS and "studio" in metadata:
            continue
        value = metadata[key]
        name, unit = str(key), ""
        for suffix, said in (("_s", "seconds"), ("_ms", "milliseconds"), ("_px", "pixels")):
            if name.endswith(suffix) and len(name) > len(suffix):
                name, unit = name[: -len(suffix)], f" ({said})"
        label = (name.replace("_", " ").strip().capitalize() or str(key)) + unit
        if isinstance(value, bool):
            text = "Yes" if value else "No"
        elif isinstance(value, list):
            text = ", ".join(str(part) for part in value)
        elif isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        elif value is None:
            text = "—"
        else:
            text = str(value)
        rows.append((label, text))
    return rows


def _history_item_or_404(request: WorkspaceRequest, item_id: int) -> HistoryItem:
    """A visible item of the request's workspace: another workspace's id, or a deleted item, is not found."""
    return get_object_or_404(
        HistoryItem.objects.visible().select_related("author"), pk=item_id, workspace=request.tenant.workspace
    )


@require_GET
@workspace_view()
def history_list(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    workspace = request.tenant.workspace
    authors = history_authors(workspace=workspace)
    form = HistoryFilterForm(request.GET or None, authors=authors)
    form.is_valid()
    items = history_items(workspace=workspace, **form.filters())
    totals = history_totals(items)
    paginator = Paginator(items, HISTORY_PAGE_SIZE)
    paginator.count = totals.items  # counted with the credits: one query, not two
    page = paginator.get_page(request.GET.get("page"))
    querystring = urlencode({key: request.GET[key] for key in HISTORY_FILTER_PARAMETERS if request.GET.get(key)})
    context = {
        "form": form,
        "page": page,
        "querystring": querystring,
        "filtered": bool(querystring),
        "credits_total": totals.credits,
        "removed_authors": {user.pk for user in authors if not user.has_access},
        "inline_image_types": INLINE_IMAGE_TYPES,
    }
    return render_page(request, "workspaces/history.html", context, partials={"history-results"})


def _studio_job_id(item: HistoryItem) -> int | None:
    """The Studio job that made this item (its metadata says so), for a link back; metadata written by a metering
    API client is free-form, so only a well-formed id counts."""
    metadata = item.metadata if isinstance(item.metadata, dict) else {}
    job_id = metadata.get("job_id")
    if metadata.get("studio") in MEDIA_TOOLS and isinstance(job_id, int) and 0 < job_id < 2**63:
        return job_id
    return None


@require_GET
@workspace_view()
def history_item_detail(request: WorkspaceRequest, org_slug: str, ws_slug: str, item_id: int) -> HttpResponse:
    item = _history_item_or_404(request, item_id)
    context = {
        "item": item,
        "metadata_rows": metadata_rows(item.metadata) if isinstance(item.metadata, dict) else [],
        "studio_job_id": _studio_job_id(item),
        "shows_image": item.has_image and item.media_content_type in INLINE_IMAGE_TYPES,
        "plays_audio": bool(item.media) and item.media_content_type in PLAYABLE_AUDIO_TYPES,
        "plays_video": bool(item.media) and item.media_content_type in PLAYABLE_VIDEO_TYPES,
        "can_delete": history_item_can_delete(
            item=item, user=request.user, workspace_permissions=request.tenant.workspace_permissions
        ),
        "author_removed": item.author_id is not None
        and not user_can_open_workspace(user_id=item.author_id, workspace=request.tenant.workspace),
    }
    return render(request, "workspaces/history_item.html", context)


@require_http_methods(["GET", "POST"])
@workspace_view()
def history_item_delete_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, item_id: int) -> HttpResponse:
    item = _history_item_or_404(request, item_id)
    permissions = request.tenant.workspace_permissions
    if not history_item_can_delete(item=item, user=request.user, workspace_permissions=permissions):
        raise Http404  # as if it did not exist, like everything else one may not do
    kwargs = {"org_slug": org_slug, "ws_slug": ws_slug}
    history_url = reverse("workspaces:history", kwargs=kwargs)
    detail_url = reverse("workspaces:history_item", kwargs={**kwargs, "item_id": item_id})
    return confirmed_action(
        request,
        run=lambda: history_item_delete(item=item, actor=request.user),
        success_message=f"History item deleted ({item.get_tool_display()} · {item.model}).",
        success_url=history_url,
        confirmation={
            "title": "Delete this history item?",
            "body": "It disappears from the workspace's History for everyone, with its output and file. "
            "The credits it cost are not refunded: they still count as spent.",
            "confirm_label": "Delete item",
            "cancel_url": detail_url,
        },
    )


@require_GET
@workspace_view()
def history_item_media(request: WorkspaceRequest, org_slug: str, ws_slug: str, item_id: int) -> FileResponse:
    """The item's file, streamed through the same permission check as every page (never from MEDIA_URL).

    Pictures, audio and video the page shows are served inline; `?download=1` (and every other type) as a download.
    """
    item = _history_item_or_404(request, item_id)
    if not item.media:
        raise Http404
    return private_media_response(
        request, name=item.media.name, content_type=item.media_content_type, filename=f"{item.tool}-{item.pk}"
    )


def private_media_response(request: HttpRequest, *, name: str, content_type: str, filename: str) -> FileResponse:
    """A file of the history storage, for a view that has checked the permission: inline when a page shows it
    (pictures, audio, video), else (and with `?download=1`) as a download. Also serves the Studio's job media."""
    try:
        handle = history_storage().open(name, "rb")
    except FileNotFoundError as missing:
        raise Http404 from missing
    content_type = content_type or "application/octet-stream"
    inline = content_type in INLINE_MEDIA_TYPES and request.GET.get("download") != "1"
    extension = PurePosixPath(name).suffix
    response = FileResponse(
        handle, content_type=content_type, as_attachment=not inline, filename=f"{filename}{extension}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a browser were made to render it as a document, it could run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    patch_cache_control(response, private=True, max_age=300)
    return response


# --- API keys ------------------------------------------------------------------------------------------------


@require_POST
@workspace_view("manage_workspace")
def api_key_create_view(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    """Create a key and show its secret in this response only: it is not stored anywhere it could be read again
    (not in the session, the messages or a URL), and the response is not cached."""
    form = ApiKeyForm(request.POST)
    created: ApiKey | None = None
    secret = ""
    if form.is_valid():
        try:
            created, secret = api_key_create(
                workspace=request.tenant.workspace, actor=request.user, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            form = ApiKeyForm()
    api_keys = _api_keys_context(request, form, new_key=created, new_secret=secret)
    partials = {"api-keys"}
    if htmx_partial(request, partials):
        # A refusal is a 200 here: htmx swaps only successful answers, and the form's errors must be shown.
        context, status = api_keys, 200
    else:
        context, status = _settings_context(request, api_keys=api_keys), 200 if created else 400
    response = render_page(request, "workspaces/settings.html", context, partials=partials, status=status)
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
@workspace_view("manage_workspace")
def api_key_revoke_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id, workspace=request.tenant.workspace)
    settings_url = reverse("workspaces:settings", kwargs={"org_slug": org_slug, "ws_slug": ws_slug})
    return confirmed_action(
        request,
        run=lambda: api_key_revoke(api_key=api_key, actor=request.user),
        success_message=f"The API key “{api_key.name}” ({api_key.display_prefix}) was revoked.",
        success_url=f"{settings_url}#api-keys",
        confirmation={
            "title": f"Revoke the API key “{api_key.name}”?",
            "body": "Every service using it is refused from its next request. This cannot be undone: "
            "create a new key to give access again.",
            "confirm_label": "Revoke key",
            "cancel_url": f"{settings_url}#api-keys",
        },
    )
