"""The plans and packs on offer at launch. Staff edit them in the admin; this list only fills an empty catalog."""

from __future__ import annotations

from billing.models import Plan, PlanKind

DEFAULT_PLANS = [
    (
        "pro",
        "Pro",
        PlanKind.MONTHLY,
        10_000,
        2_000,
        "For one busy creator: 10,000 credits a month, unused credits roll over.",
        1,
    ),
    ("teams", "Teams", PlanKind.MONTHLY, 50_000, 8_000, "For teams sharing one pool: 50,000 credits a month.", 2),
    (
        "business",
        "Business",
        PlanKind.MONTHLY,
        200_000,
        25_000,
        "For agencies with many clients: 200,000 credits a month.",
        3,
    ),
    ("pack-5k", "5,000 credits", PlanKind.PACK, 5_000, 1_200, "One-time top-up, valid 6 months.", 1),
    ("pack-25k", "25,000 credits", PlanKind.PACK, 25_000, 5_000, "One-time top-up, valid 6 months.", 2),
    ("pack-100k", "100,000 credits", PlanKind.PACK, 100_000, 18_000, "One-time top-up, valid 6 months.", 3),
]


def plans_ensure_defaults() -> None:
    """Create the launch plans that do not exist yet (by code); existing plans are left as staff edited them."""
    for code, name, kind, credits, price_cents, description, order in DEFAULT_PLANS:
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "credits": credits,
                "price_cents": price_cents,
                "description": description,
                "sort_order": order,
            },
        )
