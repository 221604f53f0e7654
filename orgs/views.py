from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.timezone import now as dj_now
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orgs.forms import (
    AdminKeyForm,
    AuditFilterForm,
    InviteForm,
    MemberRoleForm,
    MemberWorkspacesForm,
    OrganizationCreateForm,
    OrganizationDeleteForm,
    OrganizationProfileForm,
    TransferOwnershipForm,
)
from orgs.models import (
    AdminKey,
    AuditEvent,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipStatus,
    Notification,
    OrganizationRole,
)
from orgs.selectors import audit_events, invitation_for_token, memberships_for_menu, organization_admin_keys
from orgs.services import (
    admin_key_create,
    admin_key_revoke,
    invitation_resend,
    invitation_revoke,
    notifications_read,
    organization_two_factor_require,
    organization_update,
)
from qolaba.access import (
    SESSION_ORGANIZATION,
    AuthenticatedRequest,
    TenantRequest,
    organization_view,
    remembered_organization,
    remembered_workspace,
)
from qolaba.htmx import htmx_partial, render_page
from qolaba.lifecycle import organization_create, organization_delete
from qolaba.routers import reading_from_replica, replica_alias
from qolaba.spreadsheets import csv_line_writer, spreadsheet_safe
from qolaba.views import (
    confirmed_action,
    form_add_service_errors,
    immediate_action,
    usage_column_headers,
    usage_columns_params,
    usage_period_param,
)
from usage.columns import ColumnsPeriodChoice, GroupCredits, columns_sorted, usage_columns_by_member
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.selectors import members_table
from workspaces.services import (
    invitation_accept,
    invitations_create,
    member_remove,
    member_role_change,
    member_workspaces_set,
    ownership_transfer,
)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send people where they left off: their organization and workspace, or to create one."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    organization = remembered_organization(request)
    if organization is None:
        return redirect("orgs:organization_create")
    return redirect("orgs:open", org_slug=organization.slug)


@require_GET
@login_required
def organization_list(request: AuthenticatedRequest) -> HttpResponse:
    context = {
        "memberships": memberships_for_menu(user=request.user),
        "current_organization_id": request.session.get(SESSION_ORGANIZATION),
    }
    return render_page(request, "orgs/list.html", context, partials={"organization-menu"})


@require_http_methods(["GET", "POST"])
@login_required
def organization_create_view(request: AuthenticatedRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = organization_create(
                name=form.cleaned_data["name"], owner=request.user, timezone=form.cleaned_data["timezone"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{organization.name} is ready. This is its Primary Workspace.")
            return redirect("orgs:open", org_slug=organization.slug)
    has_organizations = memberships_for_menu(user=request.user).exists()
    return render(request, "orgs/create.html", {"form": form, "has_organizations": has_organizations})


@require_GET
@organization_view()
def organization_open(request: TenantRequest, org_slug: str) -> HttpResponse:
    """Switching organization lands here: open the remembered (or first reachable) workspace."""
    organization = request.tenant.organization
    workspace = remembered_workspace(request, organization)
    if workspace is None:
        return render(request, "orgs/no_workspace.html", status=200)
    return redirect("workspaces:overview", org_slug=organization.slug, ws_slug=workspace.slug)


# --- members -------------------------------------------------------------------------------------------------


def _members_context(request: TenantRequest) -> dict[str, Any]:
    organization = request.tenant.organization
    search = request.GET.get("q", "").strip()[:100]
    status = request.GET.get("status", "")
    if status not in {"", "active", "pending", "removed"}:
        status = ""
    members, invitations = members_table(organization=organization, search=search, status=status)
    params = {"q": search, "status": status}
    context: dict[str, Any] = {"search": search, "status": status}
    page: Page[Any]
    member_rows: list[tuple[Membership, GroupCredits | None]]
    if not request.tenant.can("view_all_usage"):
        page = Paginator(members, settings.MEMBERS_PAGE_SIZE).get_page(request.GET.get("page"))
        member_rows = [(member, None) for member in page.object_list]
    else:
        period, sort = usage_columns_params(request, organization)
        usage = usage_columns_by_member(organization=organization, period=period)
        params["period"] = usage_period_param(period)
        if sort.column:
            # Sorted by credits: the ids in that order, then only the page's rows (with their workspaces).
            keys = columns_sorted(members.values_list("pk", "user_id"), usage=lambda k: usage.of(k[1]), sort=sort)
            page = Paginator(keys, settings.MEMBERS_PAGE_SIZE).get_page(request.GET.get("page"))
            rows = members.in_bulk([pk for pk, _ in page.object_list])
            listed = [rows[pk] for pk, _ in page.object_list]
        else:
            page = Paginator(members, settings.MEMBERS_PAGE_SIZE).get_page(request.GET.get("page"))
            listed = list(page.object_list)
        member_rows = [(member, usage.of(member.user_id)) for member in listed]
        context |= {
            "usage": usage,
            "sort": sort,
            "usage_headers": usage_column_headers(sort=sort, params=params),
            "period_choices": ColumnsPeriodChoice.choices,
        }
        params["sort"] = sort.value
    return context | {
        "page": page,
        "member_rows": member_rows,
        "invitations": list(invitations) if page.number == 1 else [],
        "querystring": urlencode({k: v for k, v in params.items() if v}),
    }


@require_GET
@organization_view("manage_members")
def member_list(request: TenantRequest, org_slug: str) -> HttpResponse:
    context = {**_members_context(request), "invite_form": InviteForm(organization=request.tenant.organization)}
    return render_page(request, "orgs/members.html", context, partials={"members-table"})


@require_http_methods(["GET", "POST"])
@organization_view("manage_members")
def invitations_create_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    form = InviteForm(request.POST or None, organization=organization)
    if request.method == "POST" and form.is_valid():
        try:
            invitations = invitations_create(
                organization=organization,
                emails=form.cleaned_data["emails"],
                role=form.cleaned_data["role"],
                workspaces=list(form.cleaned_data["workspaces"]),
                workspace_role=form.cleaned_data["workspace_role"],
                actor=request.user,
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, f"Sent {len(invitations)} invitation{pluralize(len(invitations))}.")
            return redirect("orgs:members", org_slug=organization.slug)
    return render(request, "orgs/invite.html", {"form": form}, status=400 if form.errors else 200)


def _member_or_404(request: TenantRequest, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, organization=request.tenant.organization
    )


@require_GET
@organization_view("manage_members")
def member_detail(request: TenantRequest, org_slug: str, membership_id: int) -> HttpResponse:
    membership = _member_or_404(request, membership_id)
    return render(request, "orgs/member_detail.html", _member_detail_context(request, membership))


def _member_detail_context(
    request: TenantRequest,
    membership: Membership,
    role_form: MemberRoleForm | None = None,
    workspaces_form: MemberWorkspacesForm | None = None,
) -> dict[str, Any]:
    organization = request.tenant.organization
    workspaces = list(Workspace.objects.live().filter(organization=organization))
    current = dict(
        WorkspaceMembership.objects.filter(workspace__in=workspaces, user_id=membership.user_id).values_list(
            "workspace_id", "role"
        )
    )
    actor = request.tenant.membership
    can_manage = (
        membership.status == MembershipStatus.ACTIVE
        and membership.user_id != actor.user_id
        and membership.role != OrganizationRole.OWNER
        and membership.role <= actor.role
    )
    return {
        "member": membership,
        "can_manage": can_manage,
        "role_form": role_form or MemberRoleForm(initial={"role": membership.role}),
        "workspaces_form": workspaces_form or MemberWorkspacesForm(workspaces=workspaces, current=current),
    }


@require_POST
@organization_view("manage_members")
def member_role_change_view(request: TenantRequest, org_slug: str, membership_id: int) -> HttpResponse:
    membership = _member_or_404(request, membership_id)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            member_role_change(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            membership.refresh_from_db()
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
            return redirect("orgs:member", org_slug=org_slug, membership_id=membership.pk)
    context = _member_detail_context(request, membership, role_form=form)
    return render(request, "orgs/member_detail.html", context, status=400)


@require_POST
@organization_view("manage_members")
def member_workspaces_set_view(request: TenantRequest, org_slug: str, membership_id: int) -> HttpResponse:
    membership = _member_or_404(request, membership_id)
    workspaces = list(Workspace.objects.live().filter(organization=request.tenant.organization))
    form = MemberWorkspacesForm(request.POST, workspaces=workspaces, current={})
    if form.is_valid():
        try:
            member_workspaces_set(membership=membership, assignments=form.assignments(), actor=request.user)
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, f"Workspaces of {membership.user.email} updated.")
            return redirect("orgs:member", org_slug=org_slug, membership_id=membership.pk)
    context = _member_detail_context(request, membership, workspaces_form=form)
    return render(request, "orgs/member_detail.html", context, status=400)


@require_http_methods(["GET", "POST"])
@organization_view("manage_members")
def member_remove_view(request: TenantRequest, org_slug: str, membership_id: int) -> HttpResponse:
    membership = _member_or_404(request, membership_id)
    return confirmed_action(
        request,
        run=lambda: member_remove(membership=membership, actor=request.user),
        success_message=f"{membership.user.email} was removed. Their history and usage stay.",
        success_url=reverse("orgs:members", kwargs={"org_slug": org_slug}),
        confirmation={
            "title": f"Remove {membership.user.email}?",
            "body": "They lose access to the organization and all its workspaces immediately, including in open "
            "sessions. What they generated stays in the workspaces' history, attributed to them.",
            "confirm_label": "Remove member",
            "cancel_url": reverse("orgs:member", kwargs={"org_slug": org_slug, "membership_id": membership.pk}),
        },
    )


@require_http_methods(["GET", "POST"])
@organization_view("transfer_ownership")
def ownership_transfer_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    form = TransferOwnershipForm(request.POST or None, organization=organization, actor=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            target = ownership_transfer(
                organization=organization, new_owner=form.cleaned_data["new_owner"], actor=request.user
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, f"{target.user.email} is now the Owner. You are an Admin.")
            return redirect("orgs:members", org_slug=org_slug)
    return render(request, "orgs/transfer.html", {"form": form}, status=400 if form.errors else 200)


# --- invitations ---------------------------------------------------------------------------------------------


def _invitation_or_404(request: TenantRequest, invitation_id: int) -> Invitation:
    return get_object_or_404(Invitation, pk=invitation_id, organization=request.tenant.organization)


@require_POST
@organization_view("manage_members")
def invitation_resend_view(request: TenantRequest, org_slug: str, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    return immediate_action(
        request,
        run=lambda: invitation_resend(invitation=invitation, actor=request.user),
        success_message=f"Sent a new invitation link to {invitation.email}.",
        success_url=reverse("orgs:members", kwargs={"org_slug": org_slug}),
    )


@require_http_methods(["GET", "POST"])
@organization_view("manage_members")
def invitation_revoke_view(request: TenantRequest, org_slug: str, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    members_url = reverse("orgs:members", kwargs={"org_slug": org_slug})
    return confirmed_action(
        request,
        run=lambda: invitation_revoke(invitation=invitation, actor=request.user),
        success_message=f"The invitation of {invitation.email} was revoked.",
        success_url=members_url,
        confirmation={
            "title": f"Revoke the invitation of {invitation.email}?",
            "body": "The link in their email stops working. You can invite them again later.",
            "confirm_label": "Revoke invitation",
            "cancel_url": members_url,
        },
    )


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation link: anyone may open it; only the invited address can accept it."""
    invitation = invitation_for_token(token)
    if invitation is None:
        return render(request, "orgs/invitation.html", {"invalid": True}, status=404)
    error = None
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            membership = invitation_accept(token=token, user=request.user)
        except ValidationError as refusal:
            error = " ".join(refusal.messages)
        else:
            messages.success(request, f"Welcome to {membership.organization.name}!")
            return redirect("orgs:open", org_slug=membership.organization.slug)
    elif invitation.status == InvitationStatus.PENDING and not invitation.is_expired:
        # The link itself proves the address: signing up with it needs no second verification email.
        get_adapter(request).stash_verified_email(request, invitation.email)
    user_email = request.user.email.lower() if request.user.is_authenticated else None
    context = {
        "invitation": invitation,
        "error": error,
        "email_matches": user_email == invitation.email.lower(),
        "next": quote(request.get_full_path()),
    }
    return render(request, "orgs/invitation.html", context, status=400 if error else 200)


# --- profile -------------------------------------------------------------------------------------------------


def _admin_keys_context(
    request: TenantRequest, form: AdminKeyForm | None = None, new_key: AdminKey | None = None, new_secret: str = ""
) -> dict[str, Any]:
    """The Profile tab's admin keys panel, for those who may read every workspace's usage (Owner, Admins)."""
    if not request.tenant.can("view_all_usage"):
        return {}
    active, revoked = organization_admin_keys(organization=request.tenant.organization)
    return {
        "admin_key_form": form or AdminKeyForm(),
        "admin_keys": active,
        "revoked_admin_keys": revoked,
        "new_key": new_key,
        "new_secret": new_secret,
    }


def _profile_context(
    request: TenantRequest,
    form: OrganizationProfileForm | None = None,
    admin_keys: dict[str, Any] | None = None,
) -> dict[str, Any]:
    organization = request.tenant.organization
    if form is None:
        initial = {
            "name": organization.name,
            "timezone": organization.timezone,
            "alert_thresholds": ", ".join(str(t) for t in organization.alert_thresholds),
        }
        form = OrganizationProfileForm(initial=initial)
    return {
        "form": form,
        "delete_form": OrganizationDeleteForm(organization=organization),
        **(admin_keys if admin_keys is not None else _admin_keys_context(request)),
    }


@require_http_methods(["GET", "POST"])
@organization_view("edit_profile")
def organization_profile(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    initial = {
        "name": organization.name,
        "timezone": organization.timezone,
        "alert_thresholds": ", ".join(str(t) for t in organization.alert_thresholds),
        "runway_alert_days": organization.runway_alert_days,
    }
    form = OrganizationProfileForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            organization_update(
                organization=organization,
                actor=request.user,
                name=form.cleaned_data["name"],
                timezone=form.cleaned_data["timezone"],
                logo=form.cleaned_data.get("logo") or None,
                remove_logo=form.cleaned_data.get("remove_logo", False),
                alert_thresholds=form.cleaned_data.get("alert_thresholds"),
                runway_alert_days=form.cleaned_data.get("runway_alert_days"),
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, "Organization profile saved.")
            return redirect("orgs:profile", org_slug=organization.slug)
    context = _profile_context(request, form=form)
    return render(request, "orgs/profile.html", context, status=400 if form.errors else 200)


@require_POST
@organization_view("view_all_usage")
def admin_key_create_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    """Create an admin key and show its secret in this response only: it is not stored anywhere it could be read
    again (not in the session, the messages or a URL), and the response is not cached. A key reads every
    workspace's usage, so only those who may see all of it (Owner, Admins) make one."""
    form = AdminKeyForm(request.POST)
    created: AdminKey | None = None
    secret = ""
    if form.is_valid():
        try:
            created, secret = admin_key_create(
                organization=request.tenant.organization, actor=request.user, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            form = AdminKeyForm()
    admin_keys = _admin_keys_context(request, form, new_key=created, new_secret=secret)
    partials = {"admin-keys"}
    if htmx_partial(request, partials):
        # A refusal is a 200 here: htmx swaps only successful answers, and the form's errors must be shown.
        context, status = admin_keys, 200
    else:
        context, status = _profile_context(request, admin_keys=admin_keys), 200 if created else 400
    response = render_page(request, "orgs/profile.html", context, partials=partials, status=status)
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
@organization_view("view_all_usage")
def admin_key_revoke_view(request: TenantRequest, org_slug: str, admin_key_id: int) -> HttpResponse:
    admin_key = get_object_or_404(AdminKey, pk=admin_key_id, organization=request.tenant.organization)
    profile_url = reverse("orgs:profile", kwargs={"org_slug": org_slug})
    return confirmed_action(
        request,
        run=lambda: admin_key_revoke(admin_key=admin_key, actor=request.user),
        success_message=f"The admin key “{admin_key.name}” ({admin_key.display_prefix}) was revoked.",
        success_url=f"{profile_url}#admin-keys",
        confirmation={
            "title": f"Revoke the admin key “{admin_key.name}”?",
            "body": "Whatever uses it can no longer read the organization's usage, from its next request. This "
            "cannot be undone: create a new key to give access again.",
            "confirm_label": "Revoke key",
            "cancel_url": f"{profile_url}#admin-keys",
        },
    )


@require_POST
@organization_view("edit_profile")
def organization_two_factor_require_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    required = request.POST.get("required") == "on"
    return immediate_action(
        request,
        run=lambda: organization_two_factor_require(organization=organization, actor=request.user, required=required),
        success_message="Every member now needs two-factor sign-in to open the organization."
        if required
        else "Two-factor sign-in is no longer required.",
        success_url=reverse("orgs:profile", kwargs={"org_slug": organization.slug}),
    )


@require_http_methods(["GET", "POST"])
@organization_view("delete_organization")
def organization_delete_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    organization = request.tenant.organization
    form = OrganizationDeleteForm(request.POST or None, organization=organization)
    if request.method == "POST" and form.is_valid():
        try:
            organization_delete(
                organization=organization, actor=request.user, confirm_name=form.cleaned_data["confirm_name"]
            )
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            request.session.pop(SESSION_ORGANIZATION, None)
            messages.success(request, f"{organization.name} was deleted.")
            return redirect("home")
    return render(request, "orgs/delete.html", {"form": form}, status=400 if form.errors else 200)


# --- audit log -----------------------------------------------------------------------------------------------


def _audit_filtered(request: TenantRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    organization = request.tenant.organization
    actions = list(
        AuditEvent.objects.for_organization(organization).order_by().values_list("action", flat=True).distinct()
    )
    form = AuditFilterForm(request.GET or None, actions=sorted(actions))
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_events(
        organization=organization,
        action=filters.get("action") or "",
        actor=filters.get("actor") or "",
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
    )
    return form, events


@require_GET
@organization_view("view_audit_log")
def audit_log(request: TenantRequest, org_slug: str) -> HttpResponse:
    form, events = _audit_filtered(request)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {"form": form, "page": page, "querystring": params.urlencode()}
    return render_page(request, "orgs/audit.html", context, partials={"audit-table"})


@require_GET
@organization_view("view_audit_log")
def audit_log_export(request: TenantRequest, org_slug: str) -> StreamingHttpResponse:
    # A download of any length: read from the replica when there is one (qolaba.routers), also while it streams.
    with reading_from_replica():
        _, events = _audit_filtered(request)
    events = events.using(replica_alias())
    header = ["time", "actor", "action", "target_type", "target_id", "target", "before", "after", "ip"]

    def rows() -> Iterator[list[str]]:
        yield header
        for event in events.iterator(chunk_size=2000):
            yield [
                event.created_at.isoformat(),
                event.actor_email,
                event.action,
                event.target_type,
                event.target_id,
                event.target_repr,
                json.dumps(event.before, sort_keys=True),
                json.dumps(event.after, sort_keys=True),
                event.ip_address or "",
            ]

    writer = csv_line_writer()
    response = StreamingHttpResponse(
        (writer.writerow([spreadsheet_safe(cell) for cell in row]) for row in rows()), content_type="text/csv"
    )
    filename = f"{request.tenant.organization.slug}-audit-{dj_now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- notifications -------------------------------------------------------------------------------------------


@require_GET
@organization_view()
def notification_list(request: TenantRequest, org_slug: str) -> HttpResponse:
    notifications = Notification.objects.filter(user=request.user, organization=request.tenant.organization)
    # The unread count is the bell's, from the context processor.
    context = {"notifications": notifications[:50]}
    return render_page(request, "orgs/notifications.html", context, partials={"notification-menu"})


@require_POST
@organization_view()
def notifications_read_view(request: TenantRequest, org_slug: str) -> HttpResponse:
    notifications_read(user=request.user, organization=request.tenant.organization)
    messages.success(request, "All notifications marked as read.")
    return redirect("orgs:notifications", org_slug=org_slug)
