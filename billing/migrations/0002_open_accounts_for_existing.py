"""Open the credit accounts of organizations and workspaces created before the ledger existed."""

from django.db import migrations

ORGANIZATION_KINDS = ("source", "sink", "holds", "bank")


def open_accounts(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    Workspace = apps.get_model("workspaces", "Workspace")
    Account = apps.get_model("billing", "Account")
    for organization_id in Organization.objects.values_list("pk", flat=True):
        for kind in ORGANIZATION_KINDS:
            Account.objects.get_or_create(organization_id=organization_id, kind=kind, workspace=None)
    for workspace_id, organization_id in Workspace.objects.values_list("pk", "organization_id"):
        Account.objects.get_or_create(
            workspace_id=workspace_id, defaults={"organization_id": organization_id, "kind": "workspace"}
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_ledger")]

    operations = [migrations.RunPython(open_accounts, migrations.RunPython.noop)]
