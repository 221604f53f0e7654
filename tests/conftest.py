from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _clear_cache(request):
    """Rate-limit counters live in the database cache (a table of the test database). A test in a transaction
    leaves nothing behind; a transactional test (or a live server) commits them, so its counters are cleared
    before and after it."""
    marker = request.node.get_closest_marker("django_db")
    transactional = {"transactional_db", "live_server"} & set(request.fixturenames) or (
        marker is not None and marker.kwargs.get("transaction", False)
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(db):
    return UserFactory()
