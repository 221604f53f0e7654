"""Studio writes. Every generation goes through the metering services (`usage.services`): it holds its estimate
(`usage_hold_place`), runs outside the request (a Celery task, `usage.studio.tasks`), then captures what was
produced (`usage_hold_capture`, which writes the history item) or releases everything (`usage_hold_release`).
The usage event's idempotency key is derived from the turn, and a turn runs once (`queued` → `streaming` is claimed
atomically), so a redelivered task never charges twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.timezone import now

from billing import ledger
from orgs.models import User
from qolaba.outbox.services import outbox_enqueue
from qolaba.tools import Tool
from usage.models import Price, UsageEvent, UsageStatus
from usage.refusals import UnknownPrice
from usage.services import HistoryContent, usage_hold_capture, usage_hold_place, usage_hold_release
from usage.studio.models import ChatThread, ChatTurn, TurnStatus
from usage.studio.pricing import chat_estimate, chat_units, messages_tokens
from usage.studio.providers import ChatUsage, ProviderError, StudioProvider, provider_for
from usage.studio.selectors import chat_messages
from workspaces.models import Workspace

logger = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 8000
TITLE_CHARS = 60
FLUSH_CHUNKS = 20  # write the reply so far every 20 chunks…
FLUSH_SECONDS = 0.3  # …or every 300 ms, whichever comes first


def chat_turn_key(turn_id: int) -> str:
    """The usage event's idempotency key of a chat turn."""
    return f"studio:chat-turn:{turn_id}"


def _clean_prompt(prompt: str) -> str:
    prompt = prompt.strip()
    if not prompt:
        raise ValidationError("Write a message first.", code="required")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationError(f"A message is at most {MAX_PROMPT_CHARS} characters.", code="max_length")
    return prompt


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ValidationError("A thread needs a title.", code="required")
    return title[:120]


@transaction.atomic
def chat_turn_start(
    *, workspace: Workspace, user: User, price: Price, prompt: str, thread: ChatThread | None = None
) -> ChatTurn:
    """Send a message: hold the turn's estimate and queue its run. A refusal (a limit, the balance) raises the
    ledger's `CreditLimitReached` and nothing is written (no thread, no turn)."""
    if price.tool != Tool.CHAT or not price.is_active:
        raise UnknownPrice("This model is not available for chat.")
    prompt = _clean_prompt(prompt)
    if thread is None:
        title = " ".join(prompt.split())
        thread = ChatThread.objects.create(
            organization_id=workspace.organization_id,
            workspace=workspace,
            author=user,
            title=title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…",
        )
    elif thread.workspace_id != workspace.pk or thread.deleted_at is not None:
        raise ValidationError("This thread is not in this workspace.", code="invalid")
    else:
        ChatThread.objects.filter(pk=thread.pk).update(updated_at=now())
    estimate = chat_estimate(price=price, messages=chat_messages(thread=thread, prompt=prompt))
    turn = ChatTurn.objects.create(
        thread=thread,
        author=user,
        model=price.model,
        provider=price.provider,
        prompt=prompt,
        estimated_credits=estimate.credits,
    )
    metered = usage_hold_place(
        workspace=workspace,
        user=user,
        price=price,
        units=estimate.units,
        ttl=timedelta(seconds=settings.STUDIO_HOLD_TTL_SECONDS),
        idempotency_key=chat_turn_key(turn.pk),
        history=HistoryContent(
            prompt=prompt,
            metadata={"studio": "chat", "thread_id": thread.pk, "turn_id": turn.pk, "provider": price.provider},
        ),
    )
    turn.usage_event_id = metered.event.pk
    turn.save(update_fields=["usage_event_id"])
    outbox_enqueue(task="usage.studio.tasks.chat_turn_run_task", args=[turn.pk])
    return turn


def chat_turn_stop(*, turn: ChatTurn) -> bool:
    """Ask a running turn to stop; the run checks between chunks and captures only what was produced."""
    return bool(
        ChatTurn.objects.filter(pk=turn.pk, status__in=[TurnStatus.QUEUED, TurnStatus.STREAMING]).update(
            stop_requested=True
        )
    )


@transaction.atomic
def chat_thread_rename(*, thread: ChatThread, title: str) -> ChatThread:
    thread.title = _clean_title(title)
    thread.save(update_fields=["title"])
    return thread


@transaction.atomic
def chat_thread_delete(*, thread: ChatThread) -> None:
    """Soft delete: the thread leaves the Studio; its turns stay in History (they were charged)."""
    thread.deleted_at = now()
    thread.save(update_fields=["deleted_at"])


def chat_turns_abandon(*, at: datetime | None = None) -> int:
    """Close the turns whose run was lost (a worker killed mid-stream): still unfinished past the hold's expiry.
    Their hold is released by the sweeper (`usage.services.holds_expire`) first, so nothing was charged; this says
    so in the turn instead of leaving it "writing" forever. Returns how many."""
    cutoff = (at or now()) - timedelta(seconds=settings.STUDIO_HOLD_TTL_SECONDS)
    lost = ChatTurn.objects.filter(
        status__in=[TurnStatus.QUEUED, TurnStatus.STREAMING], created_at__lt=cutoff
    ).select_related("thread")
    closed = 0
    for turn in lost:
        if turn.usage_event_id is not None:
            event = _event(turn)
            if event.status == UsageStatus.HELD:
                continue  # the sweeper has not released it yet: next time
            turn.credits = event.credits if event.status == UsageStatus.CAPTURED else 0
        _finish(turn, status=TurnStatus.FAILED, error="The reply was interrupted. Nothing was charged.")
        closed += 1
    return closed


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class _Stream:
    parts: list[str]
    chunks: int = 0
    usage: ChatUsage | None = None
    stopped: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _flush(turn: ChatTurn, text: str) -> bool:
    """Write the reply so far; True when a stop was asked for."""
    ChatTurn.objects.filter(pk=turn.pk).update(reply=text)
    return bool(ChatTurn.objects.filter(pk=turn.pk, stop_requested=True).exists())


def _event(turn: ChatTurn) -> UsageEvent:
    assert turn.usage_event_id is not None  # noqa: S101 (a started turn always has its hold)
    return UsageEvent.objects.select_related("hold").get(pk=turn.usage_event_id)


def _finish(turn: ChatTurn, *, status: str, error: str = "") -> None:
    turn.status, turn.error, turn.finished_at = status, error, now()
    turn.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "reply",
            "credits",
            "prompt_tokens",
            "completion_tokens",
        ]
    )


def _release(turn: ChatTurn, *, status: str, error: str = "") -> ChatTurn:
    with transaction.atomic():
        event = _event(turn)
        if event.status == UsageStatus.HELD:
            usage_hold_release(event=event)
        turn.credits = 0
        _finish(turn, status=status, error=error)
    return turn


def _capture(turn: ChatTurn, stream: _Stream, prompt_tokens_estimate: int) -> ChatTurn:
    if stream.usage is not None:
        turn.prompt_tokens, turn.completion_tokens = stream.usage.prompt_tokens, stream.usage.completion_tokens
    else:  # stopped (or a server that does not report usage): what was produced, counted as chunks
        turn.prompt_tokens, turn.completion_tokens = prompt_tokens_estimate, stream.chunks
    status = TurnStatus.STOPPED if stream.stopped else TurnStatus.DONE
    try:
        with transaction.atomic():
            event = _event(turn)
            metered = usage_hold_capture(
                event=event,
                workspace=turn.thread.workspace,
                units=min(chat_units(turn.total_tokens), event.units),
                history=HistoryContent(
                    output_text=stream.text,
                    metadata={
                        "prompt_tokens": turn.prompt_tokens,
                        "completion_tokens": turn.completion_tokens,
                        "stopped": stream.stopped,
                    },
                ),
            )
            turn.credits = metered.event.credits
            _finish(turn, status=status)
    except ledger.HoldNotPending:
        # The hold expired (the run outlived STUDIO_HOLD_TTL_SECONDS) and the sweeper released it: nothing charged.
        turn.credits = 0
        _finish(turn, status=TurnStatus.FAILED, error="The reply took too long and was not charged.")
    return turn


def chat_turn_run(*, turn_id: int, provider: StudioProvider | None = None) -> ChatTurn | None:
    """Run a queued turn: stream the reply into it, then capture what was produced or release the hold.
    Runs in a Celery worker (eagerly, in the request, without a broker). Returns None for an unknown turn.
    `provider` replaces the price's (the demo seeding runs the demo provider without its typing delay)."""
    claimed = ChatTurn.objects.filter(pk=turn_id, status=TurnStatus.QUEUED).update(status=TurnStatus.STREAMING)
    turn = ChatTurn.objects.select_related("thread__workspace__organization").filter(pk=turn_id).first()
    if turn is None or not claimed:
        return turn  # a duplicate delivery: this turn already ran (or is running)
    if turn.stop_requested:
        return _release(turn, status=TurnStatus.STOPPED)
    price = Price.objects.filter(tool=Tool.CHAT, model=turn.model).first()
    if price is None:
        return _release(turn, status=TurnStatus.FAILED, error="This model is no longer available. Nothing was charged.")
    messages = chat_messages(thread=turn.thread, prompt=turn.prompt, before=turn)
    stream = _Stream(parts=[])
    last_flush, unflushed = time.monotonic(), 0
    try:
        chunks = (provider or provider_for(price)).chat(
            model=price.provider_model_name, messages=messages, max_tokens=settings.STUDIO_CHAT_MAX_TOKENS
        )
        try:
            for item in chunks:
                if isinstance(item, ChatUsage):
                    stream.usage = item
                    continue
                stream.parts.append(item.text)
                stream.chunks += 1
                unflushed += 1
                if unflushed >= FLUSH_CHUNKS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                    last_flush, unflushed = time.monotonic(), 0
                    if _flush(turn, stream.text):
                        stream.stopped = True
                        break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # closes the provider's HTTP stream: it stops generating
    except ProviderError as error:
        turn.reply = stream.text
        return _release(turn, status=TurnStatus.FAILED, error=error.message)
    except Exception:
        logger.exception("Chat turn %s failed", turn_id)
        turn.reply = stream.text
        return _release(turn, status=TurnStatus.FAILED, error="The model failed to answer. Nothing was charged.")
    turn.reply = stream.text
    if stream.stopped and not stream.text:
        return _release(turn, status=TurnStatus.STOPPED)
    return _capture(turn, stream, messages_tokens(messages))
