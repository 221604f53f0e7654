"""The OpenAI-compatible provider's media calls and error messages, against the loopback server."""

from __future__ import annotations

import pytest

from tests.usage.studio.fake_openai import PNG_1PX, WAV_SILENCE
from usage.studio.providers import OpenAICompatibleProvider, ProviderError


def test_images_and_speech_come_back_as_media(fake_openai):
    provider = OpenAICompatibleProvider()
    images = provider.image(model="img", prompt="A lighthouse", size="512x512", count=2)
    assert [(media.content, media.content_type) for media in images] == [(PNG_1PX, "image/png")] * 2
    request = fake_openai.behaviour.requests[-1]["body"]
    assert (request["size"], request["n"], request["response_format"]) == ("512x512", 2, "b64_json")
    speech = provider.speech(model="tts", text="Hello", voice="alloy")
    assert (speech.content, speech.content_type) == (WAV_SILENCE, "audio/wav")
    assert fake_openai.behaviour.requests[-1]["body"]["voice"] == "alloy"


def test_a_rejected_key_is_a_clear_message(fake_openai):
    fake_openai.behaviour.mode = "unauthorized"
    with pytest.raises(ProviderError, match=r"refused Qolaba's key\. Nothing was charged"):
        list(OpenAICompatibleProvider().chat(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=5))


def test_an_unreachable_server_is_a_clear_message(settings):
    settings.STUDIO_OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    provider = OpenAICompatibleProvider(timeout=1.0, max_retries=0)
    with pytest.raises(ProviderError, match="could not be reached"):
        provider.image(model="img", prompt="x", size="256x256", count=1)


def test_video_and_music_are_refused_plainly(fake_openai):
    with pytest.raises(ProviderError, match="no video models"):
        OpenAICompatibleProvider().video(model="v", prompt="x", seconds=4, progress=lambda done: None)
