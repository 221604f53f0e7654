"""The offline demo provider: deterministic, no network, labelled as demo output wherever it is shown.

Chat replies are assembled from the prompt; the media come from `demo_media` (Pillow, espeak-ng, PyAV). Its pace
follows `STUDIO_DEMO_DELAY` (0 in the tests): a chat word waits one delay, an image ten, and a long job (video,
music) about `LONG_JOB_PACE` delays per second of output, reporting progress each frame or beat, so the demo's
progress bar and Cancel have something to show.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence

from django.conf import settings

from usage.studio.providers.base import (
    IMAGE_MAX_COUNT,
    MUSIC_MAX_SECONDS,
    SPEECH_MAX_CHARS,
    VIDEO_MAX_SECONDS,
    VOICES,
    ChatChunk,
    ChatMessage,
    ChatUsage,
    Media,
    Progress,
    ProviderError,
    estimate_tokens,
    image_size,
)
from usage.studio.providers.demo_media import MUSIC_RATE, VIDEO_FPS, image_png, music_wav, speech_wav, video_mp4

LONG_JOB_PACE = 25  # delays per second of video or music: 0.75 s at the default delay
IMAGE_PACE = 10  # delays per image

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
        width, height = image_size(size)
        if not 1 <= count <= IMAGE_MAX_COUNT:
            raise ProviderError(f"Ask for 1 to {IMAGE_MAX_COUNT} images. Nothing was charged.")
        images = []
        for index in range(count):
            self._pause(IMAGE_PACE * self.delay)
            png = image_png(model=model, prompt=prompt, width=width, height=height, index=index)
            images.append(Media(png, "image/png"))
        return images

    def speech(self, *, model: str, text: str, voice: str) -> Media:
        if voice not in VOICES:
            raise ProviderError(f"There is no voice called {voice[:30]}. Nothing was charged.")
        if not text.strip():
            raise ProviderError("There is no text to speak. Nothing was charged.")
        if len(text) > SPEECH_MAX_CHARS:
            raise ProviderError(f"Speech takes up to {SPEECH_MAX_CHARS:,} characters at a time. Nothing was charged.")
        return Media(speech_wav(text=text, voice=voice), "audio/wav")

    def video(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        _check_seconds(seconds, VIDEO_MAX_SECONDS, "A video")
        pause = LONG_JOB_PACE * self.delay / VIDEO_FPS

        def on_frame(done: int, total: int) -> None:
            self._pause(pause)
            progress(done / total)

        return Media(video_mp4(model=model, prompt=prompt, seconds=seconds, on_frame=on_frame), "video/mp4")

    def music(self, *, model: str, prompt: str, seconds: int, progress: Progress) -> Media:
        _check_seconds(seconds, MUSIC_MAX_SECONDS, "Music")
        pace = LONG_JOB_PACE * self.delay / MUSIC_RATE  # per sample: each beat waits in proportion to its length
        before = 0

        def on_beat(done: int, total: int) -> None:
            nonlocal before
            self._pause(pace * (done - before))
            before = done
            progress(done / total)

        return Media(music_wav(model=model, prompt=prompt, seconds=seconds, on_beat=on_beat), "audio/wav")

    @staticmethod
    def _pause(seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def _check_seconds(seconds: int, most: int, what: str) -> None:
    if not 1 <= seconds <= most:
        raise ProviderError(f"{what} can last 1 to {most} seconds. Nothing was charged.")
