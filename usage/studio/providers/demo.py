"""The offline demo provider: deterministic, no network, labelled as demo output wherever it is shown."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence

from django.conf import settings

from usage.studio.providers.base import (
    ChatChunk,
    ChatMessage,
    ChatUsage,
    Media,
    Progress,
    ProviderError,
    estimate_tokens,
)

OPENINGS = [
    "Here is a first take on",
    "Thinking this through, about",
    "A short answer on",
    "Some notes on",
]
BODY = (
    "the key points are the goal, the people involved and the next step. "
    "Start with what matters most, write it down plainly, and check it with the team before going further. "
    "This reply was written by the offline demo model, so it only rephrases your message."
)


def demo_reply(prompt: str, turn_number: int) -> str:
    """The demo's reply: assembled from the prompt, the same every time for the same prompt and turn."""
    digest = int(hashlib.sha256(f"{turn_number}:{prompt}".encode()).hexdigest(), 16)
    opening = OPENINGS[digest % len(OPENINGS)]
    topic = " ".join(prompt.split()[:12]).rstrip(".?!") or "your message"
    return f"{opening} “{topic}”: {BODY}"


class DemoProvider:
    name = "demo"
    is_demo = True

    def __init__(self, *, delay: float | None = None) -> None:
        self.delay = settings.STUDIO_DEMO_DELAY if delay is None else delay

    def chat(self, *, model: str, messages: Sequence[ChatMessage], max_tokens: int) -> Iterator[ChatChunk | ChatUsage]:
        users = [message["content"] for message in messages if message["role"] == "user"]
        reply = demo_reply(users[-1] if users else "", len(users))
        words = reply.split(" ")[: max(1, max_tokens)]
        for index, word in enumerate(words):
            if self.delay:
                time.sleep(self.delay)
            yield ChatChunk(word if index == 0 else f" {word}")
        prompt_tokens = sum(estimate_tokens(message["content"]) for message in messages)
        yield ChatUsage(prompt_tokens=prompt_tokens, completion_tokens=len(words))

    def image(self, *, model: str, prompt: str, size: str, count: int) -> list[Media]:
        raise ProviderError("The demo's Image tool is not available yet.")

    def speech(self, *, model: str, text: str, voice: str) -> Media:
        raise ProviderError("The demo's Speech tool is not available yet.")

    def video(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        raise ProviderError("The demo's Video tool is not available yet.")

    def music(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        raise ProviderError("The demo's Music tool is not available yet.")
