"""What a Studio generation is estimated (and held) at before it runs, and what it is captured at after.

Media (Image, Video, Speech, Music): the price's `unit` says what is counted. "image": each image, times its
started megapixels (1024 x 1024 counts once, 1536 x 1024 or 1792 x 1024 twice); "second" or "N seconds": the
seconds asked for, per started block; "1k characters" (or "N characters"): the text to speak, per started block;
anything else (e.g. "song"): one unit a generation. The estimate is what is held; the capture charges it in full for
what was produced (fewer images than asked: only those), never more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from usage.models import Price
from usage.studio.providers.base import (
    IMAGE_MAX_COUNT,
    MUSIC_MAX_SECONDS,
    VIDEO_MAX_SECONDS,
    ChatMessage,
    estimate_tokens,
    image_size,
)
from usage.studio.providers.base import IMAGE_SIZES as PROVIDER_IMAGE_SIZES
from usage.studio.providers.base import VOICES as PROVIDER_VOICES

CHAT_TOKENS_PER_UNIT = 1000


def chat_units(tokens: int) -> int:
    return max(1, -(-tokens // CHAT_TOKENS_PER_UNIT))


def messages_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(message["content"]) for message in messages)


@dataclass(frozen=True)
class Estimate:
    price: Price
    units: int
    prompt_tokens: int = 0

    @property
    def credits(self) -> int:
        return self.price.credits_per_unit * self.units


def chat_estimate(*, price: Price, messages: Sequence[ChatMessage]) -> Estimate:
    """`messages`: everything the model will be sent (the thread's context and the new message)."""
    prompt_tokens = messages_tokens(messages)
    return Estimate(
        price=price, units=chat_units(prompt_tokens + settings.STUDIO_CHAT_MAX_TOKENS), prompt_tokens=prompt_tokens
    )


# --- media ---------------------------------------------------------------------------------------------------

# What the pickers offer, within what every provider takes (`providers.base`).
IMAGE_SIZES: dict[str, int] = {  # size -> units per image: each started megapixel
    size: -(-image_size(size)[0] * image_size(size)[1] // (1024 * 1024)) for size in PROVIDER_IMAGE_SIZES
}
IMAGE_SIZE_LABELS: dict[str, str] = {
    size: f"{size.replace('x', ' x ')}" + (f" (counts {units})" if units > 1 else "")
    for size, units in sorted(IMAGE_SIZES.items(), key=lambda item: (item[0] != "1024x1024", item[1], item[0]))
}
IMAGE_COUNTS = tuple(range(1, IMAGE_MAX_COUNT + 1))
VIDEO_SECONDS = tuple(seconds for seconds in (2, 4, 6, 8, 10, 15, 20) if seconds <= VIDEO_MAX_SECONDS)
MUSIC_SECONDS = tuple(seconds for seconds in (10, 20, 30, 60, 120) if seconds <= MUSIC_MAX_SECONDS)
VOICES = tuple(PROVIDER_VOICES)
VOICE_LABELS = PROVIDER_VOICES
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "image": {"size": "1024x1024", "count": 1},
    "video": {"seconds": 4},
    "speech": {"voice": "alloy"},
    "music": {"seconds": 10},
}

_UNIT = re.compile(r"^(?:(?P<size>\d+)(?P<k>k?)\s+)?(?P<kind>image|second|character)s?$")


@dataclass(frozen=True)
class Unit:
    kind: str  # "image", "second", "character", or "generation"
    size: int  # how many of `kind` one unit counts


def price_unit(price: Price) -> Unit:
    match = _UNIT.match(price.unit.strip().lower())
    if match is None:
        return Unit("generation", 1)
    size = int(match["size"] or 1) * (1000 if match["k"] else 1)
    return Unit(match["kind"], max(1, size))


# The units each tool can price before it runs: a speech price per minute (speech to text) cannot be.
TOOL_UNITS: dict[str, frozenset[str]] = {
    "image": frozenset({"image"}),
    "video": frozenset({"second", "generation"}),
    "speech": frozenset({"character"}),
    "music": frozenset({"second", "generation"}),
}


def price_fits_tool(price: Price) -> bool:
    return price_unit(price).kind in TOOL_UNITS.get(price.tool, frozenset())


def _blocks(amount: int, size: int) -> int:
    return max(1, -(-amount // size))


def media_units(*, price: Price, prompt: str, options: Mapping[str, Any], produced: int | None = None) -> int:
    """The units of a media generation with these (already validated) options. `produced`: the images actually
    returned, when fewer than asked."""
    unit = price_unit(price)
    if unit.kind == "image":
        count = int(options["count"]) if produced is None else produced
        return count * IMAGE_SIZES[str(options["size"])]
    if unit.kind == "second":
        return _blocks(int(options["seconds"]), unit.size)
    if unit.kind == "character":
        return _blocks(len(prompt), unit.size)
    return 1


def media_estimate(*, price: Price, prompt: str, options: Mapping[str, Any]) -> Estimate:
    return Estimate(price=price, units=media_units(price=price, prompt=prompt, options=options))
