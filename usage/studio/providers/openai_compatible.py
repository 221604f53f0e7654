"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, a LiteLLM proxy, OpenRouter) over the official `openai` SDK.

The base URL and key come from the settings (`STUDIO_OPENAI_BASE_URL`, `STUDIO_OPENAI_API_KEY`); the SDK retries
connection errors, 408/409/429 and 5xx with exponential backoff (`STUDIO_OPENAI_MAX_RETRIES`) before a stream
starts. Its errors become `ProviderError`s with messages a member can act on.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import openai
from django.conf import settings

from usage.studio.providers.base import (
    ChatChunk,
    ChatMessage,
    ChatUsage,
    Media,
    Progress,
    ProviderError,
    ProviderTimeout,
)


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
        try:
            answer = self.client.images.generate(
                model=model, prompt=prompt, size=size, n=count, response_format="b64_json"
            )
        except openai.OpenAIError as error:
            raise provider_error(error) from error
        images = [item.b64_json for item in answer.data or [] if item.b64_json]
        if not images:
            raise ProviderError("The model returned no image. Nothing was charged.")
        return [Media(base64.b64decode(data), "image/png") for data in images]

    def speech(self, *, model: str, text: str, voice: str) -> Media:
        try:
            answer = self.client.audio.speech.create(model=model, input=text, voice=voice, response_format="wav")
        except openai.OpenAIError as error:
            raise provider_error(error) from error
        return Media(answer.content, "audio/wav")

    def video(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        raise ProviderError("This provider has no video models configured.")

    def music(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        raise ProviderError("This provider has no music models configured.")
