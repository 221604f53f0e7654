"""The Studio's pages: Chat (threads, a thread, a turn as it is written, the live price, send, stop, rename, delete)
and the media tools, Image, Video, Speech and Music (a tool's page with its recent jobs, the live price, run, a job as
it runs, cancel, a job's media).

Every view resolves the workspace through `workspace_view("view_workspace")`: anyone who may open the workspace sees
the Studio. Running a tool needs the spend permission (`SPEND_PERMISSION`): viewers see everything read-only, with
the reason, and an attempt to run answers 403 with that reason. Another workspace's thread or job is a 404. A job's
media are served like History's (`workspaces.views.private_media_response`): after the same permission check.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from billing.ledger import CreditLimitReached
from billing.selectors import credits_overview
from qolaba.access import WorkspaceRequest, workspace_view
from qolaba.htmx import VARY_ON, htmx_partial, render_page
from qolaba.views import form_add_service_errors
from usage.refusals import UnknownPrice
from usage.studio.forms import (
    ChatEstimateForm,
    ChatMessageForm,
    MediaEstimateForm,
    MediaJobForm,
    ThreadRenameForm,
    ThreadSearchForm,
)
from usage.studio.models import ChatThread, StudioJob
from usage.studio.pricing import CHAT_TOKENS_PER_UNIT, DEFAULT_OPTIONS, chat_estimate, media_estimate
from usage.studio.providers import ChatMessage
from usage.studio.selectors import (
    chat_messages,
    chat_prices,
    chat_thread_find,
    chat_threads,
    chat_turn_find,
    chat_turns,
    media_prices,
    studio_job_find,
    studio_jobs,
)
from usage.studio.services import (
    chat_thread_delete,
    chat_thread_rename,
    chat_turn_start,
    chat_turn_stop,
    studio_job_cancel,
    studio_job_start,
)
from workspaces.roles import SPEND_PERMISSION
from workspaces.views import private_media_response

VIEWER_REASON = (
    "You can read this workspace's Studio, but your role (viewer) cannot run its tools, which spend credits. "
    "Ask a workspace admin to make you a member."
)
THREADS_SHOWN = 50
# The Studio's tools, in its navigation (`includes/tools.html`): URL name (under `studio:`) and label.
STUDIO_TOOL_LINKS = [("chat", "Chat"), ("image", "Image"), ("video", "Video"), ("speech", "Speech"), ("music", "Music")]


def _can_run(request: WorkspaceRequest) -> bool:
    return request.tenant.can(SPEND_PERMISSION)


THREAD_OWNER_REASON = "Only the thread's author or a workspace admin can rename or delete it."


def _refused(request: WorkspaceRequest, reason: str = VIEWER_REASON) -> HttpResponse:
    return render(request, "usage/studio/refused.html", {"reason": reason}, status=403)


def _thread_url(request: WorkspaceRequest, thread: ChatThread) -> str:
    tenant = request.tenant
    return reverse(
        "studio:chat_thread",
        kwargs={"org_slug": tenant.organization.slug, "ws_slug": tenant.workspace.slug, "thread_id": thread.pk},
    )


def _estimate_context(form: ChatMessageForm, thread: ChatThread | None) -> dict[str, Any]:
    """The price shown before sending: the picked model's estimate for the message as it is written now."""
    prices = list(chat_prices())
    price = None
    prompt = ""
    if form.is_bound:
        form.is_valid()
        price = form.cleaned_data.get("price")
        prompt = form.cleaned_data.get("prompt") or ""
    else:  # the model the thread last used (see `_chat_page`)
        price = next((p for p in prices if p.model == form.initial.get("price")), None)
    price = price or (prices[0] if prices else None)
    if price is None:
        return {"estimate": None}
    user_message: ChatMessage = {"role": "user", "content": prompt}
    messages_sent = chat_messages(thread=thread, prompt=prompt) if thread else [user_message]
    return {"estimate": chat_estimate(price=price, messages=messages_sent), "tokens_per_unit": CHAT_TOKENS_PER_UNIT}


def _chat_page(
    request: WorkspaceRequest,
    *,
    thread: ChatThread | None,
    form: ChatMessageForm | None = None,
    refusal: str = "",
    status: int = 200,
) -> HttpResponse:
    tenant = request.tenant
    search = ThreadSearchForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    threads = list(chat_threads(workspace=tenant.workspace, search=query)[:THREADS_SHOWN])
    turns = list(chat_turns(thread=thread)) if thread else []
    # A follow-up goes to the model the conversation was using, not back to the first of the list.
    form = form or ChatMessageForm(initial={"prompt": "", "price": turns[-1].model if turns else None})
    context: dict[str, Any] = {
        "thread": thread,
        "turns": turns,
        "threads": threads,
        "search": search,
        "query": query,
        "form": form,
        "can_run": _can_run(request),
        "viewer_reason": VIEWER_REASON,
        "refusal": refusal,
        "can_buy": tenant.can("manage_billing"),
        "balance": credits_overview(workspace=tenant.workspace, organization=tenant.organization, user=request.user),
        "rename_form": ThreadRenameForm(initial={"title": thread.title}) if thread else None,
        "studio_tool_links": STUDIO_TOOL_LINKS,
        **_estimate_context(ChatEstimateForm(request.POST) if request.method == "POST" else form, thread),
    }
    return render_page(request, "usage/studio/chat.html", context, partials={"thread-list"}, status=status)


@require_GET
@workspace_view("view_workspace")
def studio_chat(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    return _chat_page(request, thread=None)


@require_GET
@workspace_view("view_workspace")
def chat_thread(request: WorkspaceRequest, org_slug: str, ws_slug: str, thread_id: int) -> HttpResponse:
    thread = chat_thread_find(workspace=request.tenant.workspace, thread_id=thread_id)
    return _chat_page(request, thread=thread)


@require_GET
@workspace_view("view_workspace")
def chat_price(request: WorkspaceRequest, org_slug: str, ws_slug: str) -> HttpResponse:
    """The live estimate (htmx, as the message or the model changes); a page of its own without JavaScript."""
    thread = None
    raw_thread = request.GET.get("thread", "")
    if raw_thread.isdigit():
        thread = chat_thread_find(workspace=request.tenant.workspace, thread_id=int(raw_thread))
    context = _estimate_context(ChatEstimateForm(request.GET), thread)
    return render_page(request, "usage/studio/price.html", context, partials={"chat-price"})


@require_POST
@workspace_view("view_workspace")
def chat_turn_start_view(
    request: WorkspaceRequest, org_slug: str, ws_slug: str, thread_id: int | None = None
) -> HttpResponse:
    workspace = request.tenant.workspace
    thread = chat_thread_find(workspace=workspace, thread_id=thread_id) if thread_id is not None else None
    if not _can_run(request):
        return _refused(request)
    form = ChatMessageForm(request.POST)
    if not form.is_valid():
        return _chat_page(request, thread=thread, form=form, status=400)
    try:
        turn = chat_turn_start(
            workspace=workspace,
            user=request.user,
            price=form.cleaned_data["price"],
            prompt=form.cleaned_data["prompt"],
            thread=thread,
        )
    except CreditLimitReached as refusal:
        return _chat_page(request, thread=thread, form=form, refusal=refusal.message, status=402)
    except (ValidationError, UnknownPrice) as error:
        form.add_error("prompt", error.message if isinstance(error, UnknownPrice) else error)
        return _chat_page(request, thread=thread, form=form, status=400)
    return redirect(f"{_thread_url(request, turn.thread)}#turn-{turn.pk}")


@require_GET
@workspace_view("view_workspace")
def chat_turn(request: WorkspaceRequest, org_slug: str, ws_slug: str, thread_id: int, turn_id: int) -> HttpResponse:
    """One turn as it is written: htmx polls its `chat-live` partial until it is finished."""
    tenant = request.tenant
    thread = chat_thread_find(workspace=tenant.workspace, thread_id=thread_id)
    turn = chat_turn_find(thread=thread, turn_id=turn_id)
    context: dict[str, Any] = {"thread": thread, "turn": turn, "can_run": _can_run(request)}
    if turn.is_finished and getattr(request, "htmx", False):
        # The poll that sees the turn settled also updates the page's balance (out of band): the member sees it drop
        # by what the turn shows as charged, without a reload.
        context["balance"] = credits_overview(
            workspace=tenant.workspace, organization=tenant.organization, user=request.user
        )
    response = render_page(request, "usage/studio/turn.html", context, partials={"chat-live"})
    response["Cache-Control"] = "no-store"
    if "balance" in context:
        # The composer re-prices the next message (the thread's context now includes this turn): a `change` of the
        # model picker is what makes it ask for the price.
        response["HX-Trigger"] = json.dumps({"change": {"target": "#id_price"}})
    return response


@require_POST
@workspace_view("view_workspace")
def chat_turn_stop_view(
    request: WorkspaceRequest, org_slug: str, ws_slug: str, thread_id: int, turn_id: int
) -> HttpResponse:
    thread = chat_thread_find(workspace=request.tenant.workspace, thread_id=thread_id)
    turn = chat_turn_find(thread=thread, turn_id=turn_id)
    if not _can_run(request):
        return _refused(request)
    if chat_turn_stop(turn=turn):
        messages.info(request, "Stopping: only what was written so far is charged.")
    return redirect(f"{_thread_url(request, thread)}#turn-{turn.pk}")


def _may_edit(request: WorkspaceRequest, thread: ChatThread) -> bool:
    return _can_run(request) and (thread.author_id == request.user.pk or request.tenant.can("manage_workspace"))


@require_POST
@workspace_view("view_workspace")
def chat_thread_rename_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, thread_id: int) -> HttpResponse:
    thread = chat_thread_find(workspace=request.tenant.workspace, thread_id=thread_id)
    if not _may_edit(request, thread):
        return _refused(request, VIEWER_REASON if not _can_run(request) else THREAD_OWNER_REASON)
    form = ThreadRenameForm(request.POST)
    if form.is_valid():
        try:
            chat_thread_rename(thread=thread, title=form.cleaned_data["title"])
        except ValidationError as error:
            messages.error(request, error.messages[0])
    else:
        messages.error(request, "A thread needs a title (at most 120 characters).")
    return redirect(_thread_url(request, thread))


@require_POST
@workspace_view("view_workspace")
def chat_thread_delete_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, thread_id: int) -> HttpResponse:
    thread = chat_thread_find(workspace=request.tenant.workspace, thread_id=thread_id)
    if not _may_edit(request, thread):
        return _refused(request, VIEWER_REASON if not _can_run(request) else THREAD_OWNER_REASON)
    chat_thread_delete(thread=thread)
    messages.success(request, f"Deleted “{thread.title}”. Its turns stay in History.")
    return redirect("studio:chat", org_slug=org_slug, ws_slug=ws_slug)


# --- media tools: Image, Video, Speech, Music ------------------------------------------------------------------

JOBS_SHOWN = 12
TOOL_PLURALS = {"image": "images", "video": "videos", "speech": "speech", "music": "music"}
TOOL_INTROS = {
    "image": "Describe a picture; pick its size and how many. The images appear below in a grid.",
    "video": "Describe a short clip and its length. It runs in the background with a progress bar; cancel it any "
    "time before it finishes and nothing is charged.",
    "speech": "Type the text to read aloud and pick a voice. The recording plays below.",
    "music": "Describe the music and its length. It runs in the background with a progress bar; cancel it any time "
    "before it finishes and nothing is charged.",
}


def _tool_url(request: WorkspaceRequest, tool: str) -> str:
    tenant = request.tenant
    return reverse(f"studio:{tool}", kwargs={"org_slug": tenant.organization.slug, "ws_slug": tenant.workspace.slug})


def _media_estimate_context(form: MediaJobForm) -> dict[str, Any]:
    """The price shown before running: the picked model and options, the prompt as written now. Options that do
    not validate are priced at their defaults (the form says what is wrong)."""
    prices = list(form.fields["price"].queryset)  # type: ignore[attr-defined]
    if not prices:
        return {"estimate": None}
    if form.is_bound:
        form.is_valid()
    data = getattr(form, "cleaned_data", {})
    price = data.get("price") or prices[0]
    options = {name: data.get(name) or default for name, default in DEFAULT_OPTIONS[form.tool].items()}
    prompt = data.get("prompt") or ""
    return {"estimate": media_estimate(price=price, prompt=prompt, options=options), "tool": form.tool}


def _media_page(
    request: WorkspaceRequest,
    *,
    tool: str,
    form: MediaJobForm | None = None,
    refusal: str = "",
    status: int = 200,
) -> HttpResponse:
    tenant = request.tenant
    prices = media_prices(tool=tool)
    form = form or MediaJobForm(tool=tool, prices=prices)
    jobs = list(studio_jobs(workspace=tenant.workspace, tool=tool)[:JOBS_SHOWN])
    estimate_form = MediaEstimateForm(request.POST, tool=tool, prices=prices) if request.method == "POST" else form
    context: dict[str, Any] = {
        "tool": tool,
        "tool_label": tool.title(),
        "tool_plural": TOOL_PLURALS[tool],
        "tool_intro": TOOL_INTROS[tool],
        "studio_tool_links": STUDIO_TOOL_LINKS,
        "jobs": jobs,
        "form": form,
        "has_prices": bool(prices),
        "can_run": _can_run(request),
        "viewer_reason": VIEWER_REASON,
        "refusal": refusal,
        "can_buy": tenant.can("manage_billing"),
        "balance": credits_overview(workspace=tenant.workspace, organization=tenant.organization, user=request.user),
        **_media_estimate_context(estimate_form),
    }
    return render_page(request, "usage/studio/media.html", context, partials={"job-list"}, status=status)


@require_GET
@workspace_view("view_workspace")
def studio_media(request: WorkspaceRequest, org_slug: str, ws_slug: str, tool: str) -> HttpResponse:
    return _media_page(request, tool=tool)


@require_GET
@workspace_view("view_workspace")
def media_price(request: WorkspaceRequest, org_slug: str, ws_slug: str, tool: str) -> HttpResponse:
    """The live estimate (htmx, as the prompt or an option changes); a page of its own without JavaScript."""
    form = MediaEstimateForm(request.GET, tool=tool, prices=media_prices(tool=tool))
    return render_page(request, "usage/studio/price.html", _media_estimate_context(form), partials={"media-price"})


@require_POST
@workspace_view("view_workspace")
def media_job_start_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, tool: str) -> HttpResponse:
    if not _can_run(request):
        return _refused(request)
    if request.POST.get("preview"):  # without JavaScript: the price for the options picked, nothing started
        preview = MediaEstimateForm(request.POST, tool=tool, prices=media_prices(tool=tool))
        preview.is_valid()
        return _media_page(request, tool=tool, form=preview)
    form = MediaJobForm(request.POST, tool=tool, prices=media_prices(tool=tool))
    if not form.is_valid():
        return _media_page(request, tool=tool, form=form, status=400)
    try:
        job = studio_job_start(
            workspace=request.tenant.workspace,
            user=request.user,
            tool=tool,
            price=form.cleaned_data["price"],
            prompt=form.cleaned_data["prompt"],
            options=form.options(),
        )
    except CreditLimitReached as refusal:
        return _media_page(request, tool=tool, form=form, refusal=refusal.message, status=402)
    except (ValidationError, UnknownPrice) as error:
        form_add_service_errors(form, error)
        return _media_page(request, tool=tool, form=form, status=400)
    return redirect(f"{_tool_url(request, tool)}#job-{job.pk}")


def _job_url(request: WorkspaceRequest, job: StudioJob) -> str:
    return f"{_tool_url(request, job.tool)}#job-{job.pk}"


@require_GET
@workspace_view("view_workspace")
def studio_job(request: WorkspaceRequest, org_slug: str, ws_slug: str, job_id: int) -> HttpResponse:
    """One job as it runs: htmx polls its `job-live` partial every second until it is finished."""
    job = studio_job_find(workspace=request.tenant.workspace, job_id=job_id)
    context = {"job": job, "can_run": _can_run(request), "tool": job.tool, "tool_label": job.tool.title()}
    # A page lists several jobs, so each card's id (the htmx target) is `job-<id>`; it names the `job-live` partial.
    partial = htmx_partial(request, {f"job-{job.pk}"})
    response = render(request, "usage/studio/job.html#job-live" if partial else "usage/studio/job.html", context)
    patch_vary_headers(response, VARY_ON)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@workspace_view("view_workspace")
def studio_job_cancel_view(request: WorkspaceRequest, org_slug: str, ws_slug: str, job_id: int) -> HttpResponse:
    job = studio_job_find(workspace=request.tenant.workspace, job_id=job_id)
    if not _can_run(request):
        return _refused(request)
    if studio_job_cancel(job=job):
        messages.info(request, "Cancelled: the held credits are back and nothing is charged.")
    elif not job.is_finished:
        messages.info(request, "This job cannot be stopped part-way; it finishes in a moment.")
    return redirect(_job_url(request, job))


@require_GET
@workspace_view("view_workspace")
def studio_job_media(request: WorkspaceRequest, org_slug: str, ws_slug: str, job_id: int, index: int) -> FileResponse:
    """A job's file, through the same permission check as History's media (gone with its History item)."""
    job = studio_job_find(workspace=request.tenant.workspace, job_id=job_id)
    if getattr(job, "history_deleted", False) or not 0 <= index < len(job.outputs):
        raise Http404
    output = job.outputs[index]
    return private_media_response(
        request,
        name=output["name"],
        content_type=output["content_type"],
        filename=f"{job.tool}-{job.pk}-{index + 1}",
    )
