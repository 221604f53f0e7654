"""The metering API's authentication: a workspace API key (`Authorization: Bearer qlb_<prefix>_<secret>`), parsed
into its public prefix and the SHA-256 of the whole key. `api_key_find` finds the key by its prefix and compares the
hashes with `hmac.compare_digest`; the charge endpoint first leaves that to its one statement (`usage.fastpath`),
which matches prefix and hash in SQL.

An organization admin key (`qlbadm_<prefix>_<secret>`, `orgs.AdminKey`) opens only the organization's usage report
(`AdminKey`): its scheme is not a workspace key's, so every other endpoint refuses it before any lookup, and a
workspace key is refused there the same way."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from orgs.models import ADMIN_KEY_SCHEME, AdminKey, Organization
from orgs.selectors import admin_key_find
from orgs.services import admin_key_mark_used
from qolaba.keys import key_parse
from workspaces.models import ApiKey, Workspace, api_key_parse
from workspaces.selectors import api_key_find
from workspaces.services import api_key_mark_used


@dataclass
class PresentedKey:
    """A well-formed key from the Authorization header; whether it is live is checked where it is used (in the
    charge's one statement, or by `workspace_of`)."""

    prefix: str
    secret_hash: str
    api_key: ApiKey | None = None


class WellFormedWorkspaceKey(HttpBearer):
    """For the hot charge endpoint: only the key's form is checked here; the one-statement charge checks that it is
    live (and the general path answers 401 when it is not)."""

    def authenticate(self, request: HttpRequest, token: str) -> PresentedKey | None:
        parsed = api_key_parse(token.strip())
        return PresentedKey(*parsed) if parsed is not None else None


class WorkspaceKey(WellFormedWorkspaceKey):
    """A live workspace key (checked in the database before the body is even read)."""

    def authenticate(self, request: HttpRequest, token: str) -> PresentedKey | None:
        presented = super().authenticate(request, token)
        if presented is None:
            return None
        try:
            workspace_of(presented)
        except AuthenticationError:
            return None
        return presented


WellFormedWorkspaceKey.__name__ = "WorkspaceKey"  # the same security scheme in the OpenAPI document


def request_workspace(request: HttpRequest) -> Workspace:
    """The workspace of the request's key, once the key is known to be live (else 401)."""
    return workspace_of(request.auth)  # type: ignore[attr-defined]


def workspace_of(presented: PresentedKey) -> Workspace:
    if presented.api_key is None:
        api_key = api_key_find(prefix=presented.prefix, secret_hash=presented.secret_hash)
        if api_key is None:
            raise AuthenticationError
        api_key_mark_used(api_key_id=api_key.pk, last_used_at=api_key.last_used_at)
        presented.api_key = api_key
    return presented.api_key.workspace


class AdminKeyRequired(AuthenticationError):
    """No live organization admin key (none, a workspace key, malformed, unknown or revoked)."""


class AdminKeyAuth(HttpBearer):
    """A live organization admin key, for the organization's usage report only."""

    def __call__(self, request: HttpRequest) -> AdminKey:
        admin_key = super().__call__(request)
        if admin_key is None:
            raise AdminKeyRequired
        return admin_key

    def authenticate(self, request: HttpRequest, token: str) -> AdminKey | None:
        parsed = key_parse(token.strip(), scheme=ADMIN_KEY_SCHEME)
        if parsed is None:
            return None
        admin_key = admin_key_find(prefix=parsed[0], secret_hash=parsed[1])
        if admin_key is not None:
            admin_key_mark_used(admin_key_id=admin_key.pk, last_used_at=admin_key.last_used_at)
        return admin_key


AdminKeyAuth.__name__ = "AdminKey"  # the security scheme's name in the OpenAPI document


def request_organization(request: HttpRequest) -> Organization:
    """The organization of the request's admin key (authenticated by `AdminKeyAuth`)."""
    admin_key: AdminKey = request.auth  # type: ignore[attr-defined]
    return admin_key.organization
