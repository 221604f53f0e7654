"""Two-factor sign-in (allauth.mfa: an authenticator app with recovery codes), organizations that require it, staff."""

from __future__ import annotations

import time

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, TOTP, format_hotp_value, hotp_value
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import AuditAction, AuditEvent, Organization, OrganizationRole
from orgs.services import organization_two_factor_require
from tests.factories import PASSWORD, UserFactory, make_member, make_organization
from tests.test_access_matrix import LEVELS, MATRIX, _url, world  # noqa: F401  (world is a fixture)
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db

SETUP_URL = "/accounts/2fa/totp/activate/"


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now for `secret` (RFC 6238: 30-second steps, as allauth computes it)."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def reauthenticate_if_asked(client: Client, response) -> None:
    """allauth asks for the password again before two-factor settings change: answer it."""
    if response.status_code == 302 and "/reauthenticate/" in response.url:
        answer = client.post(response.url, {"password": PASSWORD})
        assert answer.status_code == 302, answer.content


def activate_totp(client: Client) -> str:
    """Set up the authenticator app through the pages, as a person would. Returns the secret."""
    response = client.get(SETUP_URL)
    reauthenticate_if_asked(client, response)
    response = client.get(SETUP_URL)
    assert response.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in response.content.decode()  # shown for typing into the app, beside the QR code
    response = client.post(SETUP_URL, {"code": totp_code(secret)})
    assert response.status_code == 302, response.content
    return secret


def password_login(client: Client, email: str) -> object:
    return client.post(reverse("account_login"), {"login": email, "password": PASSWORD})


def with_totp(user) -> str:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


@pytest.fixture
def frozen_clock():
    """A TOTP code is valid for its 30-second window: the clock stands still so no test crosses a boundary."""
    with time_machine.travel(now(), tick=False):
        yield


# --- set up, sign in, recovery codes, remove ------------------------------------------------------------------


def test_totp_set_up_then_sign_in_needs_a_real_code(client, frozen_clock):
    user = UserFactory()
    password_login(client, user.email)
    secret = activate_totp(client)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    # Recovery codes are made with it.
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).exists()
    client.post(reverse("account_logout"))

    response = password_login(client, user.email)
    assert response.url == reverse("mfa_authenticate")
    assert "or one of your recovery codes" in client.get(response.url).content.decode()
    # The password alone does not sign in.
    assert client.get(reverse("orgs:list")).status_code == 302
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000" if totp_code(secret) != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "Incorrect code" in wrong.content.decode()
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert client.get(reverse("orgs:list")).status_code == 200


def test_a_used_code_cannot_sign_in_twice(frozen_clock):
    user = UserFactory()
    secret = with_totp(user)
    first, second = Client(), Client()
    password_login(first, user.email)
    code = totp_code(secret)
    assert first.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    password_login(second, user.email)
    assert second.post(reverse("mfa_authenticate"), {"code": code}).status_code == 200  # refused: replayed
    assert second.get(reverse("orgs:list")).status_code == 302


def test_sign_in_with_a_recovery_code_uses_it_up(client):
    user = UserFactory()
    with_totp(user)
    codes = RecoveryCodes(Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES))
    code = codes.get_unused_codes()[0]

    password_login(client, user.email)
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    assert client.get(reverse("orgs:list")).status_code == 200

    client.post(reverse("account_logout"))
    password_login(client, user.email)
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 200  # used: refused
    assert client.get(reverse("orgs:list")).status_code == 302


def test_regenerating_recovery_codes_replaces_the_old_ones(client):
    user = UserFactory()
    with_totp(user)
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    old = RecoveryCodes(authenticator).get_unused_codes()
    password_login(client, user.email)
    client.post(reverse("mfa_authenticate"), {"code": old[0]})

    url = reverse("mfa_generate_recovery_codes")
    reauthenticate_if_asked(client, client.get(url))
    page = client.get(url)
    assert page.status_code == 200
    assert "Recovery Codes" in page.content.decode()
    assert client.post(url).status_code == 302
    new = RecoveryCodes(Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES))
    assert set(new.get_unused_codes()).isdisjoint(old)
    shown = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert all(code in shown for code in new.get_unused_codes())

    client.post(reverse("account_logout"))
    password_login(client, user.email)
    assert client.post(reverse("mfa_authenticate"), {"code": old[1]}).status_code == 200  # an old code: refused


def test_removing_the_authenticator_app_turns_two_factor_off(client, frozen_clock):
    user = UserFactory()
    secret = with_totp(user)
    password_login(client, user.email)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    url = reverse("mfa_deactivate_totp")
    reauthenticate_if_asked(client, client.get(url))
    assert client.post(url).status_code == 302
    assert not Authenticator.objects.filter(user=user).exists()  # the recovery codes go with it

    client.post(reverse("account_logout"))
    assert password_login(client, user.email).url == reverse("home")  # the password alone signs in again


def test_two_factor_page_uses_the_account_layout(client):
    user = UserFactory()
    client.force_login(user)
    html = client.get(reverse("mfa_index")).content.decode()
    assert 'class="shell account-shell"' in html
    for section in ("Email addresses", "Password", "Two-factor sign-in", "Sessions"):
        assert section in html


# --- an organization that requires two-factor sign-in ---------------------------------------------------------


def test_requiring_two_factor_needs_it_on_the_actor_and_is_audited():
    owner = UserFactory()
    org = make_organization(owner=owner)
    with pytest.raises(ValidationError):
        organization_two_factor_require(organization=org, actor=owner, required=True)
    org.refresh_from_db()
    assert not org.require_two_factor

    with_totp(owner)
    organization_two_factor_require(organization=org, actor=owner, required=True)
    organization_two_factor_require(organization=org, actor=owner, required=True)  # no change: no second event
    org.refresh_from_db()
    assert org.require_two_factor
    events = AuditEvent.objects.filter(organization=org, action=AuditAction.ORGANIZATION_TWO_FACTOR_REQUIRED)
    assert [(e.before, e.after) for e in events] == [({"require_two_factor": False}, {"require_two_factor": True})]


def test_profile_tab_turns_the_requirement_on_and_off(client):
    owner = UserFactory()
    org = make_organization(owner=owner)
    admin = make_member(org, role=OrganizationRole.ADMIN).user
    url = reverse("orgs:organization_two_factor_require", kwargs={"org_slug": org.slug})
    client.force_login(admin)
    assert "Require two-factor sign-in" in client.get(reverse("orgs:profile", kwargs={"org_slug": org.slug})).text

    response = client.post(url, {"required": "on"}, follow=True)
    assert "Set up two-factor sign-in for your own account first" in response.content.decode()
    assert not Organization.objects.get(pk=org.pk).require_two_factor

    with_totp(admin)
    client.post(url, {"required": "on"})
    assert Organization.objects.get(pk=org.pk).require_two_factor
    page = client.get(reverse("orgs:profile", kwargs={"org_slug": org.slug})).content.decode()
    assert "Stop requiring it" in page
    client.post(url, {"required": "off"})
    assert not Organization.objects.get(pk=org.pk).require_two_factor


def test_every_page_of_a_requiring_organization_leads_a_member_without_it_to_set_up(client, world):  # noqa: F811
    own = world["own"]
    Organization.objects.filter(slug=own["org_slug"]).update(require_two_factor=True)
    failures = []
    for name, route in sorted(MATRIX.items()):
        if not route.org_scoped:
            continue
        persona = sorted(LEVELS[route.level])[0]
        client.force_login(world["personas"][persona])
        url = _url(name, own)
        for method in sorted(route.methods):
            response = client.get(url) if method == "GET" else client.post(url, {})
            if response.status_code != 302 or response.url != SETUP_URL:
                failures.append(f"{persona} {method} {url}: {response.status_code}")
            htmx = client.get(url, headers={"HX-Request": "true"}) if method == "GET" else None
            if htmx is not None and htmx.headers.get("HX-Redirect") != SETUP_URL:
                failures.append(f"{persona} htmx GET {url}: no HX-Redirect")
    assert not failures, "\n".join(failures)


def test_a_member_without_two_factor_still_opens_other_organizations_and_the_set_up_pages(client, frozen_clock):
    strict, relaxed = make_organization(), make_organization()
    user = UserFactory()
    make_member(strict, user=user)
    make_member(relaxed, user=user)
    Organization.objects.filter(pk=strict.pk).update(require_two_factor=True)
    password_login(client, user.email)

    response = client.get(f"/o/{strict.slug}/", follow=True)
    # No loop: the set-up page answers (after allauth asks for the password again, as before any 2FA change).
    assert response.redirect_chain[0][0] == SETUP_URL
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] in {
        SETUP_URL,
        "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F",
    }
    assert f"{strict.name} requires two-factor sign-in" in response.content.decode()
    assert client.get(f"/o/{relaxed.slug}/workspaces/").status_code == 200
    for page in ("mfa_index", "account_email", "usersessions_list", "account_change_password"):
        assert client.get(reverse(page)).status_code == 200, page

    activate_totp(client)
    assert client.get(f"/o/{strict.slug}/workspaces/").status_code == 200


def test_people_outside_a_requiring_organization_still_get_404(client):
    org = make_organization()
    Organization.objects.filter(pk=org.pk).update(require_two_factor=True)
    client.force_login(UserFactory())
    assert client.get(f"/o/{org.slug}/workspaces/").status_code == 404


def test_members_tab_shows_who_has_two_factor(client):
    owner = UserFactory()
    org = make_organization(owner=owner)
    with_totp(owner)
    with_factor = make_member(org).user
    with_totp(with_factor)
    without = make_member(org).user
    Organization.objects.filter(pk=org.pk).update(require_two_factor=True)
    client.force_login(owner)
    html = client.get(reverse("orgs:members", kwargs={"org_slug": org.slug})).content.decode()
    rows = {row.split("</tr>")[0] for row in html.split("<tr")[1:]}
    row_of = {user.email: next(r for r in rows if user.email in r) for user in (owner, with_factor, without)}
    assert ">2FA</span>" in row_of[owner.email]
    assert ">2FA</span>" in row_of[with_factor.email]
    assert ">2FA</span>" not in row_of[without.email]
    assert "No 2FA" in row_of[without.email]


def test_the_metering_api_is_not_affected_api_keys_are_not_people(client):
    owner = UserFactory()
    org = make_organization(owner=owner)
    Organization.objects.filter(pk=org.pk).update(require_two_factor=True)
    _, secret = api_key_create(workspace=org.workspaces.get(is_primary=True), actor=owner, name="Renderer")
    response = client.get("/api/v1/workspace", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200


# --- staff -------------------------------------------------------------------------------------------------------


def test_staff_admin_refused_without_two_factor_when_required(client, settings, frozen_clock):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    settings.STAFF_REQUIRE_TWO_FACTOR = False
    assert client.get("/admin/").status_code == 200

    settings.STAFF_REQUIRE_TWO_FACTOR = True
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url == SETUP_URL
    assert client.get("/admin/orgs/organization/").status_code == 302
    assert client.get(SETUP_URL).status_code in {200, 302}  # reachable (a password check may come first)

    with_totp(staff)
    assert client.get("/admin/").status_code == 200


def test_staff_requirement_is_on_in_production_settings_only():
    from qolaba.settings import base

    assert base.STAFF_REQUIRE_TWO_FACTOR is False
    source = (settings.BASE_DIR / "qolaba" / "settings" / "production.py").read_text()
    assert 'STAFF_REQUIRE_TWO_FACTOR = env.bool("STAFF_REQUIRE_TWO_FACTOR", default=True)' in source
