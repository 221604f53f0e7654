from __future__ import annotations

from typing import Any

from django import forms

from orgs.models import Membership, OrganizationRole
from workspaces.models import Workspace, WorkspaceRole


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


class WorkspaceMemberForm(forms.Form):
    """Assign an organization Member (Owners/Admins need no assignment) to the workspace, or change their role."""

    member = forms.ModelChoiceField(queryset=Membership.objects.none(), label="Member")
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
