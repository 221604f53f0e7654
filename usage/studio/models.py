"""Chat threads and their turns. Registered with the usage app (imported by `usage.models`).

A turn is one generation: its usage event (`usage_event_id`, by id: that table is partitioned) holds the estimate
while the reply streams in, then is captured at the tokens produced or released when nothing billable came back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class ChatThreadQuerySet(models.QuerySet["ChatThread"]):
    def live(self) -> ChatThreadQuerySet:
        return self.filter(deleted_at__isnull=True)

    def of_workspace(self, workspace: Any) -> ChatThreadQuerySet:
        return self.live().filter(workspace=workspace)


class ChatThread(models.Model):
    """A conversation. It belongs to one workspace and is never shown outside it; delete is soft."""

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="chat_threads")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    title = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ChatThreadQuerySet.as_manager()

    class Meta:
        app_label = "usage"
        indexes = [models.Index(fields=["workspace", "-updated_at"], name="chatthread_ws_updated")]

    def __str__(self) -> str:
        return self.title


class TurnStatus(models.TextChoices):
    QUEUED = "queued", "Waiting"
    STREAMING = "streaming", "Writing"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


FINISHED_STATUSES = frozenset({TurnStatus.DONE, TurnStatus.STOPPED, TurnStatus.FAILED})


class ChatTurn(models.Model):
    """One message of a member and the model's reply: one generation."""

    thread = models.ForeignKey(ChatThread, on_delete=models.CASCADE, related_name="turns")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    model = models.CharField(max_length=100, help_text="The price's model name (what the member picked).")
    provider = models.CharField(max_length=30, help_text="The provider that answered, as the price said then.")
    prompt = models.TextField()
    reply = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=TurnStatus.choices, default=TurnStatus.QUEUED)
    stop_requested = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)
    estimated_credits = models.BigIntegerField(help_text="Held before the run.")
    credits = models.BigIntegerField(default=0, help_text="Charged once settled (0 when released).")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    usage_event_id = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "usage"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.thread_id}/{self.pk}: {self.prompt[:40]}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Waiting"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


JOB_FINISHED_STATUSES = frozenset({JobStatus.DONE, JobStatus.CANCELLED, JobStatus.FAILED})
MEDIA_TOOLS = ("image", "video", "speech", "music")  # the Studio's media tools (`qolaba.tools.Tool` values)
LONG_TOOLS = frozenset({"video", "music"})  # run with a progress bar and a Cancel button


class StudioJobQuerySet(models.QuerySet["StudioJob"]):
    def of_workspace(self, workspace: Any) -> StudioJobQuerySet:
        return self.filter(workspace=workspace)


class StudioJob(models.Model):
    """One Image, Video, Speech or Music generation in a workspace: held at its estimate, run by a worker, then
    captured (its media stored in the history storage and its `HistoryItem` written) or released.

    `outputs` lists the stored files: `[{"name": <storage name>, "content_type": ...}]`; the history item's media is
    the first of them (the same stored file), the others are served from the job with the same permission check."""

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="studio_jobs")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    tool = models.CharField(max_length=10)
    model = models.CharField(max_length=100, help_text="The price's model name (what the member picked).")
    provider = models.CharField(max_length=30, help_text="The provider that ran it, as the price said then.")
    prompt = models.TextField()
    options = models.JSONField(default=dict, blank=True, help_text="size and count, seconds, or voice.")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100, written by the run.")
    cancel_requested = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)
    estimated_credits = models.BigIntegerField(help_text="Held before the run.")
    credits = models.BigIntegerField(default=0, help_text="Charged once settled (0 when released).")
    outputs = models.JSONField(default=list, blank=True)
    usage_event_id = models.BigIntegerField(null=True, blank=True, unique=True)
    history_item_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = StudioJobQuerySet.as_manager()

    class Meta:
        app_label = "usage"
        indexes = [
            models.Index(fields=["workspace", "tool", "-created_at"], name="studiojob_ws_tool_newest"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=["queued", "running"]),
                name="studiojob_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool} {self.pk}: {self.prompt[:40]}"

    @property
    def is_finished(self) -> bool:
        return self.status in JOB_FINISHED_STATUSES

    @property
    def is_long(self) -> bool:
        return self.tool in LONG_TOOLS

    @property
    def media(self) -> list[dict[str, Any]]:
        """The outputs as the page shows them: index, kind (image, audio, video or file) and content type."""
        shown = []
        for index, output in enumerate(self.outputs or []):
            kind = str(output.get("content_type", "")).split("/")[0]
            shown.append({"index": index, "kind": kind if kind in ("image", "audio", "video") else "file", **output})
        return shown
