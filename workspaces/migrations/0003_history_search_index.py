"""Full-text search over history prompts and outputs: a GIN expression index on PostgreSQL.

The same expression is used by `workspaces.selectors.history_search` so that the planner uses the index.
SQLite (the embedded demo) has no such index; the selector falls back to a substring search there.
"""

from django.db import migrations

INDEX = "history_fulltext"
EXPRESSION = "to_tsvector('simple'::regconfig, COALESCE(prompt, '') || ' ' || COALESCE(output_text, ''))"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON workspaces_historyitem USING gin (({EXPRESSION})) "
            "WHERE deleted_at IS NULL"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0002_apikey_historyitem")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
