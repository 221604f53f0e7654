from django.contrib import admin
from django.urls import include, path

from orgs.views import home

admin.site.site_header = "Qolaba staff"
admin.site.site_title = "Qolaba staff"
admin.site.index_title = "Support"

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("orgs.urls")),
    path("", include("workspaces.urls")),
    path("", include("billing.urls")),
]
