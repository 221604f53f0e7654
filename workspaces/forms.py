from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from orgs.models import Membership, OrganizationRole
from qolaba.tools import Tool
from workspaces.models import ApiKey, Workspace, WorkspaceRole
from workspaces.selectors import HistoryAuthor


class WorkspaceForm(forms.Form):
    name = forms.CharField(
        max_length=Workspace._meta.get_field("name").max_length,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Nike Spring Campaign"}),
    )
    description = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What is this workspace for?"}),
    )


class ClientRateForm(forms.Form):
    """The workspace's client rate: money per 1,000 credits, printed on its statements. Empty rate = no rate."""

    rate_per_1000 = forms.DecimalField(
        label="Rate per 1,000 credits",
        required=False,
        min_value=Decimal("0.0001"),
        max_digits=12,
        decimal_places=4,
        widget=forms.NumberInput(attrs={"step": "0.0001", "placeholder": "e.g. 12.50", "inputmode": "decimal"}),
    )
    currency = forms.CharField(
        label="Currency (ISO 4217)",
        required=False,
        min_length=3,
        max_length=3,
        widget=forms.TextInput(attrs={"placeholder": "EUR", "autocapitalize": "characters", "size": 4}),
    )

    def clean_currency(self) -> str:
        return str(self.cleaned_data.get("currency") or "").strip().upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("rate_per_1000") is not None and not cleaned.get("currency"):
            self.add_error("currency", "Enter the currency of the rate, e.g. EUR.")
        return cleaned


class WorkspaceMemberForm(forms.Form):
    """Assign an organization Member (Owners/Admins need no assignment) to the workspace, or change their role."""

    member = forms.ModelChoiceField(queryset=Membership.objects.none(), label="Member", empty_label="Choose a member…")
    role = forms.ChoiceField(choices=WorkspaceRole.choices, initial=WorkspaceRole.MEMBER)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["member"]
        field.queryset = (  # type: ignore[attr-defined]
            Membership.objects.active()
            .filter(organization_id=workspace.organization_id, role=OrganizationRole.MEMBER)
            .select_related("user")
            .order_by("user__email")
        )
        field.label_from_instance = lambda m: m.user.email  # type: ignore[attr-defined]


HISTORY_FIRST_DAY, HISTORY_LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
HISTORY_DATE_RANGE = [MinValueValidator(HISTORY_FIRST_DAY), MaxValueValidator(HISTORY_LAST_DAY)]


class HistoryFilterForm(forms.Form):
    """The History tab's filters (a GET form). Invalid values are reported on the form and not applied."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Words in prompts or outputs"}),
    )
    tool = forms.ChoiceField(required=False, choices=[("", "All tools"), *Tool.choices])
    member = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    date_from = forms.DateField(
        required=False,
        label="From",
        validators=HISTORY_DATE_RANGE,
        widget=forms.DateInput(attrs={"type": "date", "min": HISTORY_FIRST_DAY, "max": HISTORY_LAST_DAY}),
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        validators=HISTORY_DATE_RANGE,
        widget=forms.DateInput(attrs={"type": "date", "min": HISTORY_FIRST_DAY, "max": HISTORY_LAST_DAY}),
    )

    def __init__(self, *args: Any, authors: list[HistoryAuthor], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Names, as the table shows them; the email only tells two people of the same name apart.
        names = Counter(author.name for author in authors)

        def label(author: HistoryAuthor) -> str:
            text = author.name if names[author.name] == 1 else f"{author.name} ({author.email})"
            return text if author.has_access else f"{text} (removed)"

        self.fields["member"].choices = [  # type: ignore[attr-defined]
            ("", "All members"),
            *((str(author.pk), label(author)) for author in authors),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    def filters(self) -> dict[str, Any]:
        """The valid filters, for `history_items` (call after `is_valid()`; an invalid field is left out)."""
        data = getattr(self, "cleaned_data", {})
        return {
            "search": data.get("q") or "",
            "tool": data.get("tool") or "",
            "author_id": data.get("member"),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=ApiKey._meta.get_field("name").max_length,
        label="Key name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Image generation service"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the settings page also has the workspace's name field.
        kwargs.setdefault("auto_id", "id_api_key_%s")
        super().__init__(*args, **kwargs)
