from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the (real Redis) cache: every test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(db):
    return UserFactory()
