"""Pages that htmx updates in parts: one rule for when a request gets a partial of the page instead of all of it.

A page's partials (`{% partialdef %}`) are named after the id of the element they fill, so that the element an htmx
request targets (its HX-Target header, from hx-target="#members-table") names the partial to answer with.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

# Every header the choice between page and partial reads. HX-Request alone is not enough for a cache: htmx's history
# restore sends HX-Request too, and must never be answered with a partial cached for the same URL.
VARY_ON = ("HX-Request", "HX-Target", "HX-History-Restore-Request")


def htmx_partial(request: HttpRequest, partials: Set[str]) -> str | None:
    """The one of `partials` this request asks for (the one named like its target), or None for the whole page.

    A history restore (htmx no longer has its own copy of the page) asks for the whole page whatever the target:
    htmx puts it in place of <body>.
    """
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.history_restore_request or htmx.target not in partials:
        return None
    return htmx.target


def render_page(
    request: HttpRequest,
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    partials: Set[str],
    status: int = 200,
) -> HttpResponse:
    """Render the page, or only the partial of it that an htmx request targets (one of `partials`).

    Either answer says which request headers chose it (Vary), so that no cache hands one in place of the other.
    """
    partial = htmx_partial(request, partials)
    response = render(request, f"{template_name}#{partial}" if partial else template_name, context, status=status)
    patch_vary_headers(response, VARY_ON)
    return response


def dialog_done(request: HttpRequest, url: str) -> HttpResponse:
    """After a form in a dialog succeeded: htmx navigates the whole page to `url` (HX-Redirect, so the flash message
    shows there); without JavaScript, the usual redirect."""
    htmx = getattr(request, "htmx", None)
    if htmx:
        response = HttpResponse(status=204)
        target, current = urlsplit(url), urlsplit(htmx.current_url or "")
        if target.fragment and (target.path, target.query) == (current.path, current.query):
            # The page the dialog is on, at an anchor: the browser would only scroll there, never reload it.
            response["HX-Refresh"] = "true"
        else:
            response["HX-Redirect"] = url
        return response
    return redirect(url)


def refusal_status(request: HttpRequest) -> int:
    """The status of a form answered again with its errors: 400 for a page, 200 for htmx, which swaps only
    successful answers (the errors must appear in the dialog that sent the form, not replace the page)."""
    return 200 if getattr(request, "htmx", None) else 400
