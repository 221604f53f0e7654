"""The ledger's hand-written SQL against the models: the tables it names are the models' tables, and each INSERT
names every column of its table except the ones explicitly left to the database's defaults. A column added to one
of those tables fails here until the SQL writes it (or the column is declared as left to its default below)."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from billing.ledger import charge, credits_grant
from billing.ledger.spend import _CHARGE_STATEMENT
from billing.models import LedgerEntry, LedgerTransaction, SpendCounter
from billing.services import workspace_limit_set
from orgs.models import CreditMode
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from workspaces.models import WorkspaceRole

# Table -> the columns its hand-written INSERTs leave to the database (the serial primary key).
LEFT_TO_DEFAULTS: dict[str, set[str]] = {
    LedgerTransaction._meta.db_table: {"id"},
    LedgerEntry._meta.db_table: {"id"},
    SpendCounter._meta.db_table: {"id"},
}

_INSERT = re.compile(r'INSERT\s+INTO\s+"?(\w+)"?\s*\(([^)]*)\)', re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", re.IGNORECASE)
_CTE = re.compile(r"\b(\w+)\s+AS\s+\(", re.IGNORECASE)


def _model_of(table: str) -> type[Model]:
    models = {model._meta.db_table: model for model in apps.get_models()}
    assert table in models, f"{table} is no model's table"
    return models[table]


def _inserts(sql: str) -> list[tuple[str, list[str]]]:
    return [(table, [c.strip().strip('"') for c in columns.split(",")]) for table, columns in _INSERT.findall(sql)]


def _assert_inserts_write_every_column(sql: str) -> set[str]:
    """Check every INSERT of `sql`; returns the tables inserted into."""
    tables = set()
    for table, columns in _inserts(sql):
        assert table in LEFT_TO_DEFAULTS, f"an INSERT into {table}: say which of its columns are left to defaults"
        assert len(columns) == len(set(columns)), f"a column named twice in the INSERT into {table}: {columns}"
        concrete = {field.column for field in _model_of(table)._meta.concrete_fields}
        expected = concrete - LEFT_TO_DEFAULTS[table]
        assert set(columns) == expected, (
            f"INSERT into {table}: missing {sorted(expected - set(columns))}, unknown {sorted(set(columns) - concrete)}"
        )
        tables.add(table)
    return tables


def test_the_one_statement_charge_inserts_every_column_of_its_tables():
    inserted = _assert_inserts_write_every_column(_CHARGE_STATEMENT.sql)
    assert inserted == {LedgerTransaction._meta.db_table, LedgerEntry._meta.db_table}


def test_the_one_statement_charge_names_only_the_models_tables():
    ctes = set(_CTE.findall(_CHARGE_STATEMENT.sql))
    tables = set(_TABLE.findall(_CHARGE_STATEMENT.sql)) - ctes
    assert tables
    for table in tables:
        _model_of(table)


@pytest.mark.django_db
def test_the_spend_counter_upserts_insert_every_column():
    owner = UserFactory()
    organization = make_organization(owner=owner)
    workspace = make_workspace(organization, name="A")
    member = make_member(organization, workspaces={workspace: WorkspaceRole.MEMBER}).user
    credits_grant(organization=organization, amount=1_000, actor=owner)
    assert organization.credit_mode == CreditMode.SHARED  # the workspace limit counts in shared mode only
    workspace_limit_set(workspace=workspace, user=None, monthly_limit=500, actor=owner)
    workspace_limit_set(workspace=workspace, user=member, monthly_limit=500, actor=owner)

    with CaptureQueriesContext(connection) as queries:
        charge(organization=organization, workspace=workspace, user=member, amount=10)

    counters = SpendCounter._meta.db_table
    upserts = [query["sql"] for query in queries if re.search(rf"INSERT\s+INTO\s+{counters}\b", query["sql"])]
    assert len(upserts) == 2  # the workspace's counter and the member's
    for sql in upserts:
        assert _assert_inserts_write_every_column(sql) == {counters}
