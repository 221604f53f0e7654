from __future__ import annotations

from dataclasses import dataclass

import pytest

from billing.ledger import credits_grant
from orgs.models import Organization, User
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage.catalog import prices_ensure_defaults
from workspaces.models import Workspace, WorkspaceRole
from workspaces.services import api_key_create


@dataclass
class MeteredWorkspace:
    """An organization with credits, a second workspace, its member and viewer, and an API key for it."""

    organization: Organization
    owner: User
    workspace: Workspace
    member: User
    viewer: User
    key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {key or self.key}"}


def make_metered_workspace(*, credits: int = 10_000) -> MeteredWorkspace:
    prices_ensure_defaults()
    owner = UserFactory()
    organization = make_organization(owner=owner)
    workspace = make_workspace(organization)
    member, viewer = UserFactory(), UserFactory()
    make_member(organization, user=member, workspaces={workspace: WorkspaceRole.MEMBER})
    make_member(organization, user=viewer, workspaces={workspace: WorkspaceRole.VIEWER})
    if credits:
        credits_grant(organization=organization, amount=credits, actor=None)
    _, key = api_key_create(workspace=workspace, actor=owner, name="Image service")
    return MeteredWorkspace(organization, owner, workspace, member, viewer, key)


@pytest.fixture
def metered(db) -> MeteredWorkspace:
    return make_metered_workspace()
