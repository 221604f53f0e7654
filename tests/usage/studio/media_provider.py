"""A Studio provider for the tests (any implementation of `usage.studio.providers.base.StudioProvider` will do)."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from usage.studio.providers import Media
from usage.studio.providers.base import Progress

PNG = b"\x89PNG\r\n\x1a\n"


class MediaProvider:
    """A provider for the tests: counts its calls, makes distinct small files, can fail, and reports progress in
    `steps` steps (calling `during(step)` at each, e.g. to press Cancel from "another request")."""

    name = "test"
    is_demo = False

    def __init__(
        self,
        *,
        error: Exception | None = None,
        images: int | None = None,
        steps: int = 4,
        delay: float = 0.0,
        during: Callable[[int], None] | None = None,
        pictures: bool = False,
    ) -> None:
        self.error, self.images, self.steps, self.delay, self.during = error, images, steps, delay, during
        self.pictures = pictures  # real PNGs (for the browser), not just tagged bytes
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _called(self, tool: str, **kwargs: Any) -> None:
        self.calls.append((tool, kwargs))
        if self.error is not None:
            raise self.error

    def chat(self, **kwargs: Any):  # pragma: no cover - not a media tool
        raise NotImplementedError

    def image(self, *, model: str, prompt: str, size: str, count: int) -> list[Media]:
        self._called("image", model=model, prompt=prompt, size=size, count=count)
        made = count if self.images is None else self.images
        if self.pictures:
            return [Media(picture(f"{prompt}:{index}"), "image/png") for index in range(made)]
        return [Media(PNG + f"{prompt}:{size}:{index}".encode(), "image/png") for index in range(made)]

    def speech(self, *, model: str, text: str, voice: str) -> Media:
        self._called("speech", model=model, text=text, voice=voice)
        return Media(b"RIFF\x00\x00\x00\x00WAVE" + text.encode(), "audio/wav")

    def _long(self, tool: str, content_type: str, progress: Progress, **kwargs: Any) -> Media:
        self._called(tool, **kwargs)
        for step in range(self.steps):
            if self.during is not None:
                self.during(step)
            progress(step / self.steps)
            if self.delay:
                time.sleep(self.delay)
        progress(1.0)
        return Media(f"{tool}:{kwargs['prompt']}".encode(), content_type)

    def video(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        return self._long("video", "video/mp4", progress, model=model, prompt=prompt, seconds=seconds)

    def music(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        return self._long("music", "audio/wav", progress, model=model, prompt=prompt, seconds=seconds)


def picture(seed: str) -> bytes:
    """A small real PNG, its colour taken from `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    image = Image.new("RGB", (256, 256), tuple(digest[:3]))
    image.paste(tuple(digest[3:6]), (64, 64, 192, 192))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
