"""Build (or top up) a realistic demo: organizations, workspaces, members of every role, the price list, an API
key per workspace, an admin key per organization, and a few months of usage and history.

Idempotent: running it again reuses what exists and creates only what is missing. The one exception is the keys:
their secrets are stored hashed, so `--json` (which prints them) revokes the demo keys and makes new ones.
"""

from __future__ import annotations

import json
import sys
from contextlib import redirect_stdout
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from billing.catalog import plans_ensure_defaults
from orgs.models import Organization, User
from qolaba.demo.assets import admin_key_issue, api_keys_issue
from qolaba.demo.organizations import DEMO, DEMO_PASSWORD, demo_summary, organization_seed
from qolaba.demo.studio import studio_seed
from qolaba.demo.usage import UsageSeeded, demo_holds_release_expired, statements_seed, usage_seed
from qolaba.middleware import current_ip
from usage.catalog import prices_ensure_defaults
from usage.rollup import rollup_rebuild

DEMO_IP = "198.51.100.24"


class Command(BaseCommand):
    help = (
        "Create the demo organizations, workspaces, users, API keys and months of usage (idempotent). "
        "--json prints what exists, with a new working API key per workspace and admin key per organization."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the demo's users, orgs and workspaces as JSON, with a new API key per workspace and a new "
            "admin key per organization (the previous demo keys are revoked).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api_keys: dict[int, str] = {}
        admin_keys: dict[str, str] = {}
        usage: dict[str, UsageSeeded] = {}
        organizations: list[Organization] = []
        statements: dict[str, int] = {}
        chats: dict[str, int] = {}
        # Emails sent while seeding (console backend in development) must not mix with the JSON on stdout.
        # The demo's audit events carry an address, as the ones of real requests do (a documentation range).
        ip_token = current_ip.set(DEMO_IP)
        try:
            with redirect_stdout(sys.stderr), transaction.atomic():
                plans_ensure_defaults()
                prices_ensure_defaults()
                for spec in DEMO:
                    organization = organization_seed(spec)
                    owner = User.objects.get(email__iexact=spec.owner.email)
                    api_keys |= api_keys_issue(organization=organization, owner=owner, rotate=options["json"])
                    admin_key = admin_key_issue(organization=organization, owner=owner, rotate=options["json"])
                    if admin_key is not None:
                        admin_keys[organization.slug] = admin_key
                    demo_holds_release_expired(organization=organization)
                    usage[spec.slug] = usage_seed(organization=organization)
                    statements[spec.slug] = statements_seed(organization=organization)
                    chats[spec.slug] = studio_seed(organization=organization)
                    organizations.append(organization)
        finally:
            current_ip.reset(ip_token)
        # The seeding backdates the events it wrote (their created_at), which moves them to other buckets: the
        # roll-up follows changes of an event, not moves, so the honest answer is to rebuild what the demo touched.
        for organization in organizations:
            rollup_rebuild(organization=organization)
        summary = demo_summary(api_keys, admin_keys)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Every demo user's password: " + DEMO_PASSWORD))
        for user in summary["users"]:
            self.stdout.write(f"  {user['email']:<28} {user['role']:<7} in {user['org']}")
        for slug, seeded in usage.items():
            if seeded.events:
                self.stdout.write(
                    f"  {slug}: {seeded.events} generations of usage and history seeded "
                    f"in {seeded.workspaces} workspaces ({seeded.files} with a picture or a tune)"
                )
        for slug, count in chats.items():
            if count:
                self.stdout.write(f"  {slug}: {count} chat turns in the Studio (demo model)")
        for slug, count in statements.items():
            if count:
                self.stdout.write(f"  {slug}: {count} monthly statements closed")
        self.stdout.write(
            "  API keys: `seed_demo --json` prints a working key per workspace and an admin key per organization "
            "(it replaces the demo keys)."
        )
