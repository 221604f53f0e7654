from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path

from orgs.views import home
from usage.api import api, not_found

admin.site.site_header = "Qolaba staff"
admin.site.site_title = "Qolaba staff"
admin.site.index_title = "Support"

handler500 = "qolaba.outage.server_error"

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("orgs.urls")),
    path("", include("workspaces.urls")),
    path("", include("billing.urls")),
    path("", include("usage.urls")),
    path("", include("usage.studio.urls")),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", not_found),
]

if settings.DEBUG:
    # Development only: organization logos (public media). History media is private and never served from here.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
