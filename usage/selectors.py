from __future__ import annotations

from django.db.models import QuerySet

from usage.models import Price


def price_list() -> QuerySet[Price]:
    """The prices in force, as the AI tools show them before a generation runs."""
    return Price.objects.active().order_by("tool", "credits_per_unit", "model")
