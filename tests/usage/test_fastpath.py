"""The one-statement charge (`usage.fastpath`) writes exactly what the general path writes, and leaves every other
case to the general path."""

from __future__ import annotations

import json
import re

import pytest
from django.apps import apps

from billing.ledger import available_credits
from billing.models import LedgerEntry, LedgerTransaction
from billing.reconcile import reconcile
from billing.services import workspace_limit_set
from usage import fastpath
from usage.api import endpoints
from usage.models import IdempotentRequest, UsageEvent
from workspaces.models import HistoryItem

pytestmark = pytest.mark.django_db

BODY = {"tool": "image", "model": "flux-pro", "units": 2, "history": {"prompt": "fox", "metadata": {"seed": 7}}}


def charge(client, metered, key: str, **extra):
    body = {"member": metered.member.email.upper(), **BODY, **extra}
    return client.post(
        "/api/v1/charges",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        **metered.auth(),
    )


@pytest.fixture
def general_path_calls(monkeypatch):
    calls = []
    general = endpoints._charge_create_general

    def spy(*args, **kwargs):
        calls.append(args[2])
        return general(*args, **kwargs)

    monkeypatch.setattr(endpoints, "_charge_create_general", spy)
    return calls


def rows(key: str) -> dict:
    event = UsageEvent.objects.get(idempotency_key=key)
    txn = LedgerTransaction.objects.get(pk=event.ledger_transaction_id)
    item = HistoryItem.objects.get(usage_event_id=event.pk)
    answer = IdempotentRequest.objects.get(key=key)
    return {
        "event": (
            event.organization_id,
            event.workspace_id,
            event.user_id,
            event.tool,
            event.model,
            event.units,
            event.credits,
            event.status,
            event.hold_id,
            event.history_draft,
            event.settled_at is not None,
        ),
        "txn": (txn.kind, txn.amount, txn.actor_id, txn.workspace_id, txn.period_start, txn.counted),
        "entries": sorted(LedgerEntry.objects.filter(transaction=txn).values_list("amount", flat=True)),
        "item": (
            item.organization_id,
            item.workspace_id,
            item.author_id,
            item.tool,
            item.model,
            item.prompt,
            item.output_text,
            item.metadata,
            item.credits,
            item.deleted_at,
        ),
        "answer": (answer.status_code, set(answer.response)),
    }


def test_a_charge_takes_one_statement_and_writes_what_the_general_path_writes(
    client, metered, general_path_calls, monkeypatch
):
    fast = charge(client, metered, "fast-1")
    assert fast.status_code == 201, fast.content
    assert general_path_calls == []  # done by the one statement
    assert fast.json() == {
        "id": UsageEvent.objects.get(idempotency_key="fast-1").pk,
        "credits": 24,
        "available_credits": 10_000 - 24,
        "status": "captured",
    }

    monkeypatch.setattr(endpoints, "charge_fast", lambda **kwargs: None)  # force the general path
    general = charge(client, metered, "general-1")
    assert general.status_code == 201
    assert general_path_calls == ["general-1"]
    assert rows("fast-1") == rows("general-1")
    assert available_credits(metered.workspace, metered.organization) == 10_000 - 48
    assert reconcile() == []


def test_a_replay_is_answered_by_the_general_path_from_the_stored_answer(client, metered, general_path_calls):
    first = charge(client, metered, "again")
    again = charge(client, metered, "again")
    assert general_path_calls == ["again"]
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert UsageEvent.objects.count() == 1
    conflict = charge(client, metered, "again", units=3)
    assert conflict.status_code == 409
    assert available_credits(metered.workspace, metered.organization) == 10_000 - 24


def test_monthly_limits_and_refusals_take_the_general_path(client, metered, general_path_calls):
    workspace_limit_set(workspace=metered.workspace, user=metered.member, monthly_limit=30, actor=metered.owner)
    assert charge(client, metered, "limited-1").status_code == 201
    refused = charge(client, metered, "limited-2")
    assert refused.status_code == 402
    assert refused.json()["error"]["limit"] == "member_monthly_limit"
    assert general_path_calls == ["limited-1", "limited-2"]
    assert UsageEvent.objects.count() == 1
    assert reconcile() == []


# What the one-statement charge inserts into, and the columns it leaves to the database: only the primary keys,
# numbered by their sequences. Every other column of these tables must be given a value by the statement.
LEFT_TO_THE_DATABASE = {
    LedgerTransaction: {"id"},
    LedgerEntry: {"id"},
    UsageEvent: {"id"},
    HistoryItem: {"id"},
    IdempotentRequest: {"id"},
}
INSERT = re.compile(r"INSERT INTO (\w+) \(([^)]*)\)")


def test_the_statement_writes_every_column_of_every_table_it_inserts_into():
    models_by_table = {model._meta.db_table: model for model in apps.get_models()}
    inserts = {
        models_by_table[table]: [column.strip() for column in listed.split(",")]
        for table, listed in INSERT.findall(fastpath._CHARGE.sql)
    }
    assert set(inserts) == set(LEFT_TO_THE_DATABASE)
    for model, columns in inserts.items():
        assert len(columns) == len(set(columns)), f"{model.__name__}: a column written twice"
        expected = {field.column for field in model._meta.concrete_fields} - LEFT_TO_THE_DATABASE[model]
        assert set(columns) == expected, f"{model.__name__}: columns the statement does not write (or not the model's)"
