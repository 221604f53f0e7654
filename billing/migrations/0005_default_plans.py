"""The plans and credit packs on offer at launch (staff edit them in the admin)."""

from django.db import migrations

PLANS = [
    ("pro", "Pro", "monthly", 10_000, 2_000, "For one busy creator: 10,000 credits a month, unused credits roll over.", 1),
    ("teams", "Teams", "monthly", 50_000, 8_000, "For teams sharing one pool: 50,000 credits a month.", 2),
    ("business", "Business", "monthly", 200_000, 25_000, "For agencies with many clients: 200,000 credits a month.", 3),
    ("pack-5k", "5,000 credits", "pack", 5_000, 1_200, "One-time top-up, valid 6 months.", 1),
    ("pack-25k", "25,000 credits", "pack", 25_000, 5_000, "One-time top-up, valid 6 months.", 2),
    ("pack-100k", "100,000 credits", "pack", 100_000, 18_000, "One-time top-up, valid 6 months.", 3),
]


def add_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for code, name, kind, credits, price_cents, description, order in PLANS:
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "credits": credits,
                "price_cents": price_cents,
                "currency": "USD",
                "validity_months": 6,
                "description": description,
                "sort_order": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_plans_subscriptions_invoices")]

    operations = [migrations.RunPython(add_plans, migrations.RunPython.noop)]
