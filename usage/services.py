"""Metering: every generation is charged (or held, then captured or released) through the ledger, and its usage
event and history item are written in the same database transaction as the credits move. A metering request is
answered once per Idempotency-Key (`idempotent_answer`), its answer stored with what it did."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.timezone import now

from billing import ledger
from billing.models import Hold, HoldStatus
from orgs.models import User
from usage.models import IdempotentRequest, Price, UsageEvent, UsageStatus
from usage.refusals import IdempotencyKeyReused, UnitsAboveHeld
from usage.selectors import hold_is_expired, idempotent_request_find
from workspaces.models import HistoryItem, Workspace
from workspaces.services import history_item_create


@dataclass(frozen=True)
class HistoryContent:
    prompt: str = ""
    output_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # A file already stored in the history storage (the Studio's media): the item points at it, nothing is copied.
    media_name: str = ""
    media_content_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        draft: dict[str, Any] = {"prompt": self.prompt, "output_text": self.output_text, "metadata": self.metadata}
        if self.media_name:
            draft.update(media_name=self.media_name, media_content_type=self.media_content_type)
        return draft

    def merged_with(self, later: HistoryContent | None) -> HistoryContent:
        """A hold's content completed by its capture's: what the capture says wins, the rest is kept."""
        if later is None:
            return self
        return HistoryContent(
            prompt=later.prompt or self.prompt,
            output_text=later.output_text or self.output_text,
            metadata={**self.metadata, **later.metadata},
            media_name=later.media_name or self.media_name,
            media_content_type=later.media_content_type if later.media_name else self.media_content_type,
        )


def generation_memo(tool: str, model: str, units: int) -> str:
    """The ledger memo of a generation's charge or hold."""
    return f"{tool}/{model} x {units}"[:255]


def _record(
    *, event: UsageEvent, workspace: Workspace, user: User, content: HistoryContent | None, at: datetime
) -> HistoryItem:
    content = content or HistoryContent()
    return history_item_create(
        workspace=workspace,
        author=user,
        tool=event.tool,
        model=event.model,
        credits=event.credits,
        prompt=content.prompt,
        output_text=content.output_text,
        metadata=content.metadata,
        media_name=content.media_name,
        media_content_type=content.media_content_type,
        usage_event_id=event.pk,
        created_at=at,
    )


@dataclass(frozen=True)
class Metered:
    event: UsageEvent
    available: int


def usage_charge(
    *,
    workspace: Workspace,
    user: User,
    price: Price,
    units: int,
    idempotency_key: str,
    history: HistoryContent | None = None,
    fingerprint: str | None = None,
) -> Metered:
    """Charge a finished generation at its price and record it, all in one transaction. `fingerprint`, the
    request's hash, is kept on the ledger transaction, as the one-statement charge (`usage.fastpath`) keeps it."""
    credits = price.credits_per_unit * units
    at = now()
    # No savepoint inside a caller's transaction: a refusal raises, and the caller's transaction rolls back.
    with transaction.atomic(savepoint=False):
        result = ledger.charge(
            organization=workspace.organization,
            workspace=workspace,
            user=user,
            amount=credits,
            fingerprint=fingerprint,
            memo=generation_memo(price.tool, price.model, units),
        )
        event = UsageEvent.objects.create(
            organization_id=workspace.organization_id,
            workspace=workspace,
            user=user,
            tool=price.tool,
            model=price.model,
            units=units,
            credits=credits,
            status=UsageStatus.CAPTURED,
            idempotency_key=idempotency_key,
            ledger_transaction_id=result.transaction_id,
            created_at=at,
            settled_at=at,
        )
        _record(event=event, workspace=workspace, user=user, content=history, at=at)
    return Metered(event=event, available=result.available)


def usage_hold_place(
    *,
    workspace: Workspace,
    user: User,
    price: Price,
    units: int,
    ttl: timedelta,
    idempotency_key: str,
    history: HistoryContent | None = None,
) -> Metered:
    """Reserve a long generation's price; it is captured (≤ held) or released later, or released at expiry."""
    credits = price.credits_per_unit * units
    # No savepoint inside a caller's transaction: a refusal raises, and the caller's transaction rolls back.
    with transaction.atomic(savepoint=False):
        result = ledger.hold_place(
            organization=workspace.organization,
            workspace=workspace,
            user=user,
            amount=credits,
            ttl=ttl,
            memo=generation_memo(price.tool, price.model, units),
        )
        assert result.hold is not None  # noqa: S101 (a placed hold always has its row)
        event = UsageEvent.objects.create(
            organization_id=workspace.organization_id,
            workspace=workspace,
            user=user,
            tool=price.tool,
            model=price.model,
            units=units,
            credits=credits,
            status=UsageStatus.HELD,
            idempotency_key=idempotency_key,
            ledger_transaction_id=result.transaction_id,
            hold=result.hold,
            history_draft=history.as_dict() if history is not None else None,
            created_at=result.hold.created_at,
        )
    event.hold = result.hold
    return Metered(event=event, available=result.available)


def _not_pending(event: UsageEvent) -> ledger.HoldNotPending:
    return ledger.HoldNotPending(f"This hold was already {event.get_status_display().lower()}.")


def usage_hold_capture(
    *, event: UsageEvent, workspace: Workspace, units: int | None = None, history: HistoryContent | None = None
) -> Metered:
    """Charge `units` (default: all held) of a pending hold; the rest of the held credits go back."""
    assert event.hold is not None  # noqa: S101 (callers find holds with held_event_find)
    if hold_is_expired(event):
        raise ledger.HoldNotPending("This hold expired; it is released, never captured.")
    units = event.units if units is None else units
    if units > event.units:
        raise UnitsAboveHeld(f"Cannot capture {units} units: only {event.units} were held.")
    at = now()
    with transaction.atomic():
        locked = UsageEvent.objects.select_for_update().get(pk=event.pk)
        if locked.status != UsageStatus.HELD:
            raise _not_pending(locked)
        credits = locked.credits // locked.units * units  # the price per unit when the hold was placed
        result = ledger.hold_capture(hold=event.hold, amount=credits)
        locked.status = UsageStatus.CAPTURED
        locked.units, locked.credits, locked.settled_at = units, credits, at
        locked.ledger_transaction_id = result.transaction_id
        draft = HistoryContent(**locked.history_draft) if locked.history_draft else HistoryContent()
        locked.history_draft = None
        locked.save(update_fields=["status", "units", "credits", "settled_at", "ledger_transaction", "history_draft"])
        _record(event=locked, workspace=workspace, user=locked.user, content=draft.merged_with(history), at=at)
    return Metered(event=locked, available=result.available)


def usage_hold_release(*, event: UsageEvent) -> UsageEvent:
    """Give a pending hold's credits back. Releasing a released hold changes nothing; a captured one is refused."""
    assert event.hold_id is not None  # noqa: S101
    with transaction.atomic():
        locked = UsageEvent.objects.select_for_update(of=("self",)).select_related("hold").get(pk=event.pk)
        if locked.status == UsageStatus.RELEASED:
            return locked
        if locked.status != UsageStatus.HELD:
            raise _not_pending(locked)
        assert locked.hold is not None  # noqa: S101
        result = ledger.hold_release(hold=locked.hold)
        locked.status, locked.credits, locked.settled_at = UsageStatus.RELEASED, 0, now()
        locked.ledger_transaction_id = result.transaction_id
        locked.history_draft = None
        locked.save(update_fields=["status", "credits", "settled_at", "ledger_transaction", "history_draft"])
    return locked


def holds_expire(*, at: datetime | None = None) -> int:
    """Release every pending hold past its expiry, with its usage event (the scheduled sweeper). Returns how many."""
    released = 0
    expired = Hold.objects.filter(status=HoldStatus.PENDING, expires_at__lte=at or now()).select_related(
        "organization", "workspace"
    )
    for hold in expired:
        event = UsageEvent.objects.filter(hold=hold).first()
        try:
            if event is not None:
                usage_hold_release(event=event)
            else:
                ledger.hold_release(hold=hold)  # a hold placed outside the metering API
        except ledger.HoldNotPending:
            continue  # captured or released meanwhile
        released += 1
    return released


# --- idempotency ---------------------------------------------------------------------------------------------


def request_hash(operation: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps({"op": operation, **payload}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def _replay(stored: IdempotentRequest | None, request_hash: str) -> Answer | None:
    """The stored answer replayed, when this is the request it answered; refused when the key answered another."""
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request; use a new key for a new request."
        )
    return Answer(stored.status_code, stored.response, replayed=True)


def idempotent_answer(
    *, workspace: Workspace, key: str, request_hash: str, produce: Callable[[], tuple[int, dict[str, Any]]]
) -> Answer:
    """Answer a request once per Idempotency-Key.

    A key already answered is replayed. Otherwise `produce` runs and its answer is stored under the key in the
    same transaction, *last*: credits are locked before the key, in the same order as the one-statement charge
    (`usage.fastpath`), so the two paths never wait for each other in a cycle. A concurrent request with the same
    key blocks on the key's unique index until the first commits; its own work is then rolled back (the insert
    fails) and it replays the first one's answer. A refusal is not stored, so after adding credits the same key
    can be retried."""
    replay = _replay(idempotent_request_find(workspace=workspace, key=key), request_hash)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            status_code, body = produce()
            IdempotentRequest.objects.create(
                workspace=workspace, key=key, request_hash=request_hash, status_code=status_code, response=body
            )
    except Exception:
        # Whatever stopped this one (the key's unique index, a hold a concurrent retry just captured, credits it
        # just spent), a concurrent request with the same key that committed meanwhile has the answer.
        replay = _replay(idempotent_request_find(workspace=workspace, key=key), request_hash)
        if replay is None:
            raise
        return replay
    return Answer(status_code, body)


IDEMPOTENCY_RETENTION = timedelta(days=30)


def idempotent_requests_prune(*, before: datetime | None = None) -> int:
    """Forget stored answers older than the retention (a retry that late is a new request)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=before or now() - IDEMPOTENCY_RETENTION).delete()
    return deleted
