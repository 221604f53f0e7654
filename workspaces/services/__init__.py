"""Every write of the workspaces app (see each module). The public names are re-exported here, so callers import
`from workspaces.services import ...` whatever module a service lives in."""

from workspaces.services.api_keys import API_KEY_LAST_USED_PRECISION, api_key_create, api_key_mark_used, api_key_revoke
from workspaces.services.history import HISTORY_OUTPUT_MAX, HISTORY_PROMPT_MAX, history_item_create, history_item_delete
from workspaces.services.members import (
    invitation_accept,
    invitations_create,
    member_add,
    member_remove,
    member_role_change,
    ownership_transfer,
)
from workspaces.services.workspaces import (
    member_workspaces_set,
    workspace_member_remove,
    workspace_member_set,
    workspace_update,
)

__all__ = [
    "API_KEY_LAST_USED_PRECISION",
    "HISTORY_OUTPUT_MAX",
    "HISTORY_PROMPT_MAX",
    "api_key_create",
    "api_key_mark_used",
    "api_key_revoke",
    "history_item_create",
    "history_item_delete",
    "invitation_accept",
    "invitations_create",
    "member_add",
    "member_remove",
    "member_role_change",
    "member_workspaces_set",
    "ownership_transfer",
    "workspace_member_remove",
    "workspace_member_set",
    "workspace_update",
]
