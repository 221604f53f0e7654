"""What a Studio generation is estimated (and held) at before it runs, and what it is captured at after.

Media (Image, Video, Speech, Music): the price's `unit` says what is counted. "image": each image, times the size's
factor (a wide or tall image counts twice); "second" or "N seconds": the seconds asked for, per started block;
"1k characters" (or "N characters"): the text to speak, per started block; anything else (e.g. "song"): one unit a
generation. The estimate is what is held; the capture charges it in full for what was produced (fewer images than
asked: only those), never more.

Chat: a chat price's unit is counted per started block of `CHAT_TOKENS_PER_UNIT` tokens of the turn (the thread's
context and the message sent, plus the reply). The estimate holds the prompt's estimated tokens plus the longest
reply asked for (`STUDIO_CHAT_MAX_TOKENS`); the capture counts the provider's actual tokens, never above the hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from usage.models import Price
from usage.studio.providers.base import ChatMessage, estimate_tokens

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

IMAGE_SIZES: dict[str, int] = {"1024x1024": 1, "1792x1024": 2, "1024x1792": 2}  # size -> units per image
IMAGE_SIZE_LABELS: dict[str, str] = {
    "1024x1024": "Square",
    "1792x1024": "Wide (counts 2)",
    "1024x1792": "Tall (counts 2)",
}
IMAGE_COUNTS = (1, 2, 3, 4)
VIDEO_SECONDS = (2, 4, 6, 8, 10)
MUSIC_SECONDS = (10, 20, 30, 60)
VOICES = ("alloy", "echo", "fable", "nova", "onyx", "shimmer")  # the OpenAI voice names; the demo maps them
SPEECH_MAX_CHARS = 4000  # what an OpenAI-compatible speech endpoint takes in one request
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
