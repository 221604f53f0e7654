from django.urls import path

from workspaces import views

app_name = "workspaces"

urlpatterns = [
    path("o/<slug:org_slug>/workspaces/", views.workspace_list, name="list"),
    path("o/<slug:org_slug>/workspaces/new/", views.workspace_create_view, name="workspace_create"),
    path(
        "o/<slug:org_slug>/workspaces/<int:workspace_id>/restore/",
        views.workspace_restore_view,
        name="workspace_restore",
    ),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/", views.workspace_overview, name="overview"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/settings/", views.workspace_settings, name="settings"),
    path(
        "o/<slug:org_slug>/w/<slug:ws_slug>/settings/client-rate/",
        views.client_rate_set_view,
        name="client_rate_set",
    ),
    path(
        "o/<slug:org_slug>/w/<slug:ws_slug>/settings/members/",
        views.workspace_member_set_view,
        name="workspace_member_set",
    ),
    path(
        "o/<slug:org_slug>/w/<slug:ws_slug>/settings/members/<int:user_id>/remove/",
        views.workspace_member_remove_view,
        name="workspace_member_remove",
    ),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/delete/", views.workspace_archive_view, name="workspace_archive"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/history/", views.history_list, name="history"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/history/<int:item_id>/", views.history_item_detail, name="history_item"),
    path(
        "o/<slug:org_slug>/w/<slug:ws_slug>/history/<int:item_id>/delete/",
        views.history_item_delete_view,
        name="history_item_delete",
    ),
    path(
        "o/<slug:org_slug>/w/<slug:ws_slug>/history/<int:item_id>/media/",
        views.history_item_media,
        name="history_media",
    ),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/settings/api-keys/", views.api_key_create_view, name="api_key_create"),
    path(
        "o/<slug:org_slug>/w/<slug:ws_slug>/settings/api-keys/<int:key_id>/revoke/",
        views.api_key_revoke_view,
        name="api_key_revoke",
    ),
]
