from django.db import migrations


def seed_prices(apps, schema_editor):
    from usage.catalog import DEFAULT_PRICES

    Price = apps.get_model("usage", "Price")
    for tool, model, unit, credits_per_unit, description in DEFAULT_PRICES:
        Price.objects.get_or_create(
            tool=tool,
            model=model,
            defaults={"unit": unit, "credits_per_unit": credits_per_unit, "description": description},
        )


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(seed_prices, migrations.RunPython.noop)]
