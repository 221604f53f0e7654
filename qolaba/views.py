"""View helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from qolaba.htmx import dialog_done, refusal_status, render_page
from qolaba.refusals import Refusal
from qolaba.tools import ReportGroup
from usage.columns import ColumnsPeriod, ColumnsPeriodChoice, ColumnsSort, columns_period, columns_sort


def form_add_service_errors(form: forms.Form, error: ValidationError | Refusal) -> None:
    """Show a service's refusal on the form: field errors on their fields, the rest above the form."""
    if isinstance(error, Refusal):
        form.add_error(None, error.message)
    elif hasattr(error, "error_dict"):
        for field_name, errors in error.error_dict.items():
            form.add_error(field_name if field_name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def confirm_response(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """A confirmation for a destructive action: the dialog's content for htmx, a page of its own without JavaScript.

    `context` holds title, body, confirm_label, action (the POST URL), cancel_url and optionally error.
    """
    return render_page(request, "confirm.html", context, partials={"dialog-body"}, status=status)


def confirmed_action(
    request: HttpRequest,
    *,
    run: Callable[[], object],
    success_message: str,
    success_url: str,
    confirmation: dict[str, Any],
) -> HttpResponse:
    """A destructive action behind a confirmation: GET asks (dialog or page), POST runs the service.

    A refusal from the service (ValidationError) is shown on the confirmation, with status 400.
    """
    error = None
    if request.method == "POST":
        try:
            run()
        except ValidationError as refusal:
            error = " ".join(refusal.messages)
        else:
            messages.success(request, success_message)
            return dialog_done(request, success_url)
    context = {**confirmation, "action": request.path, "error": error}
    return confirm_response(request, context, status=refusal_status(request) if error else 200)


def immediate_action(
    request: HttpRequest, *, run: Callable[[], object], success_message: str, success_url: str
) -> HttpResponse:
    """An action that a button runs at once (no form, no confirmation): it says how it went on the page it returns to.

    A refusal from the service (ValidationError) becomes the error message.
    """
    try:
        run()
    except ValidationError as refusal:
        messages.error(request, " ".join(refusal.messages))
    else:
        messages.success(request, success_message)
    return redirect(success_url)


# --- usage columns (Members and Workspaces tabs) -------------------------------------------------------------------

USAGE_COLUMNS = (
    ("chatbot", ReportGroup.CHATBOT.label),
    ("image_speech", ReportGroup.IMAGE_SPEECH.label),
    ("total", "Total"),
)


@dataclass(frozen=True)
class UsageColumnHeader:
    """A sortable credit column's header: a link (also an htmx request) that sorts by it, most used first."""

    column: str
    label: str
    query: str  # the querystring of the link, without the "?"
    aria_sort: str  # the header's aria-sort: none, ascending or descending


def usage_columns_params(request: HttpRequest, organization: Any) -> tuple[ColumnsPeriod, ColumnsSort]:
    """The period (`?period=`, this month unless it names another) and the sort (`?sort=`) of the usage columns; a
    bad value is the default, never an error."""
    return columns_period(organization=organization, choice=request.GET.get("period")), columns_sort(
        request.GET.get("sort")
    )


def usage_period_param(period: ColumnsPeriod) -> str:
    """The `period` parameter to keep in links: none for the default (this month)."""
    return "" if period.choice == ColumnsPeriodChoice.THIS_MONTH else period.choice


def usage_column_headers(*, sort: ColumnsSort, params: Mapping[str, str]) -> list[UsageColumnHeader]:
    """The credit columns' headers; `params` are the page's other parameters (filters, period), kept by each link."""
    kept = {key: value for key, value in params.items() if value}
    return [
        UsageColumnHeader(column, str(label), urlencode({**kept, "sort": sort.toggled(column)}), sort.aria(column))
        for column, label in USAGE_COLUMNS
    ]
