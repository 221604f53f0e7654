"""The metering API's per-key rate limit (API_RATE_LIMIT, counted in Redis: qolaba.ratelimit): past it a 429 with
Retry-After and the API's JSON error (code `rate_limited`), nothing charged; other keys are not affected; a wrong
secret for the same prefix does not spend the key's allowance; with Redis unreachable the API keeps answering and the
limit is not applied, with a warning in the log."""

from __future__ import annotations

import logging
import uuid

import pytest

from qolaba.ratelimit import Rate, counters, rate_parse
from tests.usage.conftest import make_metered_workspace
from usage.models import UsageEvent
from workspaces.services import api_key_create

CHARGES = "/api/v1/charges"


@pytest.fixture(autouse=True)
def _fresh_counters(settings):
    settings.API_RATE_LIMIT = "3/m"
    counters.reset()
    yield
    counters.reset()


def _charge(client, metered, key: str | None = None):
    return client.post(
        CHARGES,
        {"tool": "chat", "model": "gpt-4o-mini", "units": 1, "member": metered.member.email},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        **metered.auth(key),
    )


def test_rate_parse():
    assert rate_parse("1200/m") == Rate(1200, 60)
    assert rate_parse("50/10s") == Rate(50, 10)
    assert rate_parse("10000/h") == Rate(10000, 3600)
    assert rate_parse("") is None
    assert rate_parse("0/m") is None
    with pytest.raises(ValueError, match="Not a rate"):
        rate_parse("lots")


@pytest.mark.django_db
def test_past_the_limit_a_key_gets_429_with_retry_after_and_nothing_is_charged(client):
    metered = make_metered_workspace()
    answers = [_charge(client, metered) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert [answer["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0"]
    assert answers[0]["RateLimit-Limit"] == "3"

    refused = _charge(client, metered)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == retry_after
    assert "API_RATE_LIMIT" in error["message"]
    assert UsageEvent.objects.filter(workspace=metered.workspace).count() == 3
    # Reads count against the same key too.
    assert client.get("/api/v1/workspace", **metered.auth()).status_code == 429


@pytest.mark.django_db
def test_each_key_has_its_own_allowance(client):
    metered = make_metered_workspace()
    _, other_key = api_key_create(workspace=metered.workspace, actor=metered.owner, name="Second service")
    for _ in range(3):
        assert _charge(client, metered).status_code == 201
    assert _charge(client, metered).status_code == 429
    assert _charge(client, metered, key=other_key).status_code == 201


@pytest.mark.django_db
def test_a_wrong_secret_does_not_spend_the_keys_allowance(client):
    metered = make_metered_workspace()
    scheme, prefix, _secret = metered.key.split("_", 2)
    forged = f"{scheme}_{prefix}_{'x' * 40}"
    for _ in range(5):
        assert _charge(client, metered, key=forged).status_code in (401, 429)
    assert _charge(client, metered).status_code == 201


@pytest.mark.django_db
def test_requests_without_a_key_are_not_counted(client):
    for _ in range(5):
        assert client.get("/api/v1/health").status_code == 200


@pytest.mark.django_db
def test_off_when_the_setting_is_empty(client, settings):
    settings.API_RATE_LIMIT = ""
    metered = make_metered_workspace()
    answers = [_charge(client, metered) for _ in range(5)]
    assert {answer.status_code for answer in answers} == {201}
    assert "RateLimit-Limit" not in answers[0]


@pytest.mark.django_db
def test_with_redis_unreachable_the_api_answers_and_the_log_says_why(client, settings, caplog):
    """A real connection to a port where nothing listens (no mock): the limit is not applied, the API works."""
    settings.RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"
    metered = make_metered_workspace()
    with caplog.at_level(logging.WARNING, logger="qolaba.ratelimit"):
        answers = [_charge(client, metered) for _ in range(5)]
    assert {answer.status_code for answer in answers} == {201}
    warnings = [record for record in caplog.records if "Rate limits are not applied" in record.getMessage()]
    assert len(warnings) == 1  # once, not once per request
    assert UsageEvent.objects.filter(workspace=metered.workspace).count() == 5
