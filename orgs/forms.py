from __future__ import annotations

from typing import Any

from django import forms

from orgs.images import logo_process
from orgs.models import AdminKey, AuditAction, Membership, Organization, OrganizationRole, timezone_choices
from orgs.services import parse_email_list
from qolaba.fields import IdsMultipleChoiceField
from workspaces.models import Workspace, WorkspaceRole


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


class InviteForm(forms.Form):
    emails = forms.CharField(
        label="Email addresses",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "ana@client.com, ben@client.com"}),
        help_text="Separate addresses with commas or new lines. Each person gets their own link.",
    )
    role = forms.TypedChoiceField(
        coerce=int,
        choices=[(OrganizationRole.MEMBER, "Member"), (OrganizationRole.ADMIN, "Admin")],
        initial=OrganizationRole.MEMBER,
        help_text="Admins manage members, workspaces and credits. Members use the workspaces they are given.",
    )
    workspaces = IdsMultipleChoiceField(
        queryset=Workspace.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="At least one. Admins can open every workspace anyway.",
        error_messages={"required": "Pick at least one workspace."},
    )
    workspace_role = forms.ChoiceField(
        label="Role in those workspaces", choices=WorkspaceRole.choices, initial=WorkspaceRole.MEMBER
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["workspaces"].queryset = Workspace.objects.live().filter(organization=organization)  # type: ignore[attr-defined]

    def clean_emails(self) -> list[str]:
        emails, problems = parse_email_list(self.cleaned_data["emails"])
        if problems:
            raise forms.ValidationError(problems)
        if not emails:
            raise forms.ValidationError("Enter at least one email address.")
        return emails


class MemberRoleForm(forms.Form):
    role = forms.TypedChoiceField(
        coerce=int, choices=[(OrganizationRole.MEMBER, "Member"), (OrganizationRole.ADMIN, "Admin")]
    )


class MemberWorkspacesForm(forms.Form):
    """One select per workspace: no access, viewer, member or admin."""

    NO_ACCESS = ""

    def __init__(self, *args: Any, workspaces: list[Workspace], current: dict[int, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspaces = workspaces
        for workspace in workspaces:
            self.fields[f"ws_{workspace.pk}"] = forms.ChoiceField(
                label=workspace.name,
                required=False,
                choices=[(self.NO_ACCESS, "No access"), *WorkspaceRole.choices],
                initial=current.get(workspace.pk, self.NO_ACCESS),
            )

    def assignments(self) -> dict[Workspace, str]:
        return {
            workspace: self.cleaned_data[f"ws_{workspace.pk}"]
            for workspace in self.workspaces
            if self.cleaned_data.get(f"ws_{workspace.pk}")
        }


class TransferOwnershipForm(forms.Form):
    new_owner = forms.ModelChoiceField(queryset=Membership.objects.none(), label="New Owner")
    confirm = forms.BooleanField(label="I understand I will become an Admin of this organization.")

    def __init__(self, *args: Any, organization: Organization, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["new_owner"]
        field.queryset = (  # type: ignore[attr-defined]
            Membership.objects.active()
            .filter(organization=organization)
            .exclude(user=actor)
            .select_related("user")
            .order_by("user__email")
        )
        field.label_from_instance = lambda m: f"{m.user.email} ({m.get_role_display()})"  # type: ignore[attr-defined]


class OrganizationProfileForm(forms.Form):
    name = forms.CharField(max_length=Organization._meta.get_field("name").max_length)
    timezone = forms.ChoiceField(
        choices=timezone_choices, help_text="Monthly budgets and limits reset at midnight in this time zone."
    )
    logo = forms.ImageField(
        required=False,
        help_text="PNG, JPEG or WebP, up to 2 MB. Shown at the top of the navigation.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")
    alert_thresholds = forms.CharField(
        label="Credit alerts at (% used)",
        max_length=40,
        required=False,
        help_text="Owners and Admins are notified when a budget, a monthly limit or the pool crosses these, "
        "e.g. “80, 100”.",
    )
    runway_alert_days = forms.IntegerField(
        label="Runway alert under (days)",
        min_value=1,
        max_value=90,
        required=False,
        help_text="Owners and Admins are notified when the pool or a workspace budget is forecast to run out "
        "sooner than this, from 1 to 90 days.",
    )

    def clean_alert_thresholds(self) -> list[int] | None:
        raw = self.cleaned_data["alert_thresholds"]
        if not raw.strip():
            return None  # left empty: keep the current thresholds
        try:
            values = sorted({int(part) for part in raw.replace(";", ",").split(",") if part.strip()})
        except ValueError:
            raise forms.ValidationError("Enter whole percentages separated by commas, e.g. 80, 100.") from None
        if not values or any(v < 1 or v > 100 for v in values):
            raise forms.ValidationError("Each threshold is a percentage from 1 to 100.")
        return values

    def clean_logo(self) -> Any:
        logo = self.cleaned_data.get("logo")
        if logo:
            logo_process(logo)  # validation only; the service stores the re-encoded image
            logo.seek(0)
        return logo


class OrganizationDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the organization's name to confirm")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_confirm_name(self) -> str:
        value: str = self.cleaned_data["confirm_name"]
        if value.strip() != self.organization.name:
            raise forms.ValidationError("That is not the organization's name.")
        return value


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, label="Action")
    actor = forms.CharField(required=False, label="Actor email")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(AuditAction.choices)
        choices = [("", "All actions"), *((a, labels.get(a, a)) for a in actions)]
        self.fields["action"].choices = choices  # type: ignore[attr-defined]


class AdminKeyForm(forms.Form):
    name = forms.CharField(
        max_length=AdminKey._meta.get_field("name").max_length,
        label="Key name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Finance dashboard"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the profile page also has the organization's name field.
        kwargs.setdefault("auto_id", "id_admin_key_%s")
        super().__init__(*args, **kwargs)
