"""The OpenAI-compatible provider's media calls and error messages, against the loopback server: images (base64,
their type read from their bytes), speech, the SDK's retries, and every failure as a message for the member."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from tests.usage.studio.fake_openai import PNG_1PX, WAV_SILENCE
from usage.studio.providers import OpenAICompatibleProvider, ProviderError, ProviderTimeout

JPEG_1PX = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTg"
    "yPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="
)
MP3_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64


def _image(provider: OpenAICompatibleProvider, count: int = 1) -> list:
    return provider.image(model="img", prompt="A lighthouse", size="1024x1024", count=count)


def test_images_and_speech_come_back_as_media(fake_openai):
    provider = OpenAICompatibleProvider()
    images = provider.image(model="img", prompt="A lighthouse", size="512x512", count=2)
    assert [(media.content, media.content_type) for media in images] == [(PNG_1PX, "image/png")] * 2
    assert Image.open(io.BytesIO(images[0].content)).size == (1, 1)
    request = fake_openai.behaviour.requests[-1]
    assert request["path"] == "/v1/images/generations"
    assert request["auth"] == "Bearer sk-test"
    body = request["body"]
    assert (body["model"], body["prompt"], body["size"], body["n"], body["response_format"]) == (
        "img",
        "A lighthouse",
        "512x512",
        2,
        "b64_json",
    )
    speech = provider.speech(model="tts", text="Hello", voice="alloy")
    assert (speech.content, speech.content_type) == (WAV_SILENCE, "audio/wav")
    request = fake_openai.behaviour.requests[-1]
    assert request["path"] == "/v1/audio/speech"
    assert (request["body"]["input"], request["body"]["voice"], request["body"]["response_format"]) == (
        "Hello",
        "alloy",
        "wav",
    )


def test_the_media_type_is_read_from_the_bytes_not_assumed(fake_openai):
    fake_openai.behaviour.image = JPEG_1PX
    fake_openai.behaviour.speech, fake_openai.behaviour.speech_type = MP3_HEAD, "audio/mpeg"
    provider = OpenAICompatibleProvider()
    assert [media.content_type for media in _image(provider)] == ["image/jpeg"]
    assert provider.speech(model="tts", text="Hello", voice="nova").content_type == "audio/mpeg"


def test_a_gpt_image_model_refusing_response_format_is_asked_again_without_it(fake_openai):
    fake_openai.behaviour.mode = "gpt_image"
    images = _image(OpenAICompatibleProvider(), count=2)
    assert [media.content_type for media in images] == ["image/png", "image/png"]
    sent = [request["body"] for request in fake_openai.behaviour.requests]
    assert [("response_format" in body) for body in sent] == [True, False]


def test_images_answered_as_links_are_a_clear_message(fake_openai):
    fake_openai.behaviour.mode = "urls"
    with pytest.raises(ProviderError, match="links instead of images"):
        _image(OpenAICompatibleProvider())


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"<html>nope</html>", "not an image"), (b"", "no image")],
)
def test_images_that_are_not_images_are_refused(fake_openai, payload, message):
    fake_openai.behaviour.image = payload
    with pytest.raises(ProviderError, match=message):
        _image(OpenAICompatibleProvider())


def test_speech_that_is_not_audio_is_refused(fake_openai):
    fake_openai.behaviour.speech, fake_openai.behaviour.speech_type = b'{"detail": "queued"}', "application/json"
    with pytest.raises(ProviderError, match="no playable audio"):
        OpenAICompatibleProvider().speech(model="tts", text="Hello", voice="alloy")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", r"The model's server failed \(HTTP 500\)\. Nothing was charged\."),
        ("bad_request", r"The model refused this request: This prompt is not allowed\. Nothing was charged\."),
        ("unauthorized", r"refused Qolaba's key\. Nothing was charged; staff have to fix it\."),
    ],
)
def test_provider_errors_on_media_are_clear_messages(fake_openai, mode, message):
    fake_openai.behaviour.mode = mode
    provider = OpenAICompatibleProvider()
    with pytest.raises(ProviderError, match=message) as image_error:
        _image(provider)
    with pytest.raises(ProviderError, match=message) as speech_error:
        provider.speech(model="tts", text="Hello", voice="alloy")
    assert not isinstance(image_error.value, ProviderTimeout)
    assert not isinstance(speech_error.value, ProviderTimeout)


@pytest.mark.parametrize("mode", ["timeout", "stall"])
def test_a_silent_or_stalled_server_is_a_timeout(fake_openai, mode):
    fake_openai.behaviour.mode = mode  # stall: the headers and half the body, then nothing
    provider = OpenAICompatibleProvider(timeout=0.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="took too long"):
        _image(provider)
    with pytest.raises(ProviderTimeout, match="took too long"):
        provider.speech(model="tts", text="Hello", voice="alloy")
    assert time.monotonic() - started < 2.5  # each gave up after its timeout, not after the server's 3 s


def test_server_errors_are_retried_with_backoff_before_failing(fake_openai):
    fake_openai.behaviour.fail_first = 2
    images = _image(OpenAICompatibleProvider(max_retries=2))
    assert [media.content_type for media in images] == ["image/png"]
    assert len(fake_openai.behaviour.requests) == 3
    fake_openai.behaviour.fail_first = 3
    with pytest.raises(ProviderError, match="HTTP 500"):
        OpenAICompatibleProvider(max_retries=2).speech(model="tts", text="Hello", voice="alloy")


def test_media_checks_happen_before_any_request(fake_openai):
    provider = OpenAICompatibleProvider()
    with pytest.raises(ProviderError, match="1 to 4 images"):
        provider.image(model="img", prompt="x", size="512x512", count=5)
    with pytest.raises(ProviderError, match="no text to speak"):
        provider.speech(model="tts", text=" ", voice="alloy")
    with pytest.raises(ProviderError, match="up to 4,000 characters"):
        provider.speech(model="tts", text="x" * 4001, voice="alloy")
    assert fake_openai.behaviour.requests == []


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
    provider = OpenAICompatibleProvider()
    with pytest.raises(ProviderError, match=r"no video model.*Nothing was charged"):
        provider.video(model="v", prompt="x", seconds=4, progress=lambda done: None)
    with pytest.raises(ProviderError, match=r"no music model.*Nothing was charged"):
        provider.music(model="m", prompt="x", seconds=10, progress=lambda done: None)
    assert fake_openai.behaviour.requests == []
