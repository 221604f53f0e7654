from __future__ import annotations

import pytest
import redis
from django.conf import settings

from tests.factories import UserFactory


def _clear_own_cache_keys() -> None:
    """Rate-limit counters live in the real Redis cache. Only this run's keys are deleted (its KEY_PREFIX),
    so test runs sharing the Redis server do not reset each other's counters."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _clear_cache():
    _clear_own_cache_keys()
    yield
    _clear_own_cache_keys()


@pytest.fixture
def user(db):
    return UserFactory()
