"""What a Studio generation is estimated (and held) at before it runs, and what it is captured at after.

Chat: a chat price's unit is counted per started block of `CHAT_TOKENS_PER_UNIT` tokens of the turn (the thread's
context and the message sent, plus the reply). The estimate holds the prompt's estimated tokens plus the longest
reply asked for (`STUDIO_CHAT_MAX_TOKENS`); the capture counts the provider's actual tokens, never above the hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    prompt_tokens: int

    @property
    def credits(self) -> int:
        return self.price.credits_per_unit * self.units


def chat_estimate(*, price: Price, messages: Sequence[ChatMessage]) -> Estimate:
    """`messages`: everything the model will be sent (the thread's context and the new message)."""
    prompt_tokens = messages_tokens(messages)
    return Estimate(
        price=price, units=chat_units(prompt_tokens + settings.STUDIO_CHAT_MAX_TOKENS), prompt_tokens=prompt_tokens
    )
