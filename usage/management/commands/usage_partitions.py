"""Create the usage event partitions ahead and apply retention once (what the daily task does), or list them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from usage.partitions import partitioned, partitions_list, partitions_maintain


class Command(BaseCommand):
    help = (
        "Create this month's and the next months' usage event partitions, move rows out of the default partition, "
        "and drop the months older than USAGE_RETENTION_MONTHS that nothing needs any more (PostgreSQL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="Only list the month partitions.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Also drop due months that are still needed (held events, not rolled up, open statements).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not partitioned():
            self.stdout.write("Usage events are not partitioned on this database (SQLite): nothing to do.")
            return
        if not options["list"]:
            done = partitions_maintain(force=options["force"])
            self.stdout.write(f"Created: {', '.join(done.created) or 'none'}.")
            retention = done.retention
            if retention.cutoff is None:
                self.stdout.write("Retention: off (USAGE_RETENTION_MONTHS is not set).")
            else:
                self.stdout.write(f"Retention: months before {retention.cutoff:%Y-%m} are due.")
                self.stdout.write(f"Dropped: {', '.join(retention.dropped) or 'none'}.")
                for name, reason in retention.kept.items():
                    self.stdout.write(self.style.WARNING(f"Kept {name}: {reason}."))
        for partition in partitions_list():
            self.stdout.write(f"{partition.name}: {partition.start:%Y-%m-%d} to {partition.end:%Y-%m-%d}")
