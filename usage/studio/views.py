"""The Studio's pages: Chat (threads, a thread, a turn as it is written, the live price, send, stop, rename, delete).

Every view resolves the workspace through `workspace_view("view_workspace")`: anyone who may open the workspace sees
the Studio. Running a tool needs the spend permission (`SPEND_PERMISSION`): viewers see everything read-only, with
the reason, and an attempt to run answers 403 with that reason. Another workspace's thread is a 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from billing.ledger import CreditLimitReached
from billing.selectors import credits_overview
from qolaba.access import WorkspaceRequest, workspace_view
from qolaba.htmx import render_page
from usage.refusals import UnknownPrice
from usage.studio.forms import ChatEstimateForm, ChatMessageForm, ThreadRenameForm, ThreadSearchForm
from usage.studio.models import ChatThread
from usage.studio.pricing import CHAT_TOKENS_PER_UNIT, chat_estimate
from usage.studio.providers import ChatMessage
from usage.studio.selectors import (
    chat_messages,
    chat_prices,
    chat_thread_find,
    chat_threads,
    chat_turn_find,
    chat_turns,
)
from usage.studio.services import chat_thread_delete, chat_thread_rename, chat_turn_start, chat_turn_stop
from workspaces.roles import SPEND_PERMISSION

VIEWER_REASON = (
    "You can read this workspace's Studio, but your role (viewer) cannot run its tools, which spend credits. "
    "Ask a workspace admin to make you a member."
)
THREADS_SHOWN = 50


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
