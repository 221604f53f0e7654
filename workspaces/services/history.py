"""A workspace's history: the content of each generation (written inside the charge's transaction) and its deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.files import File
from django.db import transaction
from django.utils.timezone import now

from orgs.audit import audit_record
from orgs.models import AuditAction, User
from workspaces.models import HistoryItem, Workspace

HISTORY_PROMPT_MAX = 100_000
HISTORY_OUTPUT_MAX = 500_000


def history_item_create(
    *,
    workspace: Workspace,
    author: User,
    tool: str,
    model: str,
    credits: int,
    prompt: str = "",
    output_text: str = "",
    metadata: dict[str, Any] | None = None,
    media: File[Any] | None = None,
    media_content_type: str = "",
    media_name: str = "",
    usage_event_id: int | None = None,
    created_at: datetime | None = None,
) -> HistoryItem:
    """Record a generation's content in its workspace (called inside the charge's transaction). The media is either
    a `File` to store, or `media_name`: a file already in the history storage (written before the transaction)."""
    item = HistoryItem(
        organization_id=workspace.organization_id,
        workspace=workspace,
        author=author,
        tool=tool,
        model=model,
        credits=credits,
        prompt=prompt[:HISTORY_PROMPT_MAX],
        output_text=output_text[:HISTORY_OUTPUT_MAX],
        metadata=metadata or {},
        media_content_type=media_content_type if media is not None or media_name else "",
        usage_event_id=usage_event_id,
        created_at=created_at or now(),
    )
    if media is not None:
        item.media.save(media.name or "media.bin", media, save=False)
    elif media_name:
        item.media.name = media_name
    item.save(force_insert=True)
    return item


@transaction.atomic
def history_item_delete(*, item: HistoryItem, actor: User) -> HistoryItem:
    """Soft delete: hidden from History at once; the usage event and the credits it cost stay for reports. Audited:
    the workspace's owners can see who removed a generation's content (once; deleting again changes nothing)."""
    locked = (
        HistoryItem.objects.select_for_update(of=("self",))
        .select_related("workspace__organization", "author")
        .get(pk=item.pk)
    )
    if locked.is_deleted:
        return locked
    locked.deleted_at = now()
    locked.deleted_by = actor
    locked.save(update_fields=["deleted_at", "deleted_by"])
    audit_record(
        organization=locked.workspace.organization,
        actor=actor,
        action=AuditAction.HISTORY_ITEM_DELETED,
        target=locked,
        before={
            "workspace": locked.workspace.name,
            "author": locked.author.email if locked.author is not None else "",
            "tool": locked.tool,
            "model": locked.model,
            "created_at": locked.created_at.isoformat(),
        },
    )
    return locked
