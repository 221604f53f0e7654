from __future__ import annotations

from django.db import models
from django.utils.timezone import now

TASK_ID_PREFIX = "outbox-"


class OutboxMessageQuerySet(models.QuerySet["OutboxMessage"]):
    def pending(self) -> OutboxMessageQuerySet:
        """Not done yet: unsent, or sent and not yet done by a worker."""
        return self.filter(done_at__isnull=True)


class OutboxMessage(models.Model):
    """One task to hand to Celery, written in the transaction whose commit it follows.

    `sent_at` is set when the relay has handed it to the broker; `done_at` when the task has done its work, which
    makes a redelivered or duplicated message a no-op (`qolaba.outbox.services.outbox_once`)."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    objects = OutboxMessageQuerySet.as_manager()

    class Meta:
        indexes = [
            # The relay's scan: only the rows not done yet, oldest first; stays tiny whatever the history.
            models.Index(fields=["id"], name="outbox_pending_idx", condition=models.Q(done_at__isnull=True)),
            models.Index(fields=["done_at"], name="outbox_done_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)} #{self.pk}"

    @property
    def celery_task_id(self) -> str:
        """The Celery task id of this message: a redelivery or a second publication carries the same id."""
        return f"{TASK_ID_PREFIX}{self.pk}"
