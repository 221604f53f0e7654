import pytest
from django.db import connection

from qolaba.db import Statement, execute_prepared


def test_statement_uses_native_placeholders_once_per_name():
    statement = Statement("SELECT %(a)s::int + %(b)s::int, %(a)s::int %% 7")

    assert statement.sql == "SELECT $1::int + $2::int, $1::int % 7"
    assert statement.names == ("a", "b")
    assert statement.arguments({"b": 2, "a": 1, "unused": 3}) == (1, 2)


@pytest.mark.parametrize("sql", ["SELECT 5 % 2", "SELECT %s", "SELECT %(a)d"])
def test_statement_refuses_placeholders_psycopg_would_not_accept(sql):
    with pytest.raises(ValueError, match="%%"):
        Statement(sql)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_prepared_statement_runs_with_named_parameters():
    statement = Statement("SELECT %(a)s::int + %(b)s::int, %(a)s::int %% 7, %(text)s::text")

    assert execute_prepared(statement, {"a": 40, "b": 2, "text": "it's 100%"}) == (42, 5, "it's 100%")
