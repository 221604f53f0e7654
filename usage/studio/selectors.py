"""Studio reads: a workspace's chat threads, a thread's turns and context, the chat prices; media jobs and prices."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404

from qolaba.tools import Tool
from usage.models import Price
from usage.selectors import price_list
from usage.studio.models import ChatThread, ChatTurn, StudioJob, TurnStatus
from usage.studio.pricing import price_fits_tool
from usage.studio.providers.base import ChatMessage
from workspaces.models import HistoryItem, Workspace

CONTEXT_TURNS = 20  # the previous turns sent with a new message
SYSTEM_PROMPT = "You are a helpful assistant inside Qolaba's Studio. Answer clearly and concisely."


def chat_prices() -> QuerySet[Price]:
    return price_list().filter(tool=Tool.CHAT)


def chat_threads(*, workspace: Workspace, search: str = "") -> QuerySet[ChatThread]:
    threads = ChatThread.objects.of_workspace(workspace)
    if search:
        threads = threads.filter(title__icontains=search)
    return threads.annotate(turn_count=Count("turns")).order_by("-updated_at", "-id")


def chat_thread_find(*, workspace: Workspace, thread_id: int) -> ChatThread:
    """A live thread of this workspace; anything else (another workspace's, a deleted one) is not found."""
    thread = ChatThread.objects.of_workspace(workspace).filter(pk=thread_id).first() if thread_id < 2**63 else None
    if thread is None:
        raise Http404
    return thread


def chat_turn_find(*, thread: ChatThread, turn_id: int) -> ChatTurn:
    turn = thread.turns.select_related("author").filter(pk=turn_id).first() if turn_id < 2**63 else None
    if turn is None:
        raise Http404
    return turn


def chat_turns(*, thread: ChatThread) -> QuerySet[ChatTurn]:
    return thread.turns.select_related("author").order_by("created_at", "id")


def chat_messages(*, thread: ChatThread, prompt: str, before: ChatTurn | None = None) -> list[ChatMessage]:
    """What the model is sent: the system prompt, the thread's last answered turns (before `before`), the message."""
    answered = thread.turns.filter(Q(status=TurnStatus.DONE) | Q(status=TurnStatus.STOPPED)).exclude(reply="")
    if before is not None:
        answered = answered.filter(created_at__lte=before.created_at).exclude(pk=before.pk)
    previous = list(answered.order_by("-created_at", "-id").values_list("prompt", "reply")[:CONTEXT_TURNS])
    messages: list[ChatMessage] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for user_text, reply in reversed(previous):
        messages.append({"role": "user", "content": user_text})
        messages.append({"role": "assistant", "content": reply})
    messages.append({"role": "user", "content": prompt})
    return messages


def media_prices(*, tool: str) -> list[Price]:
    """The active prices of a media tool the Studio can estimate before running (cheapest first)."""
    prices = price_list().filter(tool=tool).order_by("credits_per_unit", "model")
    return [price for price in prices if price_fits_tool(price)]


def studio_jobs(*, workspace: Workspace, tool: str) -> QuerySet[StudioJob]:
    """A workspace's jobs of one tool, newest first; `history_deleted`: its History item was deleted since (its
    media are then no longer shown, as in History)."""
    deleted = HistoryItem.objects.filter(pk=OuterRef("history_item_id"), deleted_at__isnull=False)
    return (
        StudioJob.objects.of_workspace(workspace)
        .filter(tool=tool)
        .select_related("author")
        .annotate(history_deleted=Exists(deleted))
        .order_by("-created_at", "-id")
    )


def studio_job_find(*, workspace: Workspace, job_id: int) -> StudioJob:
    """A job of this workspace; another workspace's is not found."""
    job = None
    if job_id < 2**63:
        deleted = HistoryItem.objects.filter(pk=OuterRef("history_item_id"), deleted_at__isnull=False)
        job = (
            StudioJob.objects.of_workspace(workspace)
            .select_related("author")
            .annotate(history_deleted=Exists(deleted))
            .filter(pk=job_id)
            .first()
        )
    if job is None:
        raise Http404
    return job
