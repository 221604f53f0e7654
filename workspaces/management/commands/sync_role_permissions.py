"""Re-derive every user's permission rows from their roles (run after the role → permission map changes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from orgs.models import Organization
from workspaces.roles import permissions_apply


class Command(BaseCommand):
    help = "Recompute the django-guardian rows of every organization from the roles (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        for organization in Organization.objects.order_by("pk").iterator():
            permissions_apply(organization=organization)
            count += 1
        self.stdout.write(f"Permissions re-applied for {count} organization(s).")
