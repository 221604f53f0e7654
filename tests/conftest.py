from __future__ import annotations

import pytest
from celery._state import _set_task_join_will_block
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


@pytest.fixture(autouse=True)
def _task_joins_allowed():
    """Celery keeps "a task is running here" in a process-wide flag that eager tasks set and reset around their run;
    tasks run at once in a live server's thread and in the test's can leave it set, and then every later `.get()`
    of a test raises "Never call result.get() within a task". Each test starts outside any task."""
    _set_task_join_will_block(False)


@pytest.fixture
def user(db):
    return UserFactory()
