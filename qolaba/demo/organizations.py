"""The demo's organizations: who is in them, their workspaces, plan, credit mode, budgets and limits, built through
the same services the app uses (so every row keeps the invariants the ledger and reconciliation check)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from allauth.account.models import EmailAddress

from billing.models import Plan, Subscription
from billing.services import (
    credit_mode_switch,
    credits_transfer,
    invoice_mark_paid,
    plan_subscribe,
    workspace_limit_set,
)
from orgs.models import CreditMode, Membership, Organization, OrganizationRole, User
from qolaba.lifecycle import organization_create, workspace_create
from usage.models import ClientRate
from usage.statements import client_rate_set
from workspaces.models import Workspace, WorkspaceRole
from workspaces.services import member_add, workspace_member_set

DEMO_PASSWORD = "qolaba-demo-2026"  # noqa: S105 (published demo credentials)


@dataclass(frozen=True)
class DemoMember:
    email: str
    name: str
    role: OrganizationRole
    workspaces: dict[str, WorkspaceRole] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoOrganization:
    slug: str
    name: str
    timezone: str
    primary_workspace: str
    workspaces: list[tuple[str, str]]
    owner: DemoMember
    members: list[DemoMember]
    plan: str = "pro"
    credit_mode: str = CreditMode.SHARED
    budgets: dict[str, int] = field(default_factory=dict)
    member_limits: dict[tuple[str, str], int] = field(default_factory=dict)
    client_rates: dict[str, tuple[str, str]] = field(default_factory=dict)  # workspace -> (per 1,000 credits, currency)


DEMO = [
    DemoOrganization(
        slug="northwind",
        name="Northwind Creative",
        timezone="Europe/London",
        primary_workspace="Northwind HQ",
        workspaces=[
            ("Nike Spring Campaign", "Client workspace: visuals and video for the spring launch."),
            ("Lumen Skincare Launch", "Client workspace: copy, product shots and voice-overs."),
            ("GPT vs Claude Lab", "R&D: side-by-side model experiments, no production work."),
        ],
        owner=DemoMember("owner@northwind.test", "Olivia Northwind", OrganizationRole.OWNER),
        plan="teams",
        member_limits={("member@northwind.test", "Nike Spring Campaign"): 2_000},
        client_rates={"Nike Spring Campaign": ("15.00", "GBP")},
        members=[
            DemoMember("admin@northwind.test", "Adam Northwind", OrganizationRole.ADMIN),
            DemoMember(
                "member@northwind.test",
                "Maya Designer",
                OrganizationRole.MEMBER,
                {"Nike Spring Campaign": WorkspaceRole.MEMBER, "Lumen Skincare Launch": WorkspaceRole.MEMBER},
            ),
            DemoMember(
                "viewer@northwind.test",
                "Victor Client",
                OrganizationRole.MEMBER,
                {"Nike Spring Campaign": WorkspaceRole.VIEWER},
            ),
            DemoMember(
                "lead@northwind.test",
                "Leah Research",
                OrganizationRole.MEMBER,
                {"GPT vs Claude Lab": WorkspaceRole.ADMIN, "Nike Spring Campaign": WorkspaceRole.MEMBER},
            ),
            DemoMember(
                "consultant@bluepeak.test",
                "Casey Consultant",
                OrganizationRole.MEMBER,
                {"Lumen Skincare Launch": WorkspaceRole.VIEWER},
            ),
        ],
    ),
    DemoOrganization(
        slug="bluepeak",
        name="Bluepeak Consulting",
        # UTC+05:30: days and months cut at 18:30 UTC, so the demo shows usage and statements off the UTC hour.
        timezone="Asia/Kolkata",
        primary_workspace="Bluepeak HQ",
        workspaces=[
            ("Q3 Audit - Harbor Bank", "Engagement workspace, confidential to the audit team."),
            ("Bluepeak Marketing", "Department workspace for the marketing team."),
        ],
        owner=DemoMember("owner@bluepeak.test", "Omar Bluepeak", OrganizationRole.OWNER),
        plan="pro",
        credit_mode=CreditMode.BUDGET,
        budgets={"Q3 Audit - Harbor Bank": 2_000, "Bluepeak Marketing": 3_000},
        client_rates={"Q3 Audit - Harbor Bank": ("22.50", "USD")},
        members=[
            DemoMember(
                "consultant@bluepeak.test",
                "Casey Consultant",
                OrganizationRole.MEMBER,
                {"Q3 Audit - Harbor Bank": WorkspaceRole.MEMBER, "Bluepeak Marketing": WorkspaceRole.VIEWER},
            ),
        ],
    ),
]


def _demo_user(member: DemoMember) -> User:
    user = User.objects.filter(email__iexact=member.email).first()
    if user is None:
        user = User.objects.create_user(member.email, DEMO_PASSWORD, name=member.name)
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def organization_seed(spec: DemoOrganization) -> Organization:
    """The organization of `spec`, created or completed (idempotent)."""
    owner = _demo_user(spec.owner)
    organization = Organization.objects.filter(slug=spec.slug).first()
    if organization is None:
        organization = organization_create(
            name=spec.name, owner=owner, timezone=spec.timezone, primary_workspace_name=spec.primary_workspace
        )
        if organization.slug != spec.slug:
            Organization.objects.filter(pk=organization.pk).update(slug=spec.slug)
            organization.refresh_from_db()
    workspaces = {ws.name: ws for ws in organization.workspaces.all()}
    for name, description in spec.workspaces:
        if name not in workspaces:
            workspaces[name] = workspace_create(
                organization=organization, name=name, description=description, created_by=owner
            )
    for member in spec.members:
        user = _demo_user(member)
        if not Membership.objects.filter(organization=organization, user=user).exists():
            member_add(organization=organization, user=user, role=member.role, actor=owner)
        for workspace_name, role in member.workspaces.items():
            workspace_member_set(workspace=workspaces[workspace_name], user=user, role=role, actor=owner)
    _seed_credits(spec, organization, owner, workspaces)
    for workspace_name, (rate, currency) in spec.client_rates.items():
        if not ClientRate.objects.filter(workspace=workspaces[workspace_name]).exists():
            client_rate_set(
                workspace=workspaces[workspace_name], rate_per_1000=Decimal(rate), currency=currency, actor=owner
            )
    return organization


def _seed_credits(
    spec: DemoOrganization, organization: Organization, owner: User, workspaces: dict[str, Workspace]
) -> None:
    """A paid plan, the credit mode and budgets of the spec — once (an organization with a plan is left alone)."""
    if Subscription.objects.filter(organization=organization).exists():
        return
    invoice = plan_subscribe(
        organization=organization, plan=Plan.objects.get(code=spec.plan), actor=owner, gateway_code="manual"
    )
    invoice_mark_paid(invoice=invoice, actor=None)
    if spec.credit_mode != organization.credit_mode:
        credit_mode_switch(organization=organization, mode=spec.credit_mode, actor=owner)
        organization.refresh_from_db()
    primary = next(ws for ws in workspaces.values() if ws.is_primary)
    for workspace_name, amount in spec.budgets.items():
        credits_transfer(
            organization=organization, source=primary, target=workspaces[workspace_name], amount=amount, actor=owner
        )
    for (email, workspace_name), limit in spec.member_limits.items():
        workspace_limit_set(
            workspace=workspaces[workspace_name], user=User.objects.get(email=email), monthly_limit=limit, actor=owner
        )


def demo_summary(api_keys: dict[int, str] | None = None, admin_keys: dict[str, str] | None = None) -> dict[str, Any]:
    """What the demo holds, in the shape `seed_demo --json` prints (`api_keys`: workspace id -> key secret;
    `admin_keys`: organization slug -> admin key secret)."""
    api_keys = api_keys or {}
    admin_keys = admin_keys or {}
    users = []
    orgs = []
    for spec in DEMO:
        organization = Organization.objects.get(slug=spec.slug)
        orgs.append(
            {
                "slug": organization.slug,
                "name": organization.name,
                "admin_key": admin_keys.get(organization.slug),
                "workspaces": [
                    {
                        "id": ws.pk,
                        "api_key": api_keys.get(ws.pk),
                        "slug": ws.slug,
                        "name": ws.name,
                        "is_primary": ws.is_primary,
                    }
                    for ws in Workspace.objects.live().filter(organization=organization).order_by("-is_primary", "name")
                ],
            }
        )
        memberships = Membership.objects.active().filter(organization=organization).select_related("user")
        for membership in memberships.order_by("-role", "user__email"):
            reachable = Workspace.objects.for_user(membership.user).filter(organization=organization)
            users.append(
                {
                    "email": membership.user.email,
                    "password": DEMO_PASSWORD,
                    "name": membership.user.name,
                    "org": organization.slug,
                    "role": membership.get_role_display().lower(),
                    "workspaces": sorted(reachable.values_list("pk", flat=True)),
                }
            )
    return {"users": users, "orgs": orgs}
