"""The read replica (`qolaba.routers`): configured from DATABASE_REPLICA_URL; dashboards' and exports' reads go there
when asked, every write and every read inside a transaction stays on default.

The test settings define the `replica` alias as production does, with `TEST["MIRROR"] = "default"`: the same test
database through a second connection, so where a query went shows in that connection's captured queries. The tests
commit (`transaction=True`): inside a test's own transaction every read stays on default, as it should.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import Organization
from qolaba.routers import REPLICA, reading_from_replica, replica_alias, replica_as_of
from tests.factories import UserFactory, make_organization
from usage.models import UsageRollupState
from usage.rollup import rollup_state, usage_totals
from workspaces.services import api_key_create

replica_db = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])


def _databases_with(env: dict[str, str]) -> dict[str, dict[str, object]]:
    code = "import json, qolaba.settings.base as s; print(json.dumps(s.DATABASES, default=str))"
    clean = {key: value for key, value in os.environ.items() if key not in ("DATABASE_REPLICA_URL", "DATABASE_URL")}
    done = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    return json.loads(done.stdout)


def test_the_replica_alias_exists_only_when_database_replica_url_is_set():
    primary = {"DATABASE_URL": "postgres://app@primary.internal:5432/qolaba"}
    assert set(_databases_with(primary)) == {"default"}
    databases = _databases_with({**primary, "DATABASE_REPLICA_URL": "postgres://ro@replica.internal:5432/qolaba"})
    assert set(databases) == {"default", "replica"}
    assert databases["replica"]["HOST"] == "replica.internal"
    assert databases["replica"]["OPTIONS"] == databases["default"]["OPTIONS"]  # the same prepare threshold
    assert settings.DATABASE_ROUTERS == ["qolaba.routers.ReplicaRouter"]
    assert settings.DATABASES[REPLICA]["TEST"]["MIRROR"] == "default"


def _queries(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


@replica_db
def test_reads_go_to_the_replica_only_when_asked_and_outside_a_transaction():
    organization = make_organization()
    with _queries(REPLICA) as on_replica, _queries(DEFAULT_DB_ALIAS) as on_default:
        assert list(Organization.objects.filter(pk=organization.pk)) == [organization]  # not asked: default
        with reading_from_replica():
            assert replica_alias() == REPLICA
            assert Organization.objects.get(pk=organization.pk).name == organization.name
            with transaction.atomic():  # a transaction reads where it writes
                assert replica_alias() == DEFAULT_DB_ALIAS
                assert Organization.objects.filter(pk=organization.pk).exists()
            Organization.objects.filter(pk=organization.pk).update(name="Renamed")  # writes: default
    assert len(on_replica) == 1
    assert "orgs_organization" in on_replica[0]["sql"]
    on_default_sql = [query["sql"] for query in on_default if "orgs_organization" in query["sql"]]
    assert len(on_default_sql) == 3  # the read before the block, the read in the transaction, the update
    assert on_default_sql[-1].startswith("UPDATE")


@replica_db
def test_the_usage_read_and_its_as_of_come_from_the_database_it_is_given():
    organization = make_organization()
    ran_at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    UsageRollupState.objects.create(pk=1, watermark=5, ran_at=ran_at)
    start, end = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)
    with _queries(REPLICA) as on_replica, _queries(DEFAULT_DB_ALIAS) as on_default:
        totals = usage_totals(organization=organization, start=start, end=end, using=replica_alias())
        with reading_from_replica():
            state = rollup_state()  # through the router
    assert totals.rolled_up_at == state.ran_at == ran_at
    assert totals.watermark == 5
    assert len(on_replica) == 3  # the state and the totals, then the state again
    assert not on_default


@replica_db
def test_the_audit_export_reads_from_the_replica(client):
    owner = UserFactory()
    organization = make_organization(owner=owner)
    client.force_login(owner)
    url = reverse("orgs:audit_export", kwargs={"org_slug": organization.slug})
    with _queries(REPLICA) as on_replica:
        response = client.get(url)
        content = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(content)))
    assert response.status_code == 200
    assert any(row[2] == "organization.created" for row in rows[1:])
    assert any("orgs_auditevent" in query["sql"] for query in on_replica)


@replica_db
@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("usage:dashboard", "?range=30d"),
        ("usage:usage_export_csv", "?range=30d"),
        ("orgs:members", ""),
        ("workspaces:list", ""),
    ],
)
def test_usage_pages_and_exports_read_their_figures_from_the_replica(client, name, suffix):
    """The Usage tab, the CSV export and the usage columns read usage through the replica; the page's own
    access checks and session stay on default."""
    owner = UserFactory()
    organization = make_organization(owner=owner)
    client.force_login(owner)
    url = reverse(name, kwargs={"org_slug": organization.slug}) + suffix
    with _queries(REPLICA) as on_replica:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200
    sql = " ".join(query["sql"] for query in on_replica)
    assert "usage_usageevent" in sql, name


@replica_db
def test_the_usage_api_reads_from_the_replica(client):
    owner = UserFactory()
    organization = make_organization(owner=owner)
    workspace = organization.workspaces.get(is_primary=True)
    _, secret = api_key_create(workspace=workspace, actor=owner, name="reports")
    with _queries(REPLICA) as on_replica:
        response = client.get("/api/v1/usage?start=2026-03-01&end=2026-03-31", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200, response.content
    assert "usage_usageevent" in " ".join(query["sql"] for query in on_replica)


@replica_db
def test_as_of_on_a_replica_that_is_not_behind_is_the_time_of_the_read():
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert replica_as_of(DEFAULT_DB_ALIAS, at) == at
    assert replica_as_of(REPLICA, at) == at  # the test mirror is a primary: nothing to replay
