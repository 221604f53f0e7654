from datetime import date

from django.urls import path, register_converter

from usage import views


class MonthConverter:
    """A calendar month in a URL: 2026-08."""

    regex = r"[0-9]{4}-[0-9]{2}"

    def to_python(self, value: str) -> date:
        year, month = (int(part) for part in value.split("-"))
        try:
            return date(year, month, 1)
        except ValueError as error:
            raise ValueError(value) from error  # not a month: the URL does not match

    def to_url(self, value: date) -> str:
        return f"{value:%Y-%m}"


register_converter(MonthConverter, "month")

app_name = "usage"

urlpatterns = [
    path("o/<slug:org_slug>/w/<slug:ws_slug>/statements/", views.statement_list, name="statements"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/statements/<month:period>/", views.statement_detail, name="statement"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/statements/<month:period>.csv", views.statement_csv, name="statement_csv"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/statements/<month:period>.pdf", views.statement_pdf, name="statement_pdf"),
    path("o/<slug:org_slug>/usage/export.csv", views.usage_export_csv, name="usage_export_csv"),
    path("o/<slug:org_slug>/usage/exports/", views.usage_exports, name="usage_exports"),
    path("o/<slug:org_slug>/usage/exports/new/", views.usage_export_create_view, name="usage_export_create"),
    path("o/<slug:org_slug>/usage/exports/<int:export_id>/", views.usage_export_detail, name="usage_export"),
    path(
        "o/<slug:org_slug>/usage/exports/<int:export_id>/download/",
        views.usage_export_download,
        name="usage_export_download",
    ),
]
