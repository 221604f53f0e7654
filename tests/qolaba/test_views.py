"""The view helpers shared by the apps (qolaba.views)."""

from __future__ import annotations

import pytest
from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import ValidationError

from qolaba.views import immediate_action


def refuse() -> None:
    raise ValidationError(["Not now.", "Try later."])


@pytest.mark.parametrize(
    ("run", "flash"),
    [(lambda: None, (messages.SUCCESS, "Done.")), (refuse, (messages.ERROR, "Not now. Try later."))],
    ids=["done", "refused"],
)
def test_an_immediate_action_says_how_it_went_on_the_page_it_returns_to(rf, run, flash):
    request = rf.post("/do/")
    request._messages = CookieStorage(request)
    response = immediate_action(request, run=run, success_message="Done.", success_url="/back/")
    assert (response.status_code, response["Location"]) == (302, "/back/")
    assert [(message.level, message.message) for message in request._messages] == [flash]
