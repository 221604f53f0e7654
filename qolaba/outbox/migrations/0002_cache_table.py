"""The database cache table (settings.CACHES: allauth's rate limits): `migrate` makes it, so a deployment needs
no separate `createcachetable` step. Idempotent: createcachetable skips a table that exists."""

from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_outbox_message")]

    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop)]
