"""Bring the usage roll-up up to date once (what the beat task does every 30 s), or rebuild it from the events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orgs.models import Organization
from usage.rollup import rollup_rebuild, rollup_update


class Command(BaseCommand):
    help = (
        "Roll up the usage events once (as the scheduled task does), or with --rebuild compute the roll-up again "
        "from the events (all of it, or one organization's with --org)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="Compute the roll-up again from the events.")
        parser.add_argument("--org", help="With --rebuild: only this organization (slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["org"] and not options["rebuild"]:
            raise CommandError("--org goes with --rebuild (a run always covers every organization).")
        if options["rebuild"]:
            organization = None
            if options["org"]:
                organization = Organization.objects.filter(slug=options["org"]).first()
                if organization is None:
                    raise CommandError(f"No organization with slug {options['org']!r}.")
            run = rollup_rebuild(organization=organization)
            scope = f"organization {organization.slug}" if organization is not None else "every organization"
            self.stdout.write(f"Rebuilt the usage roll-up of {scope} from the events.")
        else:
            run = rollup_update()
            if not run.ran:
                self.stdout.write("Another roll-up run is in progress; nothing done.")
                return
        self.stdout.write(
            self.style.SUCCESS(
                f"Usage roll-up up to date: watermark {run.previous} -> {run.watermark}, "
                f"{run.recomputed} changed bucket(s) recomputed, {run.added} row(s) added to."
            )
        )
