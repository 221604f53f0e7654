from django.urls import path

from orgs import views

app_name = "orgs"

urlpatterns = [
    path("orgs/", views.organization_list, name="list"),
    path("orgs/new/", views.organization_create_view, name="create"),
    path("invitations/<str:token>/", views.invitation_respond, name="invitation"),
    path("o/<slug:org_slug>/", views.organization_open, name="open"),
    path("o/<slug:org_slug>/members/", views.member_list, name="members"),
    path("o/<slug:org_slug>/members/invite/", views.member_invite, name="invite"),
    path("o/<slug:org_slug>/members/<int:membership_id>/", views.member_detail, name="member"),
    path("o/<slug:org_slug>/members/<int:membership_id>/role/", views.member_role_change, name="member_role"),
    path(
        "o/<slug:org_slug>/members/<int:membership_id>/workspaces/",
        views.member_workspaces_change,
        name="member_workspaces",
    ),
    path("o/<slug:org_slug>/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
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
    path("o/<slug:org_slug>/settings/transfer/", views.ownership_transfer, name="transfer"),
    path("o/<slug:org_slug>/settings/delete/", views.organization_delete_view, name="delete"),
    path("o/<slug:org_slug>/notifications/", views.notification_list, name="notifications"),
    path("o/<slug:org_slug>/notifications/read/", views.notifications_mark_read, name="notifications_read"),
    path("o/<slug:org_slug>/audit/", views.audit_log, name="audit"),
    path("o/<slug:org_slug>/audit/export.csv", views.audit_log_export, name="audit_export"),
]
