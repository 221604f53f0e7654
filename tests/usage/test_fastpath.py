"""The one-statement charge (`usage.fastpath`) writes exactly what the general path writes (every column of every
row, in any table), gives every column of the tables it inserts into a value, and leaves every other case to the
general path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.db import models

from billing.ledger import available_credits
from billing.models import LedgerEntry, LedgerTransaction
from billing.reconcile import reconcile
from billing.services import workspace_limit_set
from usage import fastpath
from usage.api import endpoints
from usage.models import IdempotentRequest, UsageEvent
from workspaces.models import ApiKey, HistoryItem

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


# --- what a request writes, row by row ------------------------------------------------------------------------

Rows = dict[type[models.Model], dict[Any, dict[str, Any]]]
Names = dict[tuple[type[models.Model], Any], str]

# Columns whose values differ between the same request made twice, and why. They are compared only for being set
# or not; every other column of every row a request inserts or changes is compared as it is.
NOT_COMPARED: dict[str, set[str]] = {
    # when each request ran
    "billing.LedgerTransaction": {"created_at"},
    # and each request has its own key; created_seq and changed_seq number the transaction that wrote the row
    "usage.UsageEvent": {"created_at", "settled_at", "idempotency_key", "created_seq", "changed_seq"},
    "usage.IdempotentRequest": {"created_at", "key"},
    "workspaces.HistoryItem": {"created_at"},
    "workspaces.ApiKey": {"last_used_at"},
}
# New rows are numbered by sequences: they are named by table and order instead, and so are the references to
# them. Foreign keys are followed from the models; these references are not foreign keys.
REFERENCES = {("workspaces.HistoryItem", "usage_event_id"): UsageEvent}  # by id: the events' table is partitioned


def every_row() -> Rows:
    """Every row of every table, by model and primary key."""
    return {
        model: {
            row[model._meta.pk.attname]: row
            for row in model._base_manager.values(*(field.attname for field in model._meta.concrete_fields))
        }
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    }


def _comparable(model: type[models.Model], field: models.Field, value: Any, names: Names, available_before: int):
    label = model._meta.label
    if field.attname in NOT_COMPARED.get(label, ()):
        return "(set)" if value is not None else None
    target = model if field.primary_key else REFERENCES.get((label, field.attname), field.related_model)
    if target is not None:
        return names.get((target, value), value)
    if (label, field.attname) == ("usage.IdempotentRequest", "response"):
        # A charge's answer: its event is a new row, and the credits left depend on the balance it started from.
        return {
            **value,
            "id": names[UsageEvent, value["id"]],
            "available_credits": value["available_credits"] - available_before,
        }
    return value


def written_by(request: Callable[[], Any], *, available_before: int) -> tuple[Any, dict[str, Any]]:
    """What `request` returns, and every row it inserted, changed or deleted in any table, in a form to compare with
    another request's: new rows and references to them by name, `NOT_COMPARED` values only as set or not, a changed
    number as its change, and the stored answer's available credits less `available_before`."""
    before = every_row()
    result = request()
    after = every_row()
    names: Names = {}
    for model, rows in after.items():
        new = sorted(pk for pk in rows if pk not in before[model])
        names.update({(model, pk): f"new {model._meta.label} {n}" for n, pk in enumerate(new, 1)})

    written: dict[str, Any] = {}
    for model, rows in after.items():
        fields = model._meta.concrete_fields
        inserted, changed = [], []
        for pk, row in rows.items():
            was = before[model].get(pk)
            if was is None:
                inserted.append(
                    {f.attname: _comparable(model, f, row[f.attname], names, available_before) for f in fields}
                )
            elif was != row:
                change: dict[str, Any] = {model._meta.pk.attname: pk}
                for f in fields:
                    old, new = was[f.attname], row[f.attname]
                    if old == new:
                        continue
                    if type(old) is int and type(new) is int:
                        change[f.attname] = f"{new - old:+}"  # a balance's change, whatever it was before
                    else:
                        change[f.attname] = tuple(_comparable(model, f, v, names, available_before) for v in (old, new))
                changed.append(change)
        deleted = [pk for pk in before[model] if pk not in rows]
        if inserted or changed or deleted:
            written[model._meta.label] = {"inserted": inserted, "changed": changed, "deleted": deleted}
    return result, written


def test_a_charge_takes_one_statement_and_writes_what_the_general_path_writes(
    client, metered, general_path_calls, monkeypatch
):
    fast, fast_wrote = written_by(lambda: charge(client, metered, "fast-1"), available_before=10_000)
    assert fast.status_code == 201, fast.content
    assert general_path_calls == []  # done by the one statement
    assert fast.json() == {
        "id": UsageEvent.objects.get(idempotency_key="fast-1").pk,
        "credits": 24,
        "available_credits": 10_000 - 24,
        "status": "captured",
    }

    assert set(fast_wrote) == {
        "billing.AccountStripe",
        "billing.LedgerTransaction",
        "billing.LedgerEntry",
        "usage.UsageEvent",
        "workspaces.HistoryItem",
        "usage.IdempotentRequest",
        "workspaces.ApiKey",
    }

    monkeypatch.setattr(endpoints, "charge_fast", lambda **kwargs: None)  # force the general path
    # As the first request found the key: it is marked used at most once a minute, so the second marks it too.
    ApiKey.objects.filter(workspace=metered.workspace).update(last_used_at=None)
    general, general_wrote = written_by(lambda: charge(client, metered, "general-1"), available_before=10_000 - 24)
    assert general.status_code == 201
    assert general_path_calls == ["general-1"]
    assert general_wrote == fast_wrote
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


# What the one-statement charge inserts into, and the columns it leaves to the database: the primary keys, numbered
# by their sequences, and the usage event's change tracking, numbered by the database (the roll-up's watermark relies
# on it). Every other column of these tables must be given a value by the statement.
LEFT_TO_THE_DATABASE = {
    LedgerTransaction: {"id"},
    LedgerEntry: {"id"},
    UsageEvent: {"id", "created_seq", "changed_seq"},
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
