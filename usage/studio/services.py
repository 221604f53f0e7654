"""Studio writes. Every generation goes through the metering services (`usage.services`): it holds its estimate
(`usage_hold_place`), runs outside the request (a Celery task, `usage.studio.tasks`), then captures what was
produced (`usage_hold_capture`, which writes the history item) or releases everything (`usage_hold_release`).
The usage event's idempotency key is derived from the turn, and a turn runs once (`queued` → `streaming` is claimed
atomically), so a redelivered task never charges twice.
"""

from __future__ import annotations

import logging
import mimetypes
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.timezone import now

from billing import ledger
from orgs.models import User
from qolaba.outbox.services import outbox_enqueue
from qolaba.tools import Tool
from usage.models import Price, UsageEvent, UsageStatus
from usage.refusals import UnknownPrice
from usage.services import HistoryContent, usage_hold_capture, usage_hold_place, usage_hold_release
from usage.studio.models import LONG_TOOLS, MEDIA_TOOLS, ChatThread, ChatTurn, JobStatus, StudioJob, TurnStatus
from usage.studio.pricing import (
    IMAGE_COUNTS,
    IMAGE_SIZES,
    MUSIC_SECONDS,
    VIDEO_SECONDS,
    VOICES,
    chat_estimate,
    chat_units,
    media_estimate,
    media_units,
    messages_tokens,
    price_fits_tool,
)
from usage.studio.providers import (
    ChatUsage,
    GenerationCancelled,
    Media,
    ProviderError,
    StudioProvider,
    provider_for,
)
from usage.studio.providers.base import SPEECH_MAX_CHARS
from usage.studio.selectors import chat_messages
from workspaces.models import HistoryItem, Workspace, history_storage

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


# --- media jobs (Image, Video, Speech, Music) -------------------------------------------------------------------

MEDIA_PROMPT_CHARS = 2000
JOB_CANCELLED_MESSAGE = "Cancelled. Nothing was charged: the held credits are back."
JOB_INTERRUPTED_MESSAGE = "The generation was interrupted. Nothing was charged."
JOB_FAILED_MESSAGE = "The model failed. Nothing was charged; please try again."


def studio_job_key(job_id: int) -> str:
    """The usage event's idempotency key of a media job."""
    return f"studio:job:{job_id}"


def _choice(options: Mapping[str, Any], name: str, allowed: tuple[Any, ...], label: str) -> Any:
    value = options.get(name)
    if isinstance(allowed[0], int):
        try:
            value = int(str(value))
        except ValueError:
            value = None
    if value not in allowed:
        shown = ", ".join(str(choice) for choice in allowed)
        raise ValidationError({name: f"Pick a {label}: {shown}."}, code="invalid_choice")
    return value


def studio_options_clean(*, tool: str, prompt: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The prompt and the tool's options as they are stored and sent; a `ValidationError` (by field) otherwise."""
    prompt = prompt.strip()
    limit = SPEECH_MAX_CHARS if tool == "speech" else MEDIA_PROMPT_CHARS
    if not prompt:
        raise ValidationError({"prompt": "Write what to generate first."}, code="required")
    if len(prompt) > limit:
        raise ValidationError({"prompt": f"At most {limit:,} characters."}, code="max_length")
    if tool == "image":
        return prompt, {
            "size": _choice(options, "size", tuple(IMAGE_SIZES), "size"),
            "count": _choice(options, "count", IMAGE_COUNTS, "number of images"),
        }
    if tool in ("video", "music"):
        return prompt, {
            "seconds": _choice(options, "seconds", VIDEO_SECONDS if tool == "video" else MUSIC_SECONDS, "length")
        }
    if tool == "speech":
        return prompt, {"voice": _choice(options, "voice", VOICES, "voice")}
    raise ValidationError({"prompt": "This Studio tool does not exist."}, code="invalid")


@transaction.atomic
def studio_job_start(
    *, workspace: Workspace, user: User, tool: str, price: Price, prompt: str, options: Mapping[str, Any]
) -> StudioJob:
    """Run a media tool: validate the options, hold the estimate and queue the run. A refusal (a limit, the
    balance) raises the ledger's `CreditLimitReached` and nothing is written."""
    if tool not in MEDIA_TOOLS or price.tool != tool or not price.is_active or not price_fits_tool(price):
        raise UnknownPrice("This model is not available for this tool.")
    prompt, cleaned = studio_options_clean(tool=tool, prompt=prompt, options=options)
    estimate = media_estimate(price=price, prompt=prompt, options=cleaned)
    job = StudioJob.objects.create(
        organization_id=workspace.organization_id,
        workspace=workspace,
        author=user,
        tool=tool,
        model=price.model,
        provider=price.provider,
        prompt=prompt,
        options=cleaned,
        estimated_credits=estimate.credits,
    )
    metered = usage_hold_place(
        workspace=workspace,
        user=user,
        price=price,
        units=estimate.units,
        ttl=timedelta(seconds=settings.STUDIO_HOLD_TTL_SECONDS),
        idempotency_key=studio_job_key(job.pk),
        history=HistoryContent(
            prompt=prompt,
            metadata={"studio": tool, "job_id": job.pk, "provider": price.provider, **cleaned},
        ),
    )
    job.usage_event_id = metered.event.pk
    job.save(update_fields=["usage_event_id"])
    outbox_enqueue(task="usage.studio.tasks.studio_job_run_task", args=[job.pk])
    return job


def studio_job_cancel(*, job: StudioJob) -> bool:
    """Cancel a job. One still waiting is closed and released at once; a running one is asked to stop (its run
    checks at each progress report and releases). Returns whether there was anything to cancel."""
    with transaction.atomic():
        if StudioJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, cancel_requested=True
        ):
            # Claimed from the queue: the run, if it is delivered later, finds it finished and does nothing.
            locked = StudioJob.objects.get(pk=job.pk)
            _job_release(locked, status=JobStatus.CANCELLED, error=JOB_CANCELLED_MESSAGE)
            return True
    # Only the long tools can be stopped mid-run (they report progress); an image or a speech is seconds long.
    return job.tool in LONG_TOOLS and bool(
        StudioJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, cancel_requested=False).update(
            cancel_requested=True
        )
    )


def studio_jobs_abandon(*, at: datetime | None = None) -> int:
    """Close the jobs whose run was lost (a worker killed mid-job): unfinished past the hold's expiry. The sweeper
    (`usage.services.holds_expire`) releases their hold first, so nothing is charged; this says so on the job, so
    its page stops polling. Returns how many."""
    cutoff = (at or now()) - timedelta(seconds=settings.STUDIO_HOLD_TTL_SECONDS)
    closed = 0
    for job in StudioJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], created_at__lt=cutoff):
        with transaction.atomic():
            locked = StudioJob.objects.select_for_update().get(pk=job.pk)
            if locked.is_finished:
                continue
            if locked.usage_event_id is not None:
                event = _job_event(locked)
                if event.status == UsageStatus.HELD:
                    continue  # the sweeper has not released it yet: next time
                locked.credits = event.credits if event.status == UsageStatus.CAPTURED else 0
            _job_finish(locked, status=JobStatus.FAILED, error=JOB_INTERRUPTED_MESSAGE)
            closed += 1
    return closed


def _job_event(job: StudioJob) -> UsageEvent:
    assert job.usage_event_id is not None  # noqa: S101 (a started job always has its hold)
    return UsageEvent.objects.select_related("hold").get(pk=job.usage_event_id)


def _job_finish(job: StudioJob, *, status: str, error: str = "") -> None:
    job.status, job.error, job.finished_at = status, error, now()
    job.save(update_fields=["status", "error", "finished_at", "credits", "progress", "outputs", "history_item_id"])


def _job_release(job: StudioJob, *, status: str, error: str) -> StudioJob:
    with transaction.atomic():
        event = _job_event(job)
        if event.status == UsageStatus.HELD:
            usage_hold_release(event=event)
        job.credits = 0
        # Keep the progress the run wrote (how far it got when it failed or was cancelled).
        job.progress = StudioJob.objects.values_list("progress", flat=True).get(pk=job.pk)
        _job_finish(job, status=status, error=error)
    return job


class _Progress:
    """The run's progress callback: writes the percentage when it moves, and stops the run when Cancel was
    pressed (checked at every report, at most every `interval` seconds)."""

    def __init__(self, job: StudioJob, interval: float = 0.25) -> None:
        self.job, self.interval = job, interval
        self.written, self.checked_at = 0, 0.0

    def __call__(self, fraction: float) -> None:
        percent = max(0, min(99, int(fraction * 100)))  # 100 is written with the result
        moment = time.monotonic()
        if percent == self.written and moment - self.checked_at < self.interval:
            return
        self.checked_at = moment
        if percent != self.written:
            # One statement both writes the progress and sees a Cancel (no row updated: it was pressed).
            if not StudioJob.objects.filter(pk=self.job.pk, cancel_requested=False).update(progress=percent):
                raise GenerationCancelled
            self.written = percent
        elif StudioJob.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise GenerationCancelled


def _generate(job: StudioJob, price: Price, provider: StudioProvider) -> list[Media]:
    model = price.provider_model_name
    options = job.options
    if job.tool == "image":
        return provider.image(model=model, prompt=job.prompt, size=options["size"], count=options["count"])
    if job.tool == "speech":
        return [provider.speech(model=model, text=job.prompt, voice=options["voice"])]
    progress = _Progress(job)
    if job.tool == "video":
        return [provider.video(model=model, prompt=job.prompt, seconds=options["seconds"], progress=progress)]
    return [provider.music(model=model, prompt=job.prompt, seconds=options["seconds"], progress=progress)]


def _store(job: StudioJob, media: list[Media]) -> list[dict[str, str]]:
    """Write the files to the history storage (before the capture's transaction: storage is not transactional; a
    capture that fails deletes them). Unguessable names under the workspace, like every history media."""
    storage = history_storage()
    stored = []
    for item in media:
        content_type = item.content_type.split(";")[0].strip().lower() or "application/octet-stream"
        extension = (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")
        name = f"history/{job.workspace_id}/{now():%Y/%m}/{secrets.token_urlsafe(16)}.{extension[:8]}"
        stored.append({"name": storage.save(name, ContentFile(item.content)), "content_type": content_type})
    return stored


def _unstore(outputs: list[dict[str, str]]) -> None:
    storage = history_storage()
    for output in outputs:
        storage.delete(output["name"])


def _job_capture(job: StudioJob, price: Price, media: list[Media]) -> StudioJob:
    outputs = _store(job, media)
    produced = len(media) if job.tool == "image" else None
    try:
        with transaction.atomic():
            event = _job_event(job)
            units = min(
                media_units(price=price, prompt=job.prompt, options=job.options, produced=produced), event.units
            )
            metered = usage_hold_capture(
                event=event,
                workspace=job.workspace,
                units=units,
                history=HistoryContent(
                    metadata={"outputs": len(outputs)},
                    media_name=outputs[0]["name"],
                    media_content_type=outputs[0]["content_type"],
                ),
            )
            job.credits, job.outputs, job.progress = metered.event.credits, outputs, 100
            job.history_item_id = (
                HistoryItem.objects.filter(usage_event_id=metered.event.pk).values_list("pk", flat=True).first()
            )
            _job_finish(job, status=JobStatus.DONE)
    except ledger.HoldNotPending:
        # The hold expired (the run outlived STUDIO_HOLD_TTL_SECONDS) and the sweeper released it: nothing charged.
        _unstore(outputs)
        job.credits, job.outputs = 0, []
        _job_finish(job, status=JobStatus.FAILED, error="The generation took too long and was not charged.")
    return job


def studio_job_run(*, job_id: int, provider: StudioProvider | None = None) -> StudioJob | None:
    """Run a queued job: call the provider, then capture with the media or release the hold. Runs in a Celery
    worker. A job runs once: `queued` → `running` is claimed in one UPDATE, so a redelivered task does nothing.
    `provider` replaces the price's (tests, the demo seeding). Returns None for an unknown job."""
    claimed = StudioJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now()
    )
    job = StudioJob.objects.select_related("workspace__organization").filter(pk=job_id).first()
    if job is None or not claimed:
        return job  # a duplicate delivery: this job already ran (or is running, or was cancelled)
    if job.cancel_requested:
        return _job_release(job, status=JobStatus.CANCELLED, error=JOB_CANCELLED_MESSAGE)
    price = Price.objects.filter(tool=job.tool, model=job.model).first()
    if price is None:
        return _job_release(
            job, status=JobStatus.FAILED, error="This model is no longer available. Nothing was charged."
        )
    try:
        media = _generate(job, price, provider or provider_for(price))
        if not media or not all(item.content for item in media):
            raise ProviderError("The model returned nothing. Nothing was charged.")
    except GenerationCancelled:
        return _job_release(job, status=JobStatus.CANCELLED, error=JOB_CANCELLED_MESSAGE)
    except ProviderError as error:
        return _job_release(job, status=JobStatus.FAILED, error=error.message[:300])
    except Exception:
        logger.exception("Studio job %s failed", job_id)
        return _job_release(job, status=JobStatus.FAILED, error=JOB_FAILED_MESSAGE)
    if StudioJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
        # Cancelled as the result came in: the member was told nothing is charged, so nothing is.
        return _job_release(job, status=JobStatus.CANCELLED, error=JOB_CANCELLED_MESSAGE)
    if job.tool == "image":
        media = media[: int(job.options["count"])]  # never more than was held for
    return _job_capture(job, price, media)


def studio_job_is_long(job_id: int) -> bool:
    """Whether the job is a long one (video, music): it reports progress and can be cancelled while it runs."""
    return StudioJob.objects.filter(pk=job_id, tool__in=LONG_TOOLS).exists()
