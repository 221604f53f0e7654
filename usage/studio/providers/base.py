"""The one interface every Studio provider implements, and what it hands back.

Chat streams: `chat` yields `ChatChunk`s as the model writes, then one `ChatUsage` (the provider's token counts).
The media tools return `Media` (bytes and content type); the long ones (video, music) report progress in [0, 1]
through a callback, which may raise `GenerationCancelled` to stop them. Every failure is a `ProviderError` whose
message is fit to show the member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatChunk:
    text: str


@dataclass(frozen=True)
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str


Progress = Callable[[float], None]


class ProviderError(Exception):
    """The provider failed; `message` says so plainly. Nothing produced is charged."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderTimeout(ProviderError):
    pass


class GenerationCancelled(Exception):
    """Raised by a progress callback (or a chat consumer) to stop a generation."""


# What every provider takes, for the pages' pickers and the services' checks. The sizes are those OpenAI's image
# models take (dall-e-2: the squares; gpt-image-1: 1024x1536 / 1536x1024; dall-e-3: 1792x1024 / 1024x1792); the
# demo draws any of them. The voices are OpenAI's names, which most OpenAI-compatible speech servers accept too; the
# demo maps each to an espeak-ng voice.
IMAGE_SIZES: tuple[str, ...] = (
    "256x256",
    "512x512",
    "1024x1024",
    "1024x1536",
    "1536x1024",
    "1792x1024",
    "1024x1792",
)
IMAGE_MAX_COUNT = 4
VOICES: dict[str, str] = {
    "alloy": "Alloy · neutral",
    "echo": "Echo · calm, British",
    "fable": "Fable · storyteller, British",
    "onyx": "Onyx · deep",
    "nova": "Nova · bright",
    "shimmer": "Shimmer · soft",
}
SPEECH_MAX_CHARS = 4000  # what OpenAI's speech endpoint takes in one request
VIDEO_MAX_SECONDS = 20
MUSIC_MAX_SECONDS = 120


def image_size(size: str) -> tuple[int, int]:
    """`"1024x1536"` as (width, height); a size outside `IMAGE_SIZES` is a `ProviderError`."""
    if size not in IMAGE_SIZES:
        raise ProviderError(f"Images of size {size[:20]} are not offered. Nothing was charged.")
    width, height = size.split("x")
    return int(width), int(height)


class StudioProvider(Protocol):
    name: str
    is_demo: bool

    def chat(self, *, model: str, messages: Sequence[ChatMessage], max_tokens: int) -> Iterator[ChatChunk | ChatUsage]:
        """Stream the reply. The last item is the `ChatUsage` (when the stream runs to its end)."""
        ...

    def image(self, *, model: str, prompt: str, size: str, count: int) -> list[Media]: ...

    def speech(self, *, model: str, text: str, voice: str) -> Media: ...

    def video(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media: ...

    def music(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media: ...


def estimate_tokens(text: str) -> int:
    """A provider-independent token estimate (about four characters a token), used before a run and when a
    stream is stopped before the provider reported its counts."""
    return max(1, (len(text) + 3) // 4) if text else 0
