"""Studio providers: one interface (`base.StudioProvider`), chosen per price (`Price.provider`)."""

from __future__ import annotations

from collections.abc import Callable

from usage.models import Price, Provider
from usage.studio.providers.base import (
    IMAGE_MAX_COUNT,
    IMAGE_SIZES,
    MUSIC_MAX_SECONDS,
    SPEECH_MAX_CHARS,
    VIDEO_MAX_SECONDS,
    VOICES,
    ChatChunk,
    ChatMessage,
    ChatUsage,
    GenerationCancelled,
    Media,
    ProviderError,
    ProviderTimeout,
    StudioProvider,
    estimate_tokens,
)
from usage.studio.providers.demo import DemoProvider
from usage.studio.providers.openai_compatible import OpenAICompatibleProvider

__all__ = [
    "IMAGE_MAX_COUNT",
    "IMAGE_SIZES",
    "MUSIC_MAX_SECONDS",
    "SPEECH_MAX_CHARS",
    "VIDEO_MAX_SECONDS",
    "VOICES",
    "ChatChunk",
    "ChatMessage",
    "ChatUsage",
    "DemoProvider",
    "GenerationCancelled",
    "Media",
    "OpenAICompatibleProvider",
    "ProviderError",
    "ProviderTimeout",
    "StudioProvider",
    "estimate_tokens",
    "provider_for",
]

FACTORIES: dict[str, Callable[[], StudioProvider]] = {
    Provider.DEMO: DemoProvider,
    Provider.OPENAI_COMPATIBLE: OpenAICompatibleProvider,
}


def provider_for(price: Price) -> StudioProvider:
    """The provider that runs this price's model."""
    return FACTORIES[price.provider]()
