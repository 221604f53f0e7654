from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse


def tenant(request: HttpRequest) -> dict[str, Any]:
    """The current organization/workspace (set by the access decorators) and the navigation it allows."""
    current = getattr(request, "tenant", None)
    if current is None:
        return {"tenant": None, "nav_items": []}
    org_slug = current.organization.slug
    workspace = getattr(current, "workspace", None)
    items: list[dict[str, Any]] = []
    if workspace is not None:
        items.append(
            {
                "label": "Overview",
                "icon": "overview",
                "url": reverse("workspaces:overview", kwargs={"org_slug": org_slug, "ws_slug": workspace.slug}),
            }
        )
    items.append(
        {"label": "Workspaces", "icon": "workspaces", "url": reverse("workspaces:list", kwargs={"org_slug": org_slug})}
    )
    path = request.path
    for item in items:
        item["active"] = path == item["url"]
    return {"tenant": current, "nav_items": items}
