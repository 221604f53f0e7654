"""CSV exports of usage events: one row per event of a Usage tab filter, narrowed to what the user may see.

- `usage_export_events` — the events of a `UsageQuery` in a `UsageScope` (every status: captured, held and
  released), oldest first. `usage_export_count` counts them up to a bound, so deciding between the two ways below
  never counts millions of rows.
- `usage_export_lines` — the CSV, line by line (header included), from a server-side cursor: constant memory
  whatever the size. A small export is streamed by the view straight from it.
- A large one (more than `USAGE_EXPORT_SYNC_MAX_ROWS` rows) is a `UsageExport` job: `usage_export_create` (the
  audited request) enqueues `usage.tasks.usage_export_run`, which calls `usage_export_build` to write the same
  lines to a temporary file, reporting progress, and then to the private `usage_exports` storage. The file can be
  downloaded by its requester only, for `USAGE_EXPORT_TTL_HOURS`; `usage_exports_expire` (beat) deletes it then.

The columns: `time` (ISO 8601 in the organization's time zone, with its UTC offset), `workspace` (its name),
`member` (their email), `tool`, `model`, `units`, `credits`, `status`, `idempotency_key`. `credits` is what the
event stands at: captured — charged; held — reserved, not charged yet; released — 0 (nothing was charged: a
released hold gave every credit back). So the captured rows add up to the Usage tab's credits.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.timezone import now

from orgs.audit import audit_record
from orgs.models import AuditAction, Membership, Organization, User
from qolaba.outbox.services import outbox_enqueue
from qolaba.routers import replica_alias
from qolaba.spreadsheets import csv_line_writer, spreadsheet_safe
from usage.models import UsageEvent, UsageExport, UsageExportStatus, usage_export_storage
from usage.reports import UsageQuery, UsageScope, usage_filters, usage_query_parse, usage_scope_for
from workspaces.models import Workspace

logger = logging.getLogger(__name__)

EXPORT_HEADER = ("time", "workspace", "member", "tool", "model", "units", "credits", "status", "idempotency_key")
CHUNK_ROWS = 2000  # rows fetched per round trip from the server-side cursor
MAX_EXPORTS_IN_PROGRESS = 3  # per requester and organization
STALE_AFTER = timedelta(hours=6)  # a job neither finished nor failed by then was lost: it is marked failed
_COLUMNS = ("created_at", "workspace_id", "user_id", "tool", "model", "units", "credits", "status", "idempotency_key")


# --- reading --------------------------------------------------------------------------------------------------


def usage_export_events(
    *, organization: Organization, query: UsageQuery, scope: UsageScope, until: datetime | None = None
) -> QuerySet[UsageEvent]:
    """The events of the query's period (local days of the organization) and filters, narrowed to the scope, in
    time order; with `until`, only those created before it."""
    start, end = query.bounds(ZoneInfo(organization.timezone))
    if until is not None:
        end = min(end, until)
    filters = usage_filters(query, scope)
    events = UsageEvent.objects.using(replica_alias()).filter(
        organization=organization, created_at__gte=start, created_at__lt=end
    )
    if filters.workspace_ids is not None:
        events = events.filter(workspace_id__in=filters.workspace_ids)
    if filters.user_ids is not None:
        events = events.filter(user_id__in=filters.user_ids)
    if filters.tools is not None:
        events = events.filter(tool__in=filters.tools)
    if filters.models is not None:
        events = events.filter(model__in=filters.models)
    return events.order_by("created_at", "pk")


def usage_export_count(events: QuerySet[UsageEvent], *, limit: int) -> int:
    """How many events there are, counting at most `limit + 1` (a bounded count: `COUNT(*)` over a `LIMIT`)."""
    return events.order_by()[: limit + 1].count()


def _names(organization: Organization) -> tuple[dict[int, str], dict[int, str]]:
    """Workspace names and member emails of the organization (archived workspaces and former members included):
    two queries, whatever the number of events."""
    workspaces = dict(Workspace.objects.filter(organization=organization).order_by().values_list("pk", "name"))
    members = dict(
        Membership.objects.filter(organization=organization).order_by().values_list("user_id", "user__email")
    )
    return workspaces, members


def usage_export_lines(events: QuerySet[UsageEvent], *, organization: Organization) -> Iterator[str]:
    """The CSV lines (CRLF-terminated, header first) of `events`, read through a server-side cursor."""
    zone = ZoneInfo(organization.timezone)
    workspaces, members = _names(organization)
    writer = csv_line_writer()
    yield writer.writerow(EXPORT_HEADER)
    rows = events.values_list(*_COLUMNS).iterator(chunk_size=CHUNK_ROWS)
    for created_at, workspace_id, user_id, tool, model, units, credits, status, key in rows:
        yield writer.writerow(
            (
                created_at.astimezone(zone).isoformat(timespec="seconds"),
                spreadsheet_safe(workspaces.get(workspace_id, f"workspace {workspace_id}")),
                spreadsheet_safe(members.get(user_id, f"user {user_id}")),
                tool,
                spreadsheet_safe(model),
                units,
                credits,
                status,
                spreadsheet_safe(key),
            )
        )


def usage_export_filename(organization: Organization, query: UsageQuery) -> str:
    return f"{organization.slug}-usage-{query.start:%Y%m%d}-{query.end:%Y%m%d}.csv"


def usage_export_query(export: UsageExport) -> UsageQuery:
    """The export's query, read back from its stored parameters (fixed dates: the same whatever the day)."""
    return usage_query_parse(export.params, today=export.period_end).query


def usage_exports_recent(
    *, user: User, organization: Organization, limit: int = 10, exclude: UsageExport | None = None
) -> list[UsageExport]:
    exports = UsageExport.objects.of_requester(user=user, organization=organization)
    if exclude is not None:
        exports = exports.exclude(pk=exclude.pk)
    return list(exports[:limit])


# --- writing --------------------------------------------------------------------------------------------------


@transaction.atomic
def usage_export_create(*, organization: Organization, requester: User, query: UsageQuery) -> UsageExport:
    """Ask for a background export of the query (its period fixed as dates), audited; the job is enqueued once the
    request is committed. At most `MAX_EXPORTS_IN_PROGRESS` of one requester are in progress at a time."""
    in_progress = UsageExport.objects.of_requester(user=requester, organization=organization).in_progress()
    if in_progress.count() >= MAX_EXPORTS_IN_PROGRESS:
        raise ValidationError(
            f"You already have {MAX_EXPORTS_IN_PROGRESS} exports being prepared. "
            "Wait for one of them to finish, then try again.",
            code="too_many_exports",
        )
    fixed = replace(query, range="custom")
    export = UsageExport.objects.create(
        organization=organization,
        requester=requester,
        params=fixed.params(),
        period_start=query.start,
        period_end=query.end,
    )
    audit_record(
        organization=organization,
        actor=requester,
        action=AuditAction.USAGE_EXPORT_REQUESTED,
        target=export,
        after={"params": export.params},
    )
    outbox_enqueue(task="usage.tasks.usage_export_run", args=[export.pk])
    return export


def _claim(export_id: int) -> tuple[UsageExport | None, int]:
    """Start a run: the next attempt number, progress back to 0. None if the export is finished (or gone)."""
    with transaction.atomic():
        export = (
            # of=self: lock the export only, never the organization row (every charge share-locks it).
            UsageExport.objects.select_for_update(of=("self",))
            .select_related("organization", "requester")
            .filter(pk=export_id)
        ).first()
        if export is None or export.status in (UsageExportStatus.DONE, UsageExportStatus.FAILED):
            return None, 0
        export.attempt += 1
        export.status = UsageExportStatus.RUNNING
        export.rows_done = 0
        export.rows_total = None
        export.started_at = now()
        export.save(update_fields=["attempt", "status", "rows_done", "rows_total", "started_at"])
        return export, export.attempt


def _report(export: UsageExport, attempt: int, **fields: Any) -> bool:
    """Write progress if this run is still the export's latest; False if a later run took over."""
    mine = UsageExport.objects.filter(pk=export.pk, attempt=attempt, status=UsageExportStatus.RUNNING)
    return mine.update(**fields) == 1


def usage_export_build(*, export_id: int) -> UsageExport | None:
    """Write the export's file (the job's work). Idempotent: a finished export is left alone, so a redelivered
    task writes no second file; a run that finds the export running (a worker died, or a duplicate delivery)
    starts it again as a new attempt, and the older run stops at its next progress report without saving."""
    export, attempt = _claim(export_id)
    if export is None:
        return UsageExport.objects.filter(pk=export_id).first()
    organization = export.organization
    try:
        query = usage_export_query(export)
        scope = usage_scope_for(user=export.requester, organization=organization)
        events = usage_export_events(organization=organization, query=query, scope=scope, until=export.created_at)
        total = events.order_by().count()
        if not _report(export, attempt, rows_total=total):
            return export
        done = 0
        with tempfile.TemporaryFile() as scratch:
            lines = usage_export_lines(events, organization=organization)
            scratch.write(next(lines).encode())  # the header
            for line in lines:
                scratch.write(line.encode())
                done += 1
                if done % CHUNK_ROWS == 0 and not _report(export, attempt, rows_done=done):
                    return export  # a later run took over: it writes the file
            scratch.seek(0)
            name = f"{organization.pk}/{export.pk}-{attempt}-{secrets.token_urlsafe(12)}.csv"
            saved = usage_export_storage().save(name, File(scratch, name=name))
        return _finish(export.pk, attempt, saved, done)
    except Exception:
        logger.exception("usage export %s failed", export.pk)
        _report(export, attempt, status=UsageExportStatus.FAILED, error="The file could not be written.")
        return UsageExport.objects.filter(pk=export.pk).first()


def _finish(export_id: int, attempt: int, name: str, rows: int) -> UsageExport:
    storage = usage_export_storage()
    with transaction.atomic():
        export = UsageExport.objects.select_for_update().get(pk=export_id)
        if export.attempt != attempt or export.status != UsageExportStatus.RUNNING:
            transaction.on_commit(partial(storage.delete, name))  # a later run owns the export
            return export
        finished = now()
        export.file.name = name
        export.status = UsageExportStatus.DONE
        export.rows_done = export.rows_total = rows
        export.finished_at = finished
        export.expires_at = finished + timedelta(hours=settings.USAGE_EXPORT_TTL_HOURS)
        export.save(update_fields=["file", "status", "rows_done", "rows_total", "finished_at", "expires_at"])
        return export


def usage_exports_expire(*, at: datetime | None = None) -> int:
    """Delete the files of exports past their download window or of deleted organizations (the rows stay, shown as
    expired) and mark jobs that
    were lost (not finished after `STALE_AFTER`) as failed. Returns how many files were deleted."""
    at = at or now()
    storage = usage_export_storage()
    deleted = 0
    # Past their window, or of an organization that was deleted (its files must not outlive it: the purge deletes
    # the rows, and with them the only record of the files).
    expiring = (
        UsageExport.objects.filter(Q(expires_at__lte=at) | Q(organization__deleted_at__isnull=False))
        .exclude(file="")
        .values_list("pk", flat=True)
    )
    for export_id in list(expiring):
        with transaction.atomic():
            export = UsageExport.objects.select_for_update(skip_locked=True).filter(pk=export_id).first()
            if export is None or not export.file:
                continue
            name = export.file.name
            export.file = ""
            export.save(update_fields=["file"])
            transaction.on_commit(partial(storage.delete, name))
            deleted += 1
    UsageExport.objects.in_progress().filter(created_at__lte=at - STALE_AFTER).update(
        status=UsageExportStatus.FAILED, error="The export did not finish. Please start it again."
    )
    return deleted
