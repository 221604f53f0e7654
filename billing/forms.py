from __future__ import annotations

from typing import Any

from django import forms

from billing.gateways import available_gateways
from billing.models import Plan, PlanKind
from orgs.models import CreditMode, Organization
from workspaces.models import Workspace


def _gateway_field() -> forms.ChoiceField:
    gateways = available_gateways()
    return forms.ChoiceField(
        label="Payment method",
        choices=[(g.code, g.label) for g in gateways],
        initial=gateways[0].code,
        help_text=" · ".join(f"{g.label}: {g.instructions}" for g in gateways),
    )


class PackPurchaseForm(forms.Form):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.filter(kind=PlanKind.PACK, is_active=True), label="Credit pack", empty_label=None
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["gateway"] = _gateway_field()
        self.fields["plan"].label_from_instance = lambda p: f"{p.name} — {p.price}"  # type: ignore[attr-defined]


class SubscribeForm(forms.Form):
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.filter(kind=PlanKind.MONTHLY, is_active=True), label="Plan", empty_label=None
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["gateway"] = _gateway_field()
        self.fields["plan"].label_from_instance = (  # type: ignore[attr-defined]
            lambda p: f"{p.name} — {p.credits:,} credits a month, {p.price}"
        )


class CreditModeForm(forms.Form):
    mode = forms.ChoiceField(choices=CreditMode.choices, widget=forms.RadioSelect, label="Credit mode")


class TransferForm(forms.Form):
    source = forms.ModelChoiceField(queryset=Workspace.objects.none(), label="From", empty_label=None)
    target = forms.ModelChoiceField(queryset=Workspace.objects.none(), label="To", empty_label=None)
    amount = forms.IntegerField(min_value=1, max_value=10**15, label="Credits")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        live = Workspace.objects.live().filter(organization=organization).order_by("-is_primary", "name")
        self.fields["source"].queryset = live  # type: ignore[attr-defined]
        self.fields["target"].queryset = live  # type: ignore[attr-defined]
        if not self.is_bound:
            # A fresh form proposes a transfer that can be made: from the chosen (or the Primary) workspace to the
            # first other one — never the same workspace on both sides.
            ids = list(live.values_list("pk", flat=True))
            source = self.initial.get("source") or (ids[0] if ids else None)
            self.initial["source"] = source
            self.initial["target"] = next((pk for pk in ids if str(pk) != str(source)), None)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("source") and cleaned.get("source") == cleaned.get("target"):
            self.add_error("target", "Pick a different workspace to move credits to.")
        return cleaned


class LimitForm(forms.Form):
    monthly_limit = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=10**15,
        label="Monthly limit (credits)",
        help_text="Leave empty for no limit. Resets on the 1st, in the organization's time zone.",
    )
