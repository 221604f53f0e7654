"""Check every ledger invariant; exit non-zero with a report if any is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Account, LedgerTransaction
from billing.reconcile import reconcile
from orgs.models import Organization


class Command(BaseCommand):
    help = "Verify the credits ledger: balanced transactions, cached balances, holds, references."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Only this organization (slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = None
        if options["org"]:
            organization = Organization.objects.filter(slug=options["org"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['org']!r}.")
        problems = reconcile(organization=organization)
        scope = Account.objects.all() if organization is None else Account.objects.filter(organization=organization)
        txns = LedgerTransaction.objects.filter(**({} if organization is None else {"organization": organization}))
        self.stdout.write(f"Checked {txns.count()} transactions on {scope.count()} accounts.")
        if problems:
            for problem in problems:
                self.stderr.write(f"  - {problem}")
            raise CommandError(f"{len(problems)} ledger invariant(s) broken.")
        self.stdout.write(self.style.SUCCESS("The ledger reconciles: every invariant holds."))
