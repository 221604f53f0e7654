"""Rate limits of the pages: invitation emails per organization per hour (INVITATIONS_PER_HOUR, counted in the
database: a form error and nothing written past it, Redis or not) and password reset emails per address
(allauth's `reset_password` rate, in the database cache)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import AuditEvent, Invitation
from orgs.services import invitation_resend
from qolaba.outbox.models import OutboxMessage
from tests.factories import UserFactory, make_organization, make_workspace
from workspaces.services import invitations_create

pytestmark = pytest.mark.django_db


def _post_invite(client, org, workspace, emails: str):
    return client.post(
        reverse("orgs:invitations_create", kwargs={"org_slug": org.slug}),
        {"emails": emails, "role": 1, "workspaces": [workspace.pk], "workspace_role": "member"},
    )


def _written() -> tuple[int, int, int]:
    return Invitation.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count()


def test_invitations_past_the_hourly_limit_are_a_form_error_and_nothing_is_written(client, settings):
    settings.INVITATIONS_PER_HOUR = 3
    org = make_organization(name="Northwind")
    workspace = make_workspace(org, name="Campaign")
    client.force_login(org.created_by)
    assert _post_invite(client, org, workspace, "a@client.test, b@client.test").status_code == 302

    before = _written()
    refused = _post_invite(client, org, workspace, "c@client.test, d@client.test")
    assert refused.status_code == 400
    errors = refused.context["form"].errors["emails"]
    assert any("3 invitations an hour" in error and "1 left" in error for error in errors), errors
    assert "invite at most 1 address" in refused.content.decode()
    assert _written() == before  # no invitation, no audit event, no email queued

    # One more fits; then none.
    assert _post_invite(client, org, workspace, "c@client.test").status_code == 302
    again = _post_invite(client, org, workspace, "e@client.test")
    assert again.status_code == 400
    assert "try again in 60 minutes" in again.context["form"].errors["emails"][0]

    # An hour after the first two, two more fit again.
    with time_machine.travel(now() + timedelta(minutes=61)):
        assert _post_invite(client, org, workspace, "e@client.test, f@client.test").status_code == 302


def test_resending_counts_and_is_refused_past_the_limit(settings):
    settings.INVITATIONS_PER_HOUR = 2
    org = make_organization(name="Northwind")
    workspace = make_workspace(org, name="Campaign")
    owner = org.created_by
    (invitation,) = invitations_create(
        organization=org, emails=["a@client.test"], role=1, workspaces=[workspace], workspace_role="member", actor=owner
    )
    invitation_resend(invitation=invitation, actor=owner)
    token_hash = Invitation.objects.get(pk=invitation.pk).token_hash
    with pytest.raises(ValidationError) as refused:
        invitation_resend(invitation=invitation, actor=owner)
    assert "2 invitations an hour" in str(refused.value)
    assert Invitation.objects.get(pk=invitation.pk).token_hash == token_hash  # the emailed link still works


def test_the_limit_is_per_organization(client, settings):
    settings.INVITATIONS_PER_HOUR = 1
    first, second = make_organization(name="First"), make_organization(name="Second")
    client.force_login(first.created_by)
    assert _post_invite(client, first, make_workspace(first), "a@client.test").status_code == 302
    client.force_login(second.created_by)
    assert _post_invite(client, second, make_workspace(second), "a@client.test").status_code == 302


def test_password_reset_is_limited_per_address(client, settings, mailoutbox):
    """allauth's `reset_password` rate per address (the key): past it a 429 page and no email; another address (and
    an unknown one, so the limit says nothing about accounts) is counted on its own."""
    UserFactory(email="forgetful@example.com")
    UserFactory(email="other@example.com")
    limit = int(settings.ACCOUNT_RATE_LIMITS["reset_password"].split(",")[1].split("/")[0])
    for _ in range(limit):
        assert client.post("/accounts/password/reset/", {"email": "forgetful@example.com"}).status_code == 302
    assert len(mailoutbox) == limit
    refused = client.post("/accounts/password/reset/", {"email": "Forgetful@Example.com"})
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert len(mailoutbox) == limit
    assert client.post("/accounts/password/reset/", {"email": "other@example.com"}).status_code == 302
    assert len(mailoutbox) == limit + 1
    # An hour later the address may ask again.
    with time_machine.travel(now() + timedelta(hours=1, minutes=1)):
        assert client.post("/accounts/password/reset/", {"email": "forgetful@example.com"}).status_code == 302
    assert len(mailoutbox) == limit + 2
