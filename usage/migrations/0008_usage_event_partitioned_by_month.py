"""Usage events become a table partitioned by month on `created_at` (PostgreSQL declarative partitioning).

PostgreSQL (in this migration's transaction, the table locked while its rows are copied):

1. the table, its indexes and its sequence are renamed out of the way (`…_unpartitioned`);
2. a new `usage_usageevent` is created `PARTITION BY RANGE (created_at)` with the same columns, defaults
   (`created_seq` / `changed_seq` included), CHECK constraints and identity column;
3. the primary key becomes `(id, created_at)` — PostgreSQL requires the partition key in every unique constraint
   of a partitioned table. `id` stays unique because only the table's identity sequence numbers rows (nothing
   inserts an id of its own); no other unique constraint exists on the table (idempotency is enforced by
   `usage_idempotentrequest` and the ledger, which are not partitioned), and the migration refuses to run if
   one appears;
4. every other index and every trigger (the `changed_seq` trigger of 0005: PostgreSQL 13+ clones row triggers of
   a partitioned table onto each partition) is created again from its own definition (`pg_get_indexdef`,
   `pg_get_triggerdef`), so an index or trigger added later by another migration is kept too;
5. one partition per UTC month that holds rows, plus this month and the next three, plus a DEFAULT partition
   (an insert never fails for want of a partition; `usage.partitions` moves such rows into their month);
6. the rows are copied with every column as it was (`created_seq` / `changed_seq` too: the roll-up sees no
   change), the sequence continues after the highest id, the old table is dropped.

The reverse turns it back into a plain table the same way. SQLite (the demo) keeps its plain table: nothing to do.
"""

from django.db import migrations, models

TABLE = "usage_usageevent"
OLD = f"{TABLE}_unpartitioned"
AHEAD_MONTHS = 3  # as usage.partitions creates them; written out here so the migration never changes


def _rows(cursor, sql, params=None):
    cursor.execute(sql, params or [])
    return cursor.fetchall()


def _definitions(cursor, table):
    """The table's secondary index and trigger definitions, as CREATE statements; refuses what it cannot keep."""
    unique = _rows(
        cursor,
        """
        SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary
        """,
        [table],
    )
    if unique:
        raise RuntimeError(
            f"{table} has unique indexes {unique}: a partitioned table needs created_at in each; decide how to "
            "keep the guarantee before partitioning."
        )
    referenced = _rows(cursor, "SELECT conname FROM pg_constraint WHERE confrelid = %s::regclass", [table])
    if referenced:
        raise RuntimeError(f"foreign keys point to {table}: {referenced}")
    indexes = _rows(
        cursor,
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY c.relname
        """,
        [table],
    )
    triggers = _rows(
        cursor,
        """
        SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname
        """,
        [table],
    )
    return indexes, triggers


def _rebuild(schema_editor, *, partitioned):
    execute = schema_editor.execute
    with schema_editor.connection.cursor() as cursor:
        execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        indexes, triggers = _definitions(cursor, TABLE)
        (sequence,) = _rows(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])[0]
        execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        (primary,) = _rows(
            cursor, "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [OLD]
        )[0]
        for name in [primary, *(name for name, _ in indexes)]:
            execute(f"ALTER INDEX {name} RENAME TO {name[:50]}_unpart")
        for name, _ in triggers:
            execute(f"DROP TRIGGER {name} ON {OLD}")

        like = f"LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING STORAGE"
        if partitioned:
            execute(f"CREATE TABLE {TABLE} ({like}) PARTITION BY RANGE (created_at)")
            execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {primary} PRIMARY KEY (id, created_at)")
            months = [
                row[0]
                for row in _rows(
                    cursor,
                    f"""
                    SELECT DISTINCT date_trunc('month', created_at, 'UTC') FROM {OLD}
                    UNION
                    SELECT date_trunc('month', now(), 'UTC') + make_interval(months => ahead)
                    FROM generate_series(0, %s) ahead
                    ORDER BY 1
                    """,
                    [AHEAD_MONTHS],
                )
            ]
            for month in months:
                name = f"{TABLE}_p{month:%Y_%m}"
                execute(
                    f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s::timestamptz "
                    "+ INTERVAL '1 month')",
                    [month, month],
                )
            execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        else:
            execute(f"CREATE TABLE {TABLE} ({like})")
            execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {primary} PRIMARY KEY (id)")
        for _, definition in indexes:
            execute(definition)

        execute(f"INSERT INTO {TABLE} SELECT * FROM {OLD}")
        new_sequence = _rows(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])[0][0]
        execute(
            f"SELECT setval(%s, COALESCE((SELECT MAX(id) FROM {OLD}), 0) + 1, false)",
            [new_sequence],
        )
        execute(f"DROP TABLE {OLD}")
        execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {sequence.split('.')[-1]}")
        for _, definition in triggers:
            execute(definition)
        execute(f"ANALYZE {TABLE}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):

    dependencies = [
        ("usage", "0007_usage_export"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerollupstate",
            name="events_from",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="Usage events before this time were dropped (retention); the roll-up keeps their totals.",
            ),
        ),
        migrations.RunPython(partition, unpartition),
    ]
