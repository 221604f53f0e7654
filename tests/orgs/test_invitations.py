"""Invitations: all-or-nothing creation, one email per address on commit, hashed single-use expiring tokens,
resend/revoke, and email-matched acceptance (service and views, including signing up through allauth).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import (
    AuditEvent,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    OrganizationRole,
    OrganizationUserObjectPermission,
    User,
)
from orgs.selectors import invitation_for_token
from orgs.services import invitation_resend, invitation_revoke, parse_email_list
from qolaba.lifecycle import organization_delete, workspace_archive
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import Workspace, WorkspaceMembership, WorkspaceRole, WorkspaceUserObjectPermission
from workspaces.services import invitation_accept, invitations_create, member_remove

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+/invitations/(?P<token>[^/\s]+)/")
NEW_PASSWORD = "a-long-and-unusual-passphrase-42"


@pytest.fixture
def org_setup():
    org = make_organization(name="Northwind")
    primary = Workspace.objects.get(organization=org, is_primary=True)
    campaign = make_workspace(org, name="Campaign")
    hidden = make_workspace(org, name="Hidden")
    owner = org.created_by
    admin = make_member(org, role=OrganizationRole.ADMIN)
    member = make_member(org, workspaces={primary: WorkspaceRole.MEMBER})
    return {
        "org": org,
        "primary": primary,
        "campaign": campaign,
        "hidden": hidden,
        "owner": owner,
        "admin": admin,
        "member": member,
    }


def invite(s, emails, *, role=OrganizationRole.MEMBER, workspaces=None, workspace_role="member", actor=None):
    return invitations_create(
        organization=s["org"],
        emails=emails,
        role=role,
        workspaces=workspaces if workspaces is not None else [s["campaign"]],
        workspace_role=workspace_role,
        actor=actor or s["owner"],
    )


def invite_and_get_token(s, email, mailoutbox, capture, **kwargs) -> tuple[Invitation, str]:
    with capture(execute=True):
        (invitation,) = invite(s, [email], **kwargs)
    return invitation, token_from(mailoutbox[-1])


def token_from(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group("token")


def ws_codenames(user, ws) -> set[str]:
    rows = WorkspaceUserObjectPermission.objects.filter(user=user, content_object=ws)
    return set(rows.values_list("permission__codename", flat=True))


def org_codenames(user, org) -> set[str]:
    rows = OrganizationUserObjectPermission.objects.filter(user=user, content_object=org)
    return set(rows.values_list("permission__codename", flat=True))


# --- parsing --------------------------------------------------------------------------------------------------


def test_parse_email_list_reports_every_problem_in_order():
    emails, problems = parse_email_list("Ana@Client.com, ben@client.com\nnot-an-email; ana@client.com  <cy@client.com>")
    assert emails == ["ana@client.com", "ben@client.com", "cy@client.com"]
    assert problems == ["“not-an-email” is not a valid email address.", "ana@client.com is listed more than once."]


def test_parse_email_list_of_blanks_is_empty():
    assert parse_email_list(" ,\n ; ") == ([], [])


# --- create ---------------------------------------------------------------------------------------------------


def test_create_one_invitation_per_address_and_one_email_each_on_commit(
    org_setup, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invitations = invite(s, ["ana@client.com", "ben@client.com"], workspaces=[s["campaign"], s["primary"]])
        assert mailoutbox == []  # nothing leaves before the transaction commits

    assert len(callbacks) == 2
    assert [i.email for i in invitations] == ["ana@client.com", "ben@client.com"]
    for invitation in invitations:
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.PENDING
        assert invitation.role == OrganizationRole.MEMBER
        assert invitation.invited_by == s["owner"]
        assert set(invitation.workspaces.all()) == {s["campaign"], s["primary"]}
        expected_expiry = invitation.sent_at + timedelta(days=settings.INVITATION_TTL_DAYS)
        assert abs(invitation.expires_at - expected_expiry) < timedelta(seconds=5)
    assert sorted(m.to[0] for m in mailoutbox) == ["ana@client.com", "ben@client.com"]
    assert all(len(m.to) == 1 for m in mailoutbox)
    tokens = {token_from(m) for m in mailoutbox}
    assert len(tokens) == 2  # each address has its own link
    assert AuditEvent.objects.filter(organization=s["org"], action="invitation.created").count() == 2


def test_the_emailed_link_opens_the_invitation(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    _, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    url = LINK.search(mailoutbox[0].body).group(0)
    assert urlsplit(url).path == reverse("orgs:invitation_accept", kwargs={"token": token})
    assert url.startswith(settings.SITE_URL)
    response = client.get(urlsplit(url).path)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Join Northwind" in body
    assert "ana@client.com" in body
    assert "Northwind" in mailoutbox[0].subject


def test_token_is_stored_only_as_a_hash(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    invitation.refresh_from_db()
    assert len(token) >= 40  # unguessable: 32 random bytes
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invitation.token_hash
    # Nowhere in the invitation row or its audit events.
    row = Invitation.objects.filter(pk=invitation.pk).values().get()
    assert all(token not in str(value) for value in row.values())
    for event in AuditEvent.objects.filter(organization=s["org"]):
        assert token not in f"{event.before}{event.after}{event.target_repr}"
    assert invitation_for_token(token) == invitation
    assert invitation_for_token(invitation.token_hash) is None


def test_create_is_all_or_nothing_and_reports_every_problem(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    with django_capture_on_commit_callbacks(execute=True):
        invite(s, ["pending@client.com"])
    before = (
        Invitation.objects.filter(organization=s["org"]).count(),
        AuditEvent.objects.filter(organization=s["org"]).count(),
        len(mailoutbox),
    )

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as caught:
        invite(s, ["fresh@client.com", s["member"].user.email.upper(), "PENDING@client.com", s["owner"].email])

    problems = caught.value.message_dict["emails"]
    assert problems == [
        f"{s['member'].user.email} is already a member of Northwind.",
        "pending@client.com already has a pending invitation (resend it from the Members tab).",
        f"{s['owner'].email} is already a member of Northwind.",
    ]
    assert (
        Invitation.objects.filter(organization=s["org"]).count(),
        AuditEvent.objects.filter(organization=s["org"]).count(),
        len(mailoutbox),
    ) == before
    assert not Invitation.objects.filter(email="fresh@client.com").exists()


def test_service_refuses_an_invalid_address(org_setup):
    s = org_setup
    with pytest.raises(ValidationError):
        invite(s, ["ok@client.com", "not-an-email"])
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_service_reports_a_duplicate_address_in_the_list(org_setup):
    s = org_setup
    with pytest.raises(ValidationError):
        invite(s, ["dup@client.com", "DUP@client.com"])
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


@pytest.mark.parametrize("actor_key", ["owner", "admin"])
def test_role_owner_is_refused(org_setup, actor_key):
    s = org_setup
    actor = s["owner"] if actor_key == "owner" else s["admin"].user
    with pytest.raises(ValidationError) as caught:
        invite(s, ["ana@client.com"], role=OrganizationRole.OWNER, actor=actor)
    assert "role" in caught.value.message_dict
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_admin_may_invite_admins(org_setup):
    s = org_setup
    (invitation,) = invite(s, ["ana@client.com"], role=OrganizationRole.ADMIN, actor=s["admin"].user)
    assert invitation.role == OrganizationRole.ADMIN


def test_member_actor_is_refused(org_setup):
    s = org_setup
    with pytest.raises(ValidationError, match="Only the Owner and Admins"):
        invite(s, ["ana@client.com"], actor=s["member"].user)
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_no_workspace_is_refused(org_setup):
    with pytest.raises(ValidationError) as caught:
        invite(org_setup, ["ana@client.com"], workspaces=[])
    assert caught.value.message_dict == {"workspaces": ["Pick at least one workspace."]}
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_workspace_of_another_org_is_refused(org_setup):
    s = org_setup
    foreign = Workspace.objects.get(organization=make_organization(name="Elsewhere"), is_primary=True)
    with pytest.raises(ValidationError) as caught:
        invite(s, ["ana@client.com"], workspaces=[s["campaign"], foreign])
    assert "workspaces" in caught.value.message_dict
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_archived_workspace_is_refused(org_setup):
    s = org_setup
    workspace_archive(workspace=s["hidden"], actor=s["owner"])
    with pytest.raises(ValidationError):
        invite(s, ["ana@client.com"], workspaces=[s["hidden"]])
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_unknown_workspace_role_is_refused(org_setup):
    with pytest.raises(ValidationError) as caught:
        invite(org_setup, ["ana@client.com"], workspace_role="owner")
    assert "workspace_role" in caught.value.message_dict
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_expired_pending_invitation_makes_way_for_a_new_one(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    old, old_token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    with time_machine.travel(now() + timedelta(days=settings.INVITATION_TTL_DAYS + 1), tick=False):
        new, new_token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    old.refresh_from_db()
    assert old.status == InvitationStatus.REVOKED
    assert new.status == InvitationStatus.PENDING
    assert new_token != old_token


def test_a_failed_transaction_sends_no_email(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        invite(s, ["ana@client.com", s["member"].user.email])
    assert mailoutbox == []


# --- resend / revoke ------------------------------------------------------------------------------------------


def test_resend_invalidates_the_old_link_and_extends_expiry(
    org_setup, client, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    invitation, old_token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    first_expiry = Invitation.objects.get(pk=invitation.pk).expires_at

    later = now() + timedelta(days=3)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        invitation_resend(invitation=invitation, actor=s["admin"].user)

    invitation.refresh_from_db()
    assert invitation.expires_at == later + timedelta(days=settings.INVITATION_TTL_DAYS)
    assert invitation.expires_at > first_expiry
    assert len(mailoutbox) == 2
    assert mailoutbox[1].to == ["ana@client.com"]
    new_token = token_from(mailoutbox[1])
    assert new_token != old_token
    assert client.get(reverse("orgs:invitation_accept", kwargs={"token": old_token})).status_code == 404
    assert client.get(reverse("orgs:invitation_accept", kwargs={"token": new_token})).status_code == 200
    user = UserFactory(email="ana@client.com")
    with pytest.raises(ValidationError, match="not valid"):
        invitation_accept(token=old_token, user=user)
    event = AuditEvent.objects.get(organization=s["org"], action="invitation.resent")
    assert event.actor == s["admin"].user


def test_resend_revives_an_expired_invitation(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, _ = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    with time_machine.travel(now() + timedelta(days=30), tick=False):
        assert Invitation.objects.get(pk=invitation.pk).is_expired
        with django_capture_on_commit_callbacks(execute=True):
            invitation_resend(invitation=invitation, actor=s["owner"])
        token = token_from(mailoutbox[-1])
        user = UserFactory(email="ana@client.com")
        membership = invitation_accept(token=token, user=user)
    assert membership.status == MembershipStatus.ACTIVE


def test_member_cannot_resend_or_revoke(org_setup):
    s = org_setup
    (invitation,) = invite(s, ["ana@client.com"])
    before = Invitation.objects.filter(pk=invitation.pk).values().get()
    with pytest.raises(ValidationError):
        invitation_resend(invitation=invitation, actor=s["member"].user)
    with pytest.raises(ValidationError):
        invitation_revoke(invitation=invitation, actor=s["member"].user)
    assert Invitation.objects.filter(pk=invitation.pk).values().get() == before


def test_admin_of_another_org_cannot_revoke(org_setup):
    s = org_setup
    (invitation,) = invite(s, ["ana@client.com"])
    other = make_organization(name="Elsewhere")
    with pytest.raises(ValidationError):
        invitation_revoke(invitation=invitation, actor=other.created_by)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_revoke_stops_the_link(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)

    invitation_revoke(invitation=invitation, actor=s["admin"].user)

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED
    user = UserFactory(email="ana@client.com")
    with pytest.raises(ValidationError, match="revoked"):
        invitation_accept(token=token, user=user)
    assert not Membership.objects.filter(user=user).exists()
    response = client.get(reverse("orgs:invitation_accept", kwargs={"token": token}))
    assert "This invitation was revoked" in response.content.decode()
    # Neither resend nor a second revoke bring a revoked invitation back.
    with pytest.raises(ValidationError, match="already revoked"):
        invitation_resend(invitation=invitation, actor=s["owner"])
    with pytest.raises(ValidationError, match="already revoked"):
        invitation_revoke(invitation=invitation, actor=s["owner"])
    event = AuditEvent.objects.get(organization=s["org"], action="invitation.revoked")
    assert event.before == {"status": "pending"}
    assert event.after == {"status": "revoked", "email": "ana@client.com"}


def test_revoked_address_can_be_invited_again(org_setup):
    s = org_setup
    (invitation,) = invite(s, ["ana@client.com"])
    invitation_revoke(invitation=invitation, actor=s["owner"])
    (again,) = invite(s, ["ana@client.com"])
    assert again.pk != invitation.pk
    assert again.status == InvitationStatus.PENDING


# --- accept ---------------------------------------------------------------------------------------------------


def test_accept_grants_the_role_and_the_chosen_workspaces_with_the_chosen_workspace_role(
    org_setup, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    invitation, token = invite_and_get_token(
        s,
        "ana@client.com",
        mailoutbox,
        django_capture_on_commit_callbacks,
        workspaces=[s["campaign"], s["primary"]],
        workspace_role=WorkspaceRole.VIEWER,
    )
    user = UserFactory(email="ana@client.com")

    membership = invitation_accept(token=token, user=user)

    assert membership.organization == s["org"]
    assert membership.role == OrganizationRole.MEMBER
    assert membership.status == MembershipStatus.ACTIVE
    assigned = dict(
        WorkspaceMembership.objects.filter(user=user).values_list("workspace__name", "role"),
    )
    assert assigned == {"Campaign": "viewer", "Primary Workspace": "viewer"}
    assert ws_codenames(user, s["campaign"]) == {"view_workspace"}
    assert ws_codenames(user, s["hidden"]) == set()
    assert org_codenames(user, s["org"]) == {"view_organization"}
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None
    event = AuditEvent.objects.get(organization=s["org"], action="invitation.accepted")
    assert event.actor == user
    assert event.after == {"email": "ana@client.com", "role": "Member"}


def test_accept_as_admin_reaches_every_workspace(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    _, token = invite_and_get_token(
        s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks, role=OrganizationRole.ADMIN
    )
    user = UserFactory(email="ana@client.com")
    membership = invitation_accept(token=token, user=user)
    assert membership.role == OrganizationRole.ADMIN
    assert "manage_members" in org_codenames(user, s["org"])
    assert "manage_workspace" in ws_codenames(user, s["hidden"])


def test_accept_ignores_the_case_of_the_address(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, token = invite_and_get_token(s, "Ana.Silva@Client.COM", mailoutbox, django_capture_on_commit_callbacks)
    assert mailoutbox[0].to == ["ana.silva@client.com"]
    # Even an invitation stored with capitals matches the (lowercase) account address.
    Invitation.objects.filter(pk=invitation.pk).update(email="Ana.Silva@Client.COM")
    user = UserFactory(email="ANA.silva@client.com")
    assert user.email == "ana.silva@client.com"

    membership = invitation_accept(token=token, user=user)

    assert membership.status == MembershipStatus.ACTIVE


def test_accept_by_another_account_is_refused_and_changes_nothing(
    org_setup, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    intruder = UserFactory(email="mallory@client.com")
    before = (
        AuditEvent.objects.filter(organization=s["org"]).count(),
        Membership.objects.filter(organization=s["org"]).count(),
        WorkspaceMembership.objects.filter(workspace__organization=s["org"]).count(),
    )

    with pytest.raises(ValidationError) as caught:
        invitation_accept(token=token, user=intruder)

    message = " ".join(caught.value.messages)
    assert "This invitation is for ana@client.com" in message
    assert "signed in as mallory@client.com" in message
    assert (
        AuditEvent.objects.filter(organization=s["org"]).count(),
        Membership.objects.filter(organization=s["org"]).count(),
        WorkspaceMembership.objects.filter(workspace__organization=s["org"]).count(),
    ) == before
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING
    # The rightful invitee can still use it.
    assert invitation_accept(token=token, user=UserFactory(email="ana@client.com")).status == MembershipStatus.ACTIVE


def test_expired_invitation_is_refused(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    user = UserFactory(email="ana@client.com")
    ttl = timedelta(days=settings.INVITATION_TTL_DAYS)

    with time_machine.travel(invitation.expires_at - timedelta(minutes=1), tick=False):
        assert not Invitation.objects.get(pk=invitation.pk).is_expired
    assert abs(invitation.expires_at - invitation.created_at - ttl) < timedelta(seconds=1)
    with time_machine.travel(invitation.expires_at + timedelta(seconds=1), tick=False):
        with pytest.raises(ValidationError, match="expired"):
            invitation_accept(token=token, user=user)
        assert Invitation.objects.get(pk=invitation.pk).display_status == "Expired"
    assert not Membership.objects.filter(user=user).exists()


def test_reused_token_is_refused(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    _, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    user = UserFactory(email="ana@client.com")
    invitation_accept(token=token, user=user)
    membership_count = Membership.objects.filter(organization=s["org"]).count()

    with pytest.raises(ValidationError, match="already been used"):
        invitation_accept(token=token, user=user)
    assert Membership.objects.filter(organization=s["org"]).count() == membership_count


@pytest.mark.parametrize("token", ["", "x", "nope" * 30])
def test_unknown_tokens_are_refused(org_setup, token):
    user = UserFactory()
    with pytest.raises(ValidationError, match="not valid"):
        invitation_accept(token=token, user=user)


def test_invitation_of_a_deleted_org_stops_working(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    _, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    organization_delete(organization=s["org"], actor=s["owner"], confirm_name="Northwind")
    assert client.get(reverse("orgs:invitation_accept", kwargs={"token": token})).status_code == 404
    with pytest.raises(ValidationError, match="not valid"):
        invitation_accept(token=token, user=UserFactory(email="ana@client.com"))


def test_removed_member_can_be_reinvited_and_is_reactivated(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    member = s["member"]
    member_remove(membership=member, actor=s["owner"])
    assert org_codenames(member.user, s["org"]) == set()

    _, token = invite_and_get_token(
        s,
        member.user.email,
        mailoutbox,
        django_capture_on_commit_callbacks,
        role=OrganizationRole.ADMIN,
    )
    membership = invitation_accept(token=token, user=member.user)

    assert membership.pk == member.pk  # the same row, history intact
    membership.refresh_from_db()
    assert membership.status == MembershipStatus.ACTIVE
    assert membership.removed_at is None
    assert membership.role == OrganizationRole.ADMIN
    assert "manage_members" in org_codenames(member.user, s["org"])


def test_accept_when_already_an_active_member_is_refused(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    user = UserFactory(email="ana@client.com")
    make_member(s["org"], user=user)  # added by other means meanwhile
    with pytest.raises(ValidationError, match="already a member"):
        invitation_accept(token=token, user=user)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_archived_workspace_of_an_invitation_is_not_granted(org_setup, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    _, token = invite_and_get_token(
        s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks, workspaces=[s["campaign"], s["hidden"]]
    )
    workspace_archive(workspace=s["hidden"], actor=s["owner"])
    user = UserFactory(email="ana@client.com")
    invitation_accept(token=token, user=user)
    assert set(WorkspaceMembership.objects.filter(user=user).values_list("workspace__name", flat=True)) == {"Campaign"}
    assert ws_codenames(user, s["hidden"]) == set()


# --- views ----------------------------------------------------------------------------------------------------


def test_anonymous_sees_sign_up_and_log_in_links_that_come_back(
    org_setup, client, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    _, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    path = reverse("orgs:invitation_accept", kwargs={"token": token})

    response = client.get(path)

    assert response.status_code == 200
    body = response.content.decode()
    next_param = quote(path)
    assert f'href="/accounts/signup/?email=ana%40client.com&amp;next={next_param}"' in body
    assert f'href="/accounts/login/?next={next_param}"' in body


def test_anonymous_post_is_sent_to_log_in(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    path = reverse("orgs:invitation_accept", kwargs={"token": token})
    response = client.post(path)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    assert response.url == f"/accounts/login/?next={path}"
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_sign_up_with_the_invited_address_then_accept(
    org_setup, client, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    _, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    path = reverse("orgs:invitation_accept", kwargs={"token": token})
    client.get(path)  # the link as opened from the email

    response = client.post(
        f"/accounts/signup/?next={quote(path)}",
        {"email": "Ana@Client.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == path
    user = User.objects.get(email="ana@client.com")
    # Opening the emailed link proved the address: no second verification email is needed.
    assert EmailAddress.objects.get(user=user).verified is True

    response = client.post(path, follow=True)

    membership = Membership.objects.get(user=user, organization=s["org"])
    assert membership.status == MembershipStatus.ACTIVE
    final_url = response.redirect_chain[-1][0]
    assert final_url == reverse(
        "workspaces:overview", kwargs={"org_slug": s["org"].slug, "ws_slug": s["campaign"].slug}
    )
    assert "Welcome to Northwind!" in response.content.decode()
    # The invitee sees their workspace, not the others, and no Members tab.
    hidden = reverse("workspaces:overview", kwargs={"org_slug": s["org"].slug, "ws_slug": s["hidden"].slug})
    assert client.get(hidden).status_code == 404
    assert client.get(reverse("orgs:members", kwargs={"org_slug": s["org"].slug})).status_code == 404


def test_log_in_then_accept_with_matching_email(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    _, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    user = UserFactory(email="ana@client.com")
    client.force_login(user)
    path = reverse("orgs:invitation_accept", kwargs={"token": token})

    page = client.get(path).content.decode()
    assert "Accept invitation" in page

    response = client.post(path)
    assert response.status_code == 302
    assert response.url == reverse("orgs:open", kwargs={"org_slug": s["org"].slug})
    assert Membership.objects.get(user=user, organization=s["org"]).is_admin is False


def test_wrong_account_sees_the_explanation_and_nothing_changes(
    org_setup, client, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    intruder = UserFactory(email="mallory@client.com")
    client.force_login(intruder)
    path = reverse("orgs:invitation_accept", kwargs={"token": token})

    page = client.get(path)
    assert page.status_code == 200
    assert "This invitation is for ana@client.com, but you are signed in as mallory@client.com" in page.content.decode()
    assert "Accept invitation" not in page.content.decode()

    before = (
        AuditEvent.objects.filter(organization=s["org"]).count(),
        Membership.objects.filter(organization=s["org"]).count(),
    )
    response = client.post(path)
    assert response.status_code == 400
    assert "Sign out and sign in (or sign up) as ana@client.com" in response.content.decode()
    assert (
        AuditEvent.objects.filter(organization=s["org"]).count(),
        Membership.objects.filter(organization=s["org"]).count(),
    ) == before
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING
    assert not Membership.objects.filter(user=intruder).exists()


@pytest.mark.parametrize("state", ["expired", "revoked", "accepted"])
def test_unusable_invitation_page_says_why(org_setup, client, mailoutbox, django_capture_on_commit_callbacks, state):
    s = org_setup
    invitation, token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    user = UserFactory(email="ana@client.com")
    if state == "revoked":
        invitation_revoke(invitation=invitation, actor=s["owner"])
    elif state == "accepted":
        invitation_accept(token=token, user=user)
    client.force_login(user)
    path = reverse("orgs:invitation_accept", kwargs={"token": token})
    expected = {
        "expired": "This invitation has expired",
        "revoked": "This invitation was revoked",
        "accepted": "This invitation has already been used",
    }[state]

    days = settings.INVITATION_TTL_DAYS + 1 if state == "expired" else 0
    with time_machine.travel(now() + timedelta(days=days), tick=False):
        page = client.get(path)
        assert expected in page.content.decode()
        assert "Accept invitation" not in page.content.decode()
        response = client.post(path)
    assert response.status_code == 400
    assert expected in response.content.decode()


def test_invite_view_reports_every_problem_and_creates_nothing(
    org_setup, client, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    client.force_login(s["admin"].user)
    url = reverse("orgs:invitations_create", kwargs={"org_slug": s["org"].slug})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "emails": "ok@client.com, not-an-email\ndup@client.com, DUP@client.com",
                "role": OrganizationRole.MEMBER,
                "workspaces": [s["campaign"].pk],
                "workspace_role": "member",
            },
        )
    assert response.status_code == 400
    body = response.content.decode()
    assert "“not-an-email” is not a valid email address." in body
    assert "dup@client.com is listed more than once." in body
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()
    assert mailoutbox == []


def test_invite_view_reports_members_and_pending_together(
    org_setup, client, mailoutbox, django_capture_on_commit_callbacks
):
    s = org_setup
    invite(s, ["pending@client.com"])
    client.force_login(s["owner"])
    url = reverse("orgs:invitations_create", kwargs={"org_slug": s["org"].slug})
    response = client.post(
        url,
        {
            "emails": f"new@client.com\n{s['member'].user.email}\npending@client.com",
            "role": OrganizationRole.MEMBER,
            "workspaces": [s["campaign"].pk],
            "workspace_role": "member",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert f"{s['member'].user.email} is already a member of Northwind." in body
    assert "pending@client.com already has a pending invitation" in body
    assert list(Invitation.objects.filter(organization=s["org"]).values_list("email", flat=True)) == [
        "pending@client.com"
    ]


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("role", {"role": OrganizationRole.OWNER}),
        ("role", {"role": "abc"}),
        ("workspaces", {"workspaces": []}),
        ("workspaces", {"workspaces": ["not-a-number"]}),
        ("workspaces", {"workspaces": [987654]}),
        ("workspaces", {"workspaces": ["9223372036854775808"]}),
        ("workspaces", {"workspaces": [str(-(2**63) - 1)]}),
        ("workspace_role", {"workspace_role": "owner"}),
    ],
)
def test_invite_view_bad_input_is_a_form_error(org_setup, client, field, data):
    s = org_setup
    client.force_login(s["owner"])
    post = {"emails": "ana@client.com", "role": OrganizationRole.MEMBER, "workspaces": [s["campaign"].pk]}
    post["workspace_role"] = "member"
    post.update(data)
    response = client.post(reverse("orgs:invitations_create", kwargs={"org_slug": s["org"].slug}), post)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_invite_view_refuses_a_workspace_of_another_org(org_setup, client):
    s = org_setup
    foreign = Workspace.objects.get(organization=make_organization(name="Elsewhere"), is_primary=True)
    client.force_login(s["owner"])
    response = client.post(
        reverse("orgs:invitations_create", kwargs={"org_slug": s["org"].slug}),
        {"emails": "ana@client.com", "role": 1, "workspaces": [foreign.pk], "workspace_role": "member"},
    )
    assert response.status_code == 400
    assert not Invitation.objects.filter(organization=org_setup["org"]).exists()


def test_invite_view_success_sends_and_says_so(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    client.force_login(s["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("orgs:invitations_create", kwargs={"org_slug": s["org"].slug}),
            {
                "emails": "ana@client.com\nben@client.com",
                "role": OrganizationRole.ADMIN,
                "workspaces": [s["campaign"].pk],
                "workspace_role": "viewer",
            },
            follow=True,
        )
    assert response.redirect_chain[-1][0] == reverse("orgs:members", kwargs={"org_slug": s["org"].slug})
    assert "Sent 2 invitations." in response.content.decode()
    assert len(mailoutbox) == 2
    assert set(Invitation.objects.filter(organization=s["org"]).values_list("email", "role", "workspace_role")) == {
        ("ana@client.com", OrganizationRole.ADMIN, "viewer"),
        ("ben@client.com", OrganizationRole.ADMIN, "viewer"),
    }


def test_resend_and_revoke_views(org_setup, client, mailoutbox, django_capture_on_commit_callbacks):
    s = org_setup
    invitation, old_token = invite_and_get_token(s, "ana@client.com", mailoutbox, django_capture_on_commit_callbacks)
    client.force_login(s["admin"].user)
    kwargs = {"org_slug": s["org"].slug, "invitation_id": invitation.pk}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("orgs:invitation_resend", kwargs=kwargs), follow=True)
    assert "Sent a new invitation link to ana@client.com." in response.content.decode()
    assert len(mailoutbox) == 2
    assert invitation_for_token(old_token) is None

    confirm = client.get(reverse("orgs:invitation_revoke", kwargs=kwargs))
    assert "Revoke the invitation of ana@client.com?" in confirm.content.decode()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING  # GET only asks

    response = client.post(reverse("orgs:invitation_revoke", kwargs=kwargs), follow=True)
    assert "The invitation of ana@client.com was revoked." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED

    response = client.post(reverse("orgs:invitation_revoke", kwargs=kwargs), follow=True)
    assert "already revoked" in response.content.decode()


def test_invitation_of_another_org_is_404_for_resend_and_revoke(org_setup, client):
    s = org_setup
    (invitation,) = invite(s, ["ana@client.com"])
    other = make_organization(name="Elsewhere")
    client.force_login(other.created_by)
    kwargs = {"org_slug": other.slug, "invitation_id": invitation.pk}
    assert client.post(reverse("orgs:invitation_resend", kwargs=kwargs)).status_code == 404
    assert client.post(reverse("orgs:invitation_revoke", kwargs=kwargs)).status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING
