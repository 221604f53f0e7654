from django.urls import path

from orgs import views

app_name = "orgs"

urlpatterns = [
    path("orgs/", views.organization_list, name="list"),
    path("orgs/new/", views.organization_create_view, name="create"),
    path("o/<slug:org_slug>/", views.organization_open, name="open"),
]
