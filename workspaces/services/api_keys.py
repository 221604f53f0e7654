"""Workspace API keys for the metering API: created and revoked by workspace admins, shown once, stored hashed."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from orgs.audit import audit_record
from orgs.models import AuditAction, User
from workspaces.models import API_KEY_PREFIX, ApiKey, Workspace, api_key_secret_hash


@transaction.atomic
def api_key_create(*, workspace: Workspace, actor: User, name: str) -> tuple[ApiKey, str]:
    """A new key for the metering API. Returns the key and its secret, which is never shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the key after the service that will use it."})
    if workspace.is_archived:
        raise ValidationError("A deleted workspace cannot get new API keys.")
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(30)}"
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name[:80],
        prefix=prefix,
        secret_hash=api_key_secret_hash(secret),
        created_by=actor,
    )
    audit_record(
        organization=workspace.organization,
        actor=actor,
        action=AuditAction.API_KEY_CREATED,
        target=api_key,
        after={"name": api_key.name, "prefix": api_key.display_prefix, "workspace": workspace.name},
    )
    return api_key, secret


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User) -> ApiKey:
    """Revoke at once: the next request with this key is refused. Revoking twice changes nothing."""
    locked = ApiKey.objects.select_for_update().select_related("workspace__organization").get(pk=api_key.pk)
    if locked.is_revoked:
        return locked
    locked.revoked_at = now()
    locked.revoked_by = actor
    locked.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        organization=locked.workspace.organization,
        actor=actor,
        action=AuditAction.API_KEY_REVOKED,
        target=locked,
        before={"name": locked.name, "prefix": locked.display_prefix, "workspace": locked.workspace.name},
    )
    return locked


API_KEY_LAST_USED_PRECISION = timedelta(minutes=1)


def api_key_mark_used(*, api_key_id: int, last_used_at: datetime | None) -> datetime | None:
    """Record that the key was used, at most once a minute (a write on every call would cost the hot path).
    Returns the new time, or None when the recorded one is recent enough."""
    at = now()
    if last_used_at is not None and at - last_used_at < API_KEY_LAST_USED_PRECISION:
        return None
    ApiKey.objects.filter(pk=api_key_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=at - API_KEY_LAST_USED_PRECISION)
    ).update(last_used_at=at)
    return at
