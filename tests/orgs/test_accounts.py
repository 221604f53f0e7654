"""Accounts (django-allauth): the email address is the identity, whatever its case."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import SESSION_KEY

from orgs.models import User
from tests.factories import PASSWORD, UserFactory, make_organization

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-and-unusual-passphrase-42"


def signup(client, email: str, password: str = NEW_PASSWORD):
    return client.post("/accounts/signup/", {"email": email, "password1": password, "password2": password})


def login(client, email: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"login": email, "password": password})


def logged_in_user_id(client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


# --- sign up ------------------------------------------------------------------------------------


def test_signup_pages_open(client):
    assert client.get("/accounts/signup/").status_code == 200
    assert client.get("/accounts/login/").status_code == 200


def test_signup_creates_a_user_with_lowercase_email_and_logs_in(client):
    response = signup(client, "New.Person@Example.COM")

    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    assert user.check_password(NEW_PASSWORD)
    assert EmailAddress.objects.get(user=user).email == "new.person@example.com"
    assert logged_in_user_id(client) == user.pk
    # A fresh user has no organization: home offers to create one.
    assert client.get("/").url == "/orgs/new/"


def test_signup_again_with_the_same_email_in_another_case_creates_no_second_user(client):
    signup(client, "casey@example.com")
    client.logout()

    response = signup(client, "CASEY@Example.com")

    assert response.status_code in (200, 302)
    assert User.objects.filter(email__iexact="casey@example.com").count() == 1
    assert User.objects.count() == 1
    assert logged_in_user_id(client) is None


def test_signup_refuses_mismatched_passwords(client):
    response = client.post(
        "/accounts/signup/", {"email": "x@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"}
    )
    assert response.status_code == 200
    assert not User.objects.exists()


def test_signup_refuses_a_weak_password(client):
    response = signup(client, "weak@example.com", password="password")
    assert response.status_code == 200
    assert not User.objects.exists()


# --- log in / out -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["maya@example.com", "MAYA@example.com", "Maya@Example.Com"])
def test_login_with_email_in_any_case(client, typed):
    user = UserFactory(email="maya@example.com")
    response = login(client, typed)
    assert response.status_code == 302
    assert logged_in_user_id(client) == user.pk


def test_login_lands_in_the_users_organization(client):
    org = make_organization()
    response = login(client, org.created_by.email)
    assert response.url == "/"
    assert client.get("/").url == f"/o/{org.slug}/"


def test_login_with_wrong_password_fails(client):
    UserFactory(email="maya@example.com")
    response = login(client, "maya@example.com", password="wrong-password")
    assert response.status_code == 200
    assert logged_in_user_id(client) is None


def test_login_of_inactive_user_fails(client):
    UserFactory(email="gone@example.com", is_active=False)
    login(client, "gone@example.com")
    assert logged_in_user_id(client) is None


def test_failed_logins_are_rate_limited_per_email(client):
    """Settings: login_failed '10/m/ip,5/5m/key'. After 5 wrong passwords for one address even the right one
    is refused. (allauth refuses it with a form error, status 200, not with a 429.)"""
    user = UserFactory(email="target@example.com")
    for _ in range(5):
        response = login(client, "Target@example.com", password="wrong-password")
        assert response.status_code == 200
        assert "Too many failed login attempts" not in response.content.decode()

    response = login(client, "target@example.com", password=PASSWORD)

    assert response.status_code in (200, 429)
    assert "Too many failed login attempts" in response.content.decode()
    assert logged_in_user_id(client) is None
    # Another address from the same IP is still allowed (the per-IP budget is 10 a minute).
    other = UserFactory(email="other@example.com")
    assert login(client, "other@example.com").status_code == 302
    assert logged_in_user_id(client) == other.pk
    assert user.pk != other.pk


def test_failed_logins_are_rate_limited_per_ip(client):
    for i in range(10):
        login(client, f"nobody{i}@example.com", password="wrong-password")
    user = UserFactory(email="innocent@example.com")
    response = login(client, "innocent@example.com")
    assert "Too many failed login attempts" in response.content.decode()
    assert logged_in_user_id(client) is None
    assert user.pk


def test_a_successful_login_does_not_use_up_the_failed_login_budget(client):
    UserFactory(email="fine@example.com")
    for _ in range(8):
        assert login(client, "fine@example.com").status_code == 302
        client.post("/accounts/logout/")
    assert logged_in_user_id(client) is None


def test_logout_by_post(client):
    user = UserFactory()
    client.force_login(user)
    assert logged_in_user_id(client) == user.pk

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert logged_in_user_id(client) is None
    assert client.get("/").url == "/accounts/login/"


def test_logout_by_get_only_asks_for_confirmation(client):
    user = UserFactory()
    client.force_login(user)
    response = client.get("/accounts/logout/")
    assert response.status_code == 200
    assert logged_in_user_id(client) == user.pk


# --- password reset -----------------------------------------------------------------------------


def test_password_reset_sends_an_email(client, mailoutbox):
    UserFactory(email="forgetful@example.com")
    response = client.post("/accounts/password/reset/", {"email": "Forgetful@Example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["forgetful@example.com"]
    assert message.subject.startswith("[Qolaba] ")
    assert "/accounts/password/reset/key/" in message.body


def test_password_reset_link_sets_a_new_password(client, mailoutbox):
    user = UserFactory(email="forgetful@example.com")
    client.post("/accounts/password/reset/", {"email": "forgetful@example.com"})
    link = next(word for word in mailoutbox[0].body.split() if "/accounts/password/reset/key/" in word)
    path = link[link.index("/accounts/") :]

    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_password_reset_for_an_unknown_email_does_not_reveal_it(client, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302  # same answer as for a known address
    assert all("/accounts/password/reset/key/" not in m.body for m in mailoutbox)
