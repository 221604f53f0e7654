"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, a LiteLLM proxy, OpenRouter) over the official `openai` SDK.

The base URL and key come from the settings (`STUDIO_OPENAI_BASE_URL`, `STUDIO_OPENAI_API_KEY`); the SDK retries
connection errors, 408/409/429 and 5xx with exponential backoff (`STUDIO_OPENAI_MAX_RETRIES`) before a stream
starts. Its errors become `ProviderError`s with messages a member can act on.

Images ask for base64 (`response_format="b64_json"`: many compatible servers answer links by default); OpenAI's
GPT image models refuse that legacy parameter and always answer base64, so a refusal naming it is retried once
without it. What comes back is checked by its first bytes (PNG, JPEG, WebP or GIF; WAV, MP3, Ogg, FLAC or AAC), as
servers may ignore the format asked for. Video and music are refused: the SDK's only video API (Sora) is deprecated
and shut down, and it has no music API.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Any

import openai
from django.conf import settings

from usage.studio.providers.base import (
    IMAGE_MAX_COUNT,
    SPEECH_MAX_CHARS,
    ChatChunk,
    ChatMessage,
    ChatUsage,
    Media,
    Progress,
    ProviderError,
    ProviderTimeout,
)

IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
AUDIO_SIGNATURES = {
    b"ID3": "audio/mpeg",
    b"\xff\xfb": "audio/mpeg",
    b"\xff\xf3": "audio/mpeg",
    b"\xff\xf2": "audio/mpeg",
    b"OggS": "audio/ogg",
    b"fLaC": "audio/flac",
    b"\xff\xf1": "audio/aac",
    b"\xff\xf9": "audio/aac",
}


def image_type(content: bytes) -> str | None:
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_SIGNATURES.items() if content.startswith(magic)), None)


def audio_type(content: bytes) -> str | None:
    if content[:4] == b"RIFF" and content[8:12] == b"WAVE":
        return "audio/wav"
    return next((kind for magic, kind in AUDIO_SIGNATURES.items() if content.startswith(magic)), None)


def provider_error(error: openai.OpenAIError) -> ProviderError:
    """The SDK's error as a message for the member (the provider's own words only where they help)."""
    if isinstance(error, openai.APITimeoutError):
        return ProviderTimeout("The model took too long to answer. Nothing was charged; please try again.")
    if isinstance(error, openai.APIConnectionError):
        return ProviderError("The model's server could not be reached. Nothing was charged; please try again.")
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError("The model's server refused Qolaba's key. Nothing was charged; staff have to fix it.")
    if isinstance(error, openai.RateLimitError):
        return ProviderError("The model is busy right now. Nothing was charged; please try again in a minute.")
    if isinstance(error, openai.NotFoundError):
        return ProviderError("The model's server does not know this model. Nothing was charged.")
    if isinstance(error, openai.BadRequestError):
        return ProviderError(f"The model refused this request: {_detail(error)} Nothing was charged.")
    if isinstance(error, openai.APIStatusError):
        return ProviderError(f"The model's server failed (HTTP {error.status_code}). Nothing was charged.")
    return ProviderError("The model failed to answer. Nothing was charged; please try again.")


def _detail(error: openai.APIStatusError) -> str:
    body: Any = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return (str(message) if message else "invalid request.")[:200]


class OpenAICompatibleProvider:
    name = "openai-compatible"
    is_demo = False

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.client = openai.OpenAI(
            base_url=base_url or settings.STUDIO_OPENAI_BASE_URL or None,
            api_key=api_key or settings.STUDIO_OPENAI_API_KEY or "not-set",
            timeout=timeout if timeout is not None else settings.STUDIO_OPENAI_TIMEOUT,
            max_retries=max_retries if max_retries is not None else settings.STUDIO_OPENAI_MAX_RETRIES,
        )

    def chat(self, *, model: str, messages: Sequence[ChatMessage], max_tokens: int) -> Iterator[ChatChunk | ChatUsage]:
        try:
            stream = self.client.chat.completions.create(  # type: ignore[call-overload]
                model=model,
                messages=list(messages),
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            with stream:
                for event in stream:
                    for choice in event.choices:
                        if choice.delta.content:
                            yield ChatChunk(choice.delta.content)
                    if event.usage is not None:
                        yield ChatUsage(
                            prompt_tokens=event.usage.prompt_tokens, completion_tokens=event.usage.completion_tokens
                        )
        except openai.OpenAIError as error:
            raise provider_error(error) from error

    def image(self, *, model: str, prompt: str, size: str, count: int) -> list[Media]:
        if not 1 <= count <= IMAGE_MAX_COUNT:
            raise ProviderError(f"Ask for 1 to {IMAGE_MAX_COUNT} images. Nothing was charged.")
        try:
            try:
                answer = self.client.images.generate(
                    model=model, prompt=prompt, size=size, n=count, response_format="b64_json"
                )
            except openai.BadRequestError as error:
                if "response_format" not in _detail(error):
                    raise
                # A GPT image model: it always answers base64 and refuses the parameter that asks for it.
                answer = self.client.images.generate(model=model, prompt=prompt, size=size, n=count)
        except openai.OpenAIError as error:
            raise provider_error(error) from error
        items = answer.data or []
        if not any(item.b64_json for item in items) and any(item.url for item in items):
            raise ProviderError(
                "The model answered with links instead of images; staff have to fix it. Nothing was charged."
            )
        images = []
        for item in items:
            if not item.b64_json:
                continue
            try:
                content = base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError):
                content = b""
            kind = image_type(content)
            if kind is None:
                raise ProviderError("The model returned something that is not an image. Nothing was charged.")
            images.append(Media(content, kind))
        if not images:
            raise ProviderError("The model returned no image. Nothing was charged.")
        return images[:count]

    def speech(self, *, model: str, text: str, voice: str) -> Media:
        if not text.strip():
            raise ProviderError("There is no text to speak. Nothing was charged.")
        if len(text) > SPEECH_MAX_CHARS:
            raise ProviderError(f"Speech takes up to {SPEECH_MAX_CHARS:,} characters at a time. Nothing was charged.")
        try:
            answer = self.client.audio.speech.create(model=model, input=text, voice=voice, response_format="wav")
            content = answer.content
        except openai.OpenAIError as error:
            raise provider_error(error) from error
        kind = audio_type(content)
        if kind is None:
            raise ProviderError("The model returned no playable audio. Nothing was charged.")
        return Media(content, kind)

    def video(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        raise ProviderError("This provider has no video model: choose another model. Nothing was charged.")

    def music(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        raise ProviderError("This provider has no music model: choose another model. Nothing was charged.")
