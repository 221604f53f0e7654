"""Sessions (allauth.usersessions): the list of signed-in browsers, ending the others, password changes; the account
settings' email page."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.test import Client
from django.urls import reverse

from orgs.templatetags.sessions import browser_and_device
from tests.factories import PASSWORD, UserFactory, make_organization

pytestmark = pytest.mark.django_db

LAPTOP = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148 Safari/604.1"


def signed_in(user, *, agent: str, ip: str) -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("orgs:list")).status_code == 200


def test_sessions_page_lists_each_browser_with_its_ip_and_marks_this_one():
    user = UserFactory()
    make_organization(owner=user)
    laptop = signed_in(user, agent=LAPTOP, ip="198.51.100.7")
    signed_in(user, agent=PHONE, ip="203.0.113.9")

    html = laptop.get(reverse("usersessions_list")).content.decode()
    assert "Chrome on Linux" in html
    assert "Safari on iPhone" in html
    assert "198.51.100.7" in html
    assert "203.0.113.9" in html
    assert html.count("This browser") == 1
    assert "Last seen" in html
    assert "Sign out the other sessions" in html
    assert 'class="shell account-shell"' in html


def test_ending_the_other_sessions_signs_them_out_and_keeps_this_one():
    user = UserFactory()
    laptop = signed_in(user, agent=LAPTOP, ip="198.51.100.7")
    phone = signed_in(user, agent=PHONE, ip="203.0.113.9")
    tablet = signed_in(user, agent="Tablet", ip="203.0.113.10")
    assert UserSession.objects.filter(user=user).count() == 3

    response = laptop.post(reverse("usersessions_list"))
    assert response.status_code == 302

    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not is_signed_in(tablet)
    assert list(UserSession.objects.filter(user=user).values_list("user_agent", flat=True)) == [LAPTOP]
    assert "Sign out the other sessions" not in laptop.get(reverse("usersessions_list")).content.decode()


def test_changing_the_password_ends_the_other_sessions():
    user = UserFactory()
    laptop = signed_in(user, agent=LAPTOP, ip="198.51.100.7")
    phone = signed_in(user, agent=PHONE, ip="203.0.113.9")

    response = laptop.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "a-new-long-passphrase-2026", "password2": "a-new-long-passphrase-2026"},
    )
    assert response.status_code == 302

    assert is_signed_in(laptop)  # the browser that changed it stays signed in
    assert not is_signed_in(phone)
    listed = laptop.get(reverse("usersessions_list")).content.decode()
    assert "Safari on iPhone" not in listed
    assert "Chrome on Linux" in listed


def test_last_seen_is_updated_at_most_once_per_interval(settings):
    user = UserFactory()
    laptop = signed_in(user, agent=LAPTOP, ip="198.51.100.7")
    session = UserSession.objects.get(user=user)
    first_seen = session.last_seen_at

    settings.SESSION_ACTIVITY_INTERVAL = 3600
    laptop.get(reverse("orgs:list"))
    assert UserSession.objects.get(pk=session.pk).last_seen_at == first_seen  # within the interval: no write

    settings.SESSION_ACTIVITY_INTERVAL = 0
    laptop.get(reverse("orgs:list"), REMOTE_ADDR="198.51.100.99")
    session.refresh_from_db()
    assert session.last_seen_at > first_seen
    assert session.ip == "198.51.100.99"


def test_sessions_signed_in_without_the_login_form_are_not_tracked(client):
    """force_login sessions (the tests') and allauth-less sessions are not tracked: pages keep their query counts."""
    user = UserFactory()
    client.force_login(user)
    client.get(reverse("orgs:list"))
    assert not UserSession.objects.filter(user=user).exists()


# --- the email page ----------------------------------------------------------------------------------------------


def _row(html: str, email: str) -> str:
    match = re.search(r'<li class="email-row">(?:(?!</li>).)*' + re.escape(email) + r"(?:(?!</li>).)*</li>", html, re.S)
    assert match, email
    return match.group(0)


def test_email_page_offers_only_what_each_address_can_do(client, mailoutbox):
    user = UserFactory()
    client.force_login(user)
    html = client.get(reverse("account_email")).content.decode()
    primary_row = _row(html, user.email)
    assert "Primary" in primary_row
    assert "Verified" in primary_row
    assert "Make primary" not in html
    assert "Re-send verification" not in html
    assert "Remove" not in primary_row

    EmailAddress.objects.create(user=user, email="second@example.com", verified=False, primary=False)
    EmailAddress.objects.create(user=user, email="third@example.com", verified=True, primary=False)
    html = client.get(reverse("account_email")).content.decode()
    assert "Make primary" not in _row(html, user.email)
    unverified = _row(html, "second@example.com")
    assert "Re-send verification" in unverified
    assert "Make primary" not in unverified  # an unverified address cannot become primary
    assert "Remove" in unverified
    verified = _row(html, "third@example.com")
    assert "Make primary" in verified
    assert "Re-send verification" not in verified

    # Each row's buttons act on that row's address (works without JavaScript).
    response = client.post(reverse("account_email"), {"email": "second@example.com", "action_send": ""})
    assert response.status_code == 302
    assert mailoutbox[-1].to == ["second@example.com"]
    client.post(reverse("account_email"), {"email": "third@example.com", "action_primary": ""})
    assert EmailAddress.objects.get(user=user, primary=True).email == "third@example.com"


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (LAPTOP, "Chrome on Linux"),
        (PHONE, "Safari on iPhone"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/140.0 Safari/537.36 Edg/140.0",
            "Edge on Windows",
        ),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:131.0) Gecko/20100101 Firefox/131.0", "Firefox on macOS"),
        ("Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 Chrome/140.0 Mobile Safari/537.36", "Chrome on Android"),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
    ],
)
def test_sessions_show_a_readable_browser_and_device(agent, shown):
    assert browser_and_device(agent) == shown
