from __future__ import annotations

from collections.abc import Iterator

import pytest

from qolaba.tools import Tool
from tests.usage.conftest import MeteredWorkspace, make_metered_workspace
from tests.usage.studio.fake_openai import FakeOpenAI
from usage.models import Price, Provider


@pytest.fixture
def fake_openai(settings) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    settings.STUDIO_OPENAI_BASE_URL = server.base_url
    settings.STUDIO_OPENAI_API_KEY = "sk-test"
    settings.STUDIO_OPENAI_TIMEOUT = 1.0
    settings.STUDIO_OPENAI_MAX_RETRIES = 0
    yield server
    server.stop()


def openai_price(model: str = "gpt-4o") -> Price:
    """The chat price `model` (5 credits a unit), run by the OpenAI-compatible provider."""
    price = Price.objects.get(tool=Tool.CHAT, model=model)
    price.provider, price.provider_model = Provider.OPENAI_COMPATIBLE, "fake-large"
    price.save()
    return price


@pytest.fixture
def studio(db) -> MeteredWorkspace:
    return make_metered_workspace()
