from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from orgs.models import Notification
from qolaba.access import remembered_organization, remembered_workspace

# (label, icon, url name, organization permission needed, or None for workspace tabs, needs a workspace in the URL)
NAVIGATION = [
    ("Overview", "overview", "workspaces:overview", None, True),
    ("Studio", "studio", "studio:chat", None, True),
    ("History", "history", "workspaces:history", None, True),
    ("Members", "members", "orgs:members", "manage_members", False),
    ("Workspaces", "workspaces", "workspaces:list", "view_organization", False),
    ("Usage", "usage", "usage:dashboard", "view_organization", False),
    ("Billing", "billing", "billing:page", "manage_billing", False),
    ("Audit", "audit", "orgs:audit", "view_audit_log", False),
    ("Profile", "profile", "orgs:profile", "edit_profile", False),
]

# Tabs whose URL is a prefix of other tabs' pages; every other tab is also active on the pages below it.
EXACT_MATCH = {"workspaces:overview"}


def tenant(request: HttpRequest) -> dict[str, Any]:
    """The current organization/workspace (set by the access decorators) and the tabs the user may open."""
    current = getattr(request, "tenant", None)
    if current is None:
        context: dict[str, Any] = {"tenant": None, "nav_items": [], "current_workspace": None}
        if request.path.startswith("/accounts/") and request.user.is_authenticated:
            # Account settings link back to the organization the user was last in.
            context["account_organization"] = remembered_organization(request)
        return context
    workspace = getattr(current, "workspace", None)
    if workspace is None:
        # Organization-level pages keep showing (and linking to) the workspace the user was last in.
        workspace = remembered_workspace(request, current.organization)
    items = []
    for label, icon, url_name, permission, needs_workspace in NAVIGATION:
        kwargs = {"org_slug": current.organization.slug}
        if needs_workspace:
            # The workspace came through the access decorator or Workspace.objects.for_user: it may be opened.
            if workspace is None:
                continue
            kwargs["ws_slug"] = workspace.slug
        elif not current.can(permission):
            continue
        url = reverse(url_name, kwargs=kwargs)
        # The workspace's root (Overview) is a prefix of every workspace page: it is active on itself only.
        active = request.path == url if url_name in EXACT_MATCH else request.path.startswith(url)
        items.append({"label": label, "icon": icon, "url": url, "active": active})
    unread = (
        Notification.objects.unread().filter(user=current.membership.user_id, organization=current.organization).count()
    )
    return {"tenant": current, "nav_items": items, "current_workspace": workspace, "unread_notifications": unread}


def csp_nonce(request: HttpRequest) -> dict[str, Any]:
    """`{{ csp_nonce }}` for an inline <script> or <style> (django-csp makes it, and adds it to the
    Content-Security-Policy header, only when a template uses it; django-htmx's script tag reads the same name)."""
    return {"csp_nonce": getattr(request, "csp_nonce", None)}
