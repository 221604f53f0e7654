from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from orgs.models import Membership, MembershipStatus


def memberships_for_menu(*, user: Any) -> QuerySet[Membership]:
    """The user's live organizations with their role, for the profile menu and the organization list."""
    return (
        Membership.objects.filter(
            user=user,
            status=MembershipStatus.ACTIVE,
            organization__deleted_at__isnull=True,
            organization__user_permissions__user=user,
            organization__user_permissions__permission__codename="view_organization",
        )
        .select_related("organization")
        .order_by("organization__name")
    )
