from __future__ import annotations

import itertools

import factory
from allauth.account.models import EmailAddress

from orgs.models import Membership, Organization, OrganizationRole, User
from qolaba.lifecycle import organization_create, workspace_create
from workspaces.models import Workspace, WorkspaceRole, api_key_parse
from workspaces.selectors import api_key_find
from workspaces.services import member_add, workspace_member_set

PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Faker("name")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def verified_email(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


def make_organization(*, owner: User | None = None, name: str | None = None, **kwargs: object) -> Organization:
    """Organizations are only ever made by the service (Owner membership + Primary Workspace)."""
    owner = owner or UserFactory()
    return organization_create(name=name or f"Organization {next(_counter)}", owner=owner, **kwargs)  # type: ignore[arg-type]


def make_member(
    organization: Organization,
    *,
    role: OrganizationRole = OrganizationRole.MEMBER,
    user: User | None = None,
    workspaces: dict[Workspace, WorkspaceRole] | None = None,
) -> Membership:
    user = user or UserFactory()
    membership = member_add(organization=organization, user=user, role=role, actor=None)
    for workspace, ws_role in (workspaces or {}).items():
        workspace_member_set(workspace=workspace, user=user, role=ws_role, actor=None)
    return membership


def make_workspace(organization: Organization, *, name: str | None = None) -> Workspace:
    return workspace_create(
        organization=organization,
        name=name or f"Workspace {next(_counter)}",
        created_by=None,
    )


def api_key_authenticate(raw: str):
    """The live key a raw secret is, as the metering API finds it (parse, then look up by prefix and hash)."""
    parsed = api_key_parse(raw)
    return api_key_find(prefix=parsed[0], secret_hash=parsed[1]) if parsed is not None else None
