from django.urls import path

from orgs import views

app_name = "orgs"

urlpatterns = [
    path("orgs/", views.organization_list, name="list"),
    path("orgs/new/", views.organization_create_view, name="organization_create"),
    path("invitations/<str:token>/", views.invitation_accept_view, name="invitation_accept"),
    path("o/<slug:org_slug>/", views.organization_open, name="open"),
    path("o/<slug:org_slug>/members/", views.member_list, name="members"),
    path("o/<slug:org_slug>/members/invite/", views.invitations_create_view, name="invitations_create"),
    path("o/<slug:org_slug>/members/<int:membership_id>/", views.member_detail, name="member"),
    path(
        "o/<slug:org_slug>/members/<int:membership_id>/role/", views.member_role_change_view, name="member_role_change"
    ),
    path(
        "o/<slug:org_slug>/members/<int:membership_id>/workspaces/",
        views.member_workspaces_set_view,
        name="member_workspaces_set",
    ),
    path("o/<slug:org_slug>/members/<int:membership_id>/remove/", views.member_remove_view, name="member_remove"),
    path(
        "o/<slug:org_slug>/invitations/<int:invitation_id>/resend/",
        views.invitation_resend_view,
        name="invitation_resend",
    ),
    path(
        "o/<slug:org_slug>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("o/<slug:org_slug>/settings/", views.organization_profile, name="profile"),
    path("o/<slug:org_slug>/settings/admin-keys/", views.admin_key_create_view, name="admin_key_create"),
    path(
        "o/<slug:org_slug>/settings/admin-keys/<int:admin_key_id>/revoke/",
        views.admin_key_revoke_view,
        name="admin_key_revoke",
    ),
    path(
        "o/<slug:org_slug>/settings/two-factor/",
        views.organization_two_factor_require_view,
        name="organization_two_factor_require",
    ),
    path("o/<slug:org_slug>/settings/transfer/", views.ownership_transfer_view, name="ownership_transfer"),
    path("o/<slug:org_slug>/settings/delete/", views.organization_delete_view, name="organization_delete"),
    path("o/<slug:org_slug>/notifications/", views.notification_list, name="notifications"),
    path("o/<slug:org_slug>/notifications/read/", views.notifications_read_view, name="notifications_read"),
    path("o/<slug:org_slug>/audit/", views.audit_log, name="audit"),
    path("o/<slug:org_slug>/audit/export.csv", views.audit_log_export, name="audit_export"),
]
