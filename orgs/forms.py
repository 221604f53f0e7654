from __future__ import annotations

from django import forms

from orgs.models import Organization, timezone_choices


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(
        max_length=Organization._meta.get_field("name").max_length,
        widget=forms.TextInput(
            attrs={"autofocus": True, "placeholder": "e.g. Northwind Creative", "autocomplete": "organization"}
        ),
        help_text="Your company, agency or team. You can change it later.",
    )
    timezone = forms.ChoiceField(
        choices=timezone_choices,
        initial="UTC",
        help_text="Monthly budgets and limits reset at midnight in this time zone.",
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the organization a name.")
        return name
