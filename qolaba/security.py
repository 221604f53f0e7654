"""Account security on every request: the sessions list's "last seen", two-factor sign-in for staff, and the
Permissions-Policy header (the other security headers are Django's SecurityMiddleware's and django-csp's)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.utils import is_mfa_enabled
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

SESSION_SEEN_AT = "qolaba_session_seen_at"


def permissions_policy(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Adds `Permissions-Policy` (settings.PERMISSIONS_POLICY) to every answer that has none."""
    policy: str = settings.PERMISSIONS_POLICY

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if policy:
            response.headers.setdefault("Permissions-Policy", policy)
        return response

    return middleware


class SessionActivityMiddleware:
    """Keeps each signed-in session's row (allauth.usersessions: IP, browser, last seen) up to date.

    At most once every SESSION_ACTIVITY_INTERVAL seconds per session, so pages cost no extra query in between. Only
    sessions signed in through allauth (the login form, a code) are tracked; allauth itself lists them at login.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if hasattr(request, "session"):
            # Best effort: during a database outage the view meets the same error and answers the 503
            # (qolaba.outage), without a traceback from here first.
            with contextlib.suppress(DatabaseError):
                self._track(request)
        return self.get_response(request)

    @staticmethod
    def _track(request: HttpRequest) -> None:
        session = request.session
        records = session.get(AUTHENTICATION_METHODS_SESSION_KEY)
        if not records or not request.user.is_authenticated:
            return
        # Until the first update, the session was last seen when it signed in (allauth wrote its row then).
        seen_at = float(session.get(SESSION_SEEN_AT) or records[-1].get("at", 0))
        if time.time() - seen_at >= settings.SESSION_ACTIVITY_INTERVAL:
            UserSession.objects.create_from_request(request)
            session[SESSION_SEEN_AT] = time.time()


class StaffTwoFactorMiddleware:
    """With STAFF_REQUIRE_TWO_FACTOR on (production), the Django admin refuses staff without two-factor sign-in.

    They are sent to set it up instead; other pages are not affected.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @staticmethod
    def _in_admin(request: HttpRequest) -> bool:
        try:
            return request.path.startswith(reverse("admin:index"))
        except NoReverseMatch:  # a URLconf without the admin
            return False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.STAFF_REQUIRE_TWO_FACTOR
            and self._in_admin(request)
            and request.user.is_authenticated
            and request.user.is_staff
            and not is_mfa_enabled(request.user)
        ):
            messages.warning(request, "Staff accounts need two-factor sign-in to open the admin. Set it up first.")
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        return self.get_response(request)
