"""Writing audit events. Services call `audit_record` inside the transaction that makes the change."""

from __future__ import annotations

from typing import Any

from django.db import models

from orgs.models import AuditAction, AuditEvent, Organization, User
from qolaba.middleware import current_ip


def audit_record(
    *,
    organization: Organization | None,
    actor: User | None,
    action: AuditAction,
    target: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor,
        actor_email=actor.email if actor is not None else "",
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        before=before or {},
        after=after or {},
        ip_address=current_ip.get(),
    )
