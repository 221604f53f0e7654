"""The one way views reach organizations and workspaces.

Each decorator resolves the object named in the URL *through the user's django-guardian permission rows*
(the rows `workspaces.roles.permissions_apply` writes from the roles), checks the permission the view needs, and
answers 404 for anything the user may not see or do, so that existence never leaks. The resolved objects
and the user's permission codenames are put on `request.tenant`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Concatenate, ParamSpec, TypeAlias, cast

from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from orgs.models import Membership, MembershipStatus, Organization, OrganizationUserObjectPermission, User
from workspaces.models import Workspace, WorkspaceUserObjectPermission

P = ParamSpec("P")

SESSION_ORGANIZATION = "current_organization_id"
SESSION_WORKSPACES = "current_workspace_by_organization"


@dataclass(frozen=True)
class Tenant:
    """Where the request is: the organization and what the user may do there."""

    organization: Organization
    membership: Membership
    organization_permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        """`permission` is a codename of Organization, e.g. manage_members."""
        return permission in self.organization_permissions


@dataclass(frozen=True)
class WorkspaceTenant(Tenant):
    """A request inside one workspace, with the user's permissions on it."""

    workspace: Workspace
    workspace_permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        """`permission` is a codename of Organization (manage_members) or Workspace (use_workspace)."""
        return permission in self.workspace_permissions or super().can(permission)


class AuthenticatedRequest(HttpRequest):
    """The request a login-required view receives (for type checking)."""

    user: User
    htmx: HtmxDetails


class TenantRequest(AuthenticatedRequest):
    """The request a view under /o/<org_slug>/ receives."""

    tenant: Tenant


class WorkspaceRequest(TenantRequest):
    tenant: WorkspaceTenant


def organization_permissions(user: User, organization: Organization) -> frozenset[str]:
    rows = OrganizationUserObjectPermission.objects.filter(user=user, content_object=organization)
    return frozenset(rows.values_list("permission__codename", flat=True))


def _active_membership(user: User, organization: Organization) -> Membership:
    membership = Membership.objects.filter(user=user, organization=organization, status=MembershipStatus.ACTIVE).first()
    if membership is None:
        raise Http404
    return membership


def resolve_organization(request: HttpRequest, org_slug: str, permission: str) -> Tenant:
    user = cast(User, request.user)
    rows = list(
        OrganizationUserObjectPermission.objects.filter(
            user=user, content_object__slug=org_slug, content_object__deleted_at__isnull=True
        ).select_related("content_object", "permission")
    )
    permissions = frozenset(row.permission.codename for row in rows)
    if "view_organization" not in permissions or permission not in permissions:
        raise Http404
    organization = rows[0].content_object
    return Tenant(
        organization=organization,
        membership=_active_membership(user, organization),
        organization_permissions=permissions,
    )


def resolve_workspace(request: HttpRequest, org_slug: str, ws_slug: str, permission: str) -> WorkspaceTenant:
    user = cast(User, request.user)
    rows = list(
        WorkspaceUserObjectPermission.objects.filter(
            user=user,
            content_object__slug=ws_slug,
            content_object__organization__slug=org_slug,
            content_object__archived_at__isnull=True,
            content_object__organization__deleted_at__isnull=True,
        ).select_related("content_object__organization", "permission")
    )
    permissions = frozenset(row.permission.codename for row in rows)
    if "view_workspace" not in permissions:
        raise Http404
    workspace = rows[0].content_object
    organization = workspace.organization
    tenant = WorkspaceTenant(
        organization=organization,
        membership=_active_membership(user, organization),
        organization_permissions=organization_permissions(user, organization),
        workspace=workspace,
        workspace_permissions=permissions,
    )
    if not tenant.can(permission):
        raise Http404
    return tenant


def remember(request: HttpRequest, tenant: Tenant) -> None:
    """Remember the choice of organization (and of workspace within it) for the next visit."""
    session = request.session
    org_id = tenant.organization.pk
    if session.get(SESSION_ORGANIZATION) != org_id:
        session[SESSION_ORGANIZATION] = org_id
    if isinstance(tenant, WorkspaceTenant):
        by_org = dict(session.get(SESSION_WORKSPACES, {}))
        if by_org.get(str(org_id)) != tenant.workspace.pk:
            by_org[str(org_id)] = tenant.workspace.pk
            session[SESSION_WORKSPACES] = by_org


def two_factor_setup_response(request: HttpRequest, tenant: Tenant) -> HttpResponseBase | None:
    """An organization that requires two-factor sign-in leads members without it to set it up, page or htmx request.

    Checked after the organization is resolved, so it tells nothing to people who may not see the organization.
    """
    if not tenant.organization.require_two_factor or is_mfa_enabled(request.user):
        return None
    messages.warning(
        request,
        f"{tenant.organization.name} requires two-factor sign-in. Set it up to open the organization: confirm your "
        "password if asked, then scan the code with an authenticator app.",
    )
    url = reverse("mfa_activate_totp")
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


OrganizationViewFunc: TypeAlias = Callable[Concatenate[TenantRequest, P], HttpResponseBase]
WorkspaceViewFunc: TypeAlias = Callable[Concatenate[WorkspaceRequest, P], HttpResponseBase]
ViewFunc: TypeAlias = Callable[Concatenate[HttpRequest, P], HttpResponseBase]


def organization_view(
    permission: str = "view_organization",
) -> Callable[[OrganizationViewFunc[P]], ViewFunc[P]]:
    """For views under /o/<org_slug>/: the user must hold `permission` on that organization."""

    def decorator(view: OrganizationViewFunc[P]) -> ViewFunc[P]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            tenant_request = cast(TenantRequest, request)
            tenant_request.tenant = resolve_organization(request, str(kwargs["org_slug"]), permission)
            if (refusal := two_factor_setup_response(request, tenant_request.tenant)) is not None:
                return refusal
            remember(request, tenant_request.tenant)
            return view(tenant_request, *args, **kwargs)

        return wrapper

    return decorator


def workspace_view(
    permission: str = "view_workspace",
) -> Callable[[WorkspaceViewFunc[P]], ViewFunc[P]]:
    """For views under /o/<org_slug>/w/<ws_slug>/: the user must hold `permission` on that workspace."""

    def decorator(view: WorkspaceViewFunc[P]) -> ViewFunc[P]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            workspace_request = cast(WorkspaceRequest, request)
            workspace_request.tenant = resolve_workspace(
                request, str(kwargs["org_slug"]), str(kwargs["ws_slug"]), permission
            )
            if (refusal := two_factor_setup_response(request, workspace_request.tenant)) is not None:
                return refusal
            remember(request, workspace_request.tenant)
            return view(workspace_request, *args, **kwargs)

        return wrapper

    return decorator


def remembered_workspace(request: HttpRequest, organization: Organization) -> Workspace | None:
    """The workspace to open in `organization`: the remembered one, else the Primary, else the first reachable."""
    remembered_id = request.session.get(SESSION_WORKSPACES, {}).get(str(organization.pk))
    candidates = Workspace.objects.for_user(request.user).filter(organization=organization)
    if remembered_id is not None:
        remembered = candidates.filter(pk=remembered_id).first()
        if remembered is not None:
            return remembered
    return candidates.order_by("-is_primary", "name").first()


def remembered_organization(request: HttpRequest) -> Organization | None:
    organizations = Organization.objects.for_user(request.user)
    remembered_id = request.session.get(SESSION_ORGANIZATION)
    if remembered_id is not None:
        organization = organizations.filter(pk=remembered_id).first()
        if organization is not None:
            return organization
    return organizations.order_by("name").first()
