from django.urls import path

from workspaces import views

app_name = "workspaces"

urlpatterns = [
    path("o/<slug:org_slug>/workspaces/", views.workspace_list, name="list"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/", views.workspace_overview, name="overview"),
]
