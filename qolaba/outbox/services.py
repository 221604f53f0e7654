"""Write, relay and settle outbox messages.

- `outbox_enqueue` writes a message in the caller's transaction and, once that commits, tries to relay it at once
  (best effort: a broker outage is logged, never raised into the request).
- `outbox_relay` (beat, every few seconds, and the after-commit attempt) hands unsent messages to Celery. Rows are
  claimed with `FOR UPDATE SKIP LOCKED`, so two relays never publish the same row at the same time; a message
  published but not done after `OUTBOX_REDELIVER_AFTER_SECONDS` (lost by the broker) is published again.
- `outbox_once` makes a task's work happen once per message: a redelivered or republished message finds it done.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from celery import Task, current_app
from celery.exceptions import NotRegistered
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from qolaba.outbox.models import TASK_ID_PREFIX, OutboxMessage

logger = logging.getLogger(__name__)

# What a broker (or its Redis result backend) raises when it cannot be reached.
BROKER_DOWN = (BrokerError, RedisConnectionError, RedisTimeoutError, OSError)
# After a failed after-commit relay, this process leaves relaying to the beat task for a few seconds, so that a
# broker outage costs the requests one failed connection attempt per window, not one each.
_AFTER_COMMIT_BACKOFF_SECONDS = 5.0
_after_commit_paused_until = 0.0


def outbox_enqueue(*, task: str, args: Sequence[Any] = ()) -> OutboxMessage:
    """Enqueue the Celery task named `task` with JSON `args`, as part of the current transaction: it is sent only if
    that transaction commits, and it is not lost if the broker is down when it does."""
    message = OutboxMessage.objects.create(task=task, args=list(args))
    transaction.on_commit(partial(outbox_relay_after_commit, ids=[message.pk]), robust=True)
    return message


def outbox_relay_after_commit(*, ids: Sequence[int]) -> int:
    """The immediate, best-effort relay of the messages a transaction just committed. Never raises: whatever it
    could not send, the beat relay sends."""
    global _after_commit_paused_until
    if time.monotonic() < _after_commit_paused_until:
        return 0
    try:
        sent, broker_down = _relay(ids=ids)
    except Exception:  # the request must not fail after its work committed: the beat relay tries again
        logger.exception("outbox: relaying after commit failed; the beat relay will send %s", list(ids))
        return 0
    if broker_down:
        _after_commit_paused_until = time.monotonic() + _AFTER_COMMIT_BACKOFF_SECONDS
    return sent


def outbox_relay(*, limit: int = 200) -> int:
    """Hand due messages to Celery, oldest first (beat). Returns how many were published."""
    sent, _ = _relay(ids=None, limit=limit)
    return sent


def _task(name: str) -> Task:
    """The registered task called `name`. The services name their tasks instead of importing them, so a process that
    never imported the task's module (a web process: the demo runs tasks in-process) imports it here; a task's name is
    its module and function (`orgs.tasks.invitation_email_send`).

    Only that module: Celery's `loader.import_default_modules()` (what this did before) also sends `import_modules`,
    and Celery's Django fix-up answers it by setting Django up again, which in a prefork worker's child cut it off
    from its parent: the first task a child ran that enqueued another (a credit alert fired by beat) never reported
    back, and that worker ran nothing more."""
    if name not in current_app.tasks:
        try:
            importlib.import_module(name.rpartition(".")[0])
        except ImportError:
            raise LookupError(f"No task is called {name!r}.") from None
    try:
        return current_app.tasks[name]
    except NotRegistered:
        raise LookupError(f"No task is called {name!r}.") from None


def _relay(*, ids: Sequence[int] | None, limit: int = 200) -> tuple[int, bool]:
    if current_app.conf.task_always_eager:
        return _relay_eagerly(ids=ids, limit=limit), False
    sent = 0
    stamp = now()
    redeliver_before = stamp - timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS)
    with transaction.atomic():
        due = (
            OutboxMessage.objects.pending()
            .filter(attempts__lt=settings.OUTBOX_MAX_ATTEMPTS)
            .filter(Q(sent_at__isnull=True) | Q(sent_at__lt=redeliver_before))
            .order_by("pk")
            .select_for_update(skip_locked=True)
        )
        if ids is not None:
            due = due.filter(pk__in=ids)
        for message in due[:limit]:
            try:
                # A savepoint: a task that runs in-process (eager, the demo) and fails undoes only its own work.
                with transaction.atomic():
                    # No result is wanted: publishing then needs nothing from the result backend (whose Redis
                    # consumer would otherwise retry for 20 s when Redis is down).
                    _task(message.task).apply_async(
                        args=message.args, task_id=message.celery_task_id, retry=False, ignore_result=True
                    )
            except BROKER_DOWN as error:
                message.last_error = f"{type(error).__name__}: {error}"[:2000]
                message.save(update_fields=["last_error"])  # an outage does not count against the message
                logger.warning("outbox: the broker is unreachable (%s); %s waits for the next relay", error, message)
                return sent, True
            except Exception as error:
                message.attempts += 1
                message.last_error = f"{type(error).__name__}: {error}"[:2000]
                message.save(update_fields=["attempts", "last_error"])
                logger.exception("outbox: %s failed", message)
                continue
            message.attempts += 1
            message.sent_at = now()
            message.last_error = ""
            message.save(update_fields=["attempts", "sent_at", "last_error"])
            sent += 1
    return sent, False


def _relay_eagerly(*, ids: Sequence[int] | None, limit: int) -> int:
    """Eager mode (the demo, tests): claim the due messages in a short transaction, then run each task in-process
    after it, outside any transaction of the relay's, as a worker would (a long task's progress is visible to other
    requests while it runs). A task that fails is left unsent with its error, for the next relay."""
    with transaction.atomic():
        redeliver_before = now() - timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS)
        due = (
            OutboxMessage.objects.pending()
            .filter(attempts__lt=settings.OUTBOX_MAX_ATTEMPTS)
            .filter(Q(sent_at__isnull=True) | Q(sent_at__lt=redeliver_before))
        )
        if ids is not None:
            due = due.filter(pk__in=ids)
        claimed = list(due.order_by("pk").select_for_update(skip_locked=True)[:limit])
        for message in claimed:
            message.attempts += 1
            message.sent_at = now()
            message.last_error = ""
            message.save(update_fields=["attempts", "sent_at", "last_error"])
    ran = 0
    for message in claimed:
        try:
            _task(message.task).apply_async(args=message.args, task_id=message.celery_task_id, ignore_result=True)
        except Exception as error:
            error_text = f"{type(error).__name__}: {error}"[:2000]
            OutboxMessage.objects.filter(pk=message.pk).update(sent_at=None, last_error=error_text)
            logger.exception("outbox: %s failed", message)
            continue
        ran += 1
    return ran


def _message_pk(task_id: str | None) -> int | None:
    if not task_id or not task_id.startswith(TASK_ID_PREFIX):
        return None
    try:
        return int(task_id.removeprefix(TASK_ID_PREFIX))
    except ValueError:
        return None


@contextmanager
def outbox_once(task_id: str | None) -> Iterator[bool]:
    """Do a task's work once per outbox message: `with outbox_once(self.request.id) as todo: if todo: ...`.

    Opens a transaction and locks the message row: a duplicate delivered at the same time waits, then finds the
    message done and gets False. The work and the mark commit together; if the work raises, neither does and a
    redelivery does it again. A task run without a message (called directly) always gets True. Work outside the
    database (an email) that succeeded just before a crash is repeated by the redelivery: the window is the
    commit after the send."""
    pk = _message_pk(task_id)
    with transaction.atomic():
        if pk is None:
            yield True
            return
        message = OutboxMessage.objects.select_for_update().filter(pk=pk).first()
        if message is None or message.done_at is not None:  # pruned rows were done long ago
            yield False
            return
        yield True
        message.done_at = now()
        message.save(update_fields=["done_at"])


def outbox_prune(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete the messages done longer ago than `older_than`. Returns how many."""
    deleted, _ = OutboxMessage.objects.filter(done_at__lt=now() - older_than).delete()
    return deleted
