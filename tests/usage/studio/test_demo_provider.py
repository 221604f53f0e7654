"""The offline demo provider: chat assembled from the prompt and streamed word by word; images drawn with Pillow,
speech from espeak-ng, an H.264 video from PyAV and music as a WAV, all deterministic and all real files (opened
here with Pillow, `wave` and PyAV, their properties asserted)."""

from __future__ import annotations

import array
import io
import time
import wave
from pathlib import Path

import av
import pytest
from PIL import Image
from playwright.sync_api import Browser

from usage.studio.providers import (
    IMAGE_SIZES,
    SPEECH_MAX_CHARS,
    VIDEO_MAX_SECONDS,
    VOICES,
    ChatChunk,
    ChatUsage,
    DemoProvider,
    GenerationCancelled,
    ProviderError,
    ProviderTimeout,
    demo_media,
)


def _run(prompt: str, history: int = 0) -> tuple[str, ChatUsage]:
    messages = [{"role": "user", "content": f"earlier {i}"} for i in range(history)]
    messages.append({"role": "user", "content": prompt})
    items = list(DemoProvider(delay=0).chat(model="demo", messages=messages, max_tokens=800))
    assert isinstance(items[-1], ChatUsage)
    assert all(isinstance(item, ChatChunk) for item in items[:-1])
    return "".join(item.text for item in items[:-1] if isinstance(item, ChatChunk)), items[-1]


def test_the_demo_reply_is_assembled_from_the_prompt_and_deterministic():
    reply, usage = _run("Plan the offsite in Lisbon")
    assert "Plan the offsite in Lisbon" in reply
    assert "offline demo model" in reply
    assert _run("Plan the offsite in Lisbon") == (reply, usage)
    assert usage.completion_tokens == len(reply.split(" "))


def test_the_demo_reply_streams_word_by_word_and_respects_max_tokens():
    items = list(DemoProvider(delay=0).chat(model="demo", messages=[{"role": "user", "content": "Hi"}], max_tokens=3))
    assert [type(item) for item in items] == [ChatChunk, ChatChunk, ChatChunk, ChatUsage]


def test_the_demo_reply_changes_with_the_turn():
    replies = {_run("Same words", history=n)[0].split("“")[0] for n in range(8)}
    assert len(replies) > 1  # the opening varies with the turn number


def test_the_demo_paces_itself_by_the_setting(settings):
    settings.STUDIO_DEMO_DELAY = 0.25
    assert DemoProvider().delay == 0.25
    assert DemoProvider(delay=0).delay == 0


# --- image -----------------------------------------------------------------------------------------------------


def _png(content: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(content))
    assert picture.format == "PNG"
    picture.load()  # decodes every row: a truncated or corrupt file fails here
    return picture


@pytest.mark.parametrize("size", ["512x512", "1024x1024", "1024x1536", "1536x1024"])
def test_images_are_pngs_of_the_size_asked_for(size):
    images = DemoProvider(delay=0).image(model="demo-image", prompt="A lighthouse at dawn", size=size, count=1)
    assert [media.content_type for media in images] == ["image/png"]
    picture = _png(images[0].content)
    assert f"{picture.width}x{picture.height}" == size
    assert picture.mode == "RGB"
    assert len(picture.getcolors(maxcolors=1_000_000) or []) > 50  # a drawing, not a flat fill


def test_images_carry_the_demo_label_and_the_prompt():
    picture = _png(DemoProvider(delay=0).image(model="m", prompt="Lighthouse", size="512x512", count=1)[0].content)
    unit = 512 // 24  # the caption's scale for this size
    badge = picture.getpixel((unit + 3, unit + 3))
    assert isinstance(badge, tuple)
    assert min(badge) > 200  # the light "Demo output" badge in the top-left corner
    panel = picture.crop((unit, 512 - 3 * unit, 512 - unit, 512 - unit))  # the prompt's dark panel
    colours = {colour for _, colour in panel.getcolors(maxcolors=100_000) or []}
    assert any(max(colour) < 80 for colour in colours)  # the panel
    assert any(min(colour) > 200 for colour in colours)  # white text written on it


def test_a_long_prompt_stays_inside_its_panel():
    prompt = "WMWMWMWM" * 40 + " and many more words after it " * 10  # wide letters, one endless word
    picture = _png(DemoProvider(delay=0).image(model="m", prompt=prompt, size="512x512", count=1)[0].content)
    unit = 512 // 24
    padding = picture.crop((512 - 2 * unit + 2, 512 - 5 * unit, 512 - unit - 2, 512 - unit - 2))  # right of the text
    assert not any(min(colour) > 200 for _, colour in padding.getcolors(maxcolors=100_000) or [])
    text = picture.crop((2 * unit, 512 - 5 * unit, 512 - 2 * unit, 512 - unit))
    assert any(min(colour) > 200 for _, colour in text.getcolors(maxcolors=100_000) or [])


def test_images_are_deterministic_and_each_of_a_batch_differs():
    provider = DemoProvider(delay=0)
    first = provider.image(model="m", prompt="A red fox in snow", size="512x512", count=3)
    again = provider.image(model="m", prompt="A red fox in snow", size="512x512", count=3)
    assert [media.content for media in first] == [media.content for media in again]
    assert len({media.content for media in first}) == 3
    other = provider.image(model="m", prompt="A red fox in sand", size="512x512", count=1)
    assert other[0].content != first[0].content


@pytest.mark.parametrize(("size", "count"), [("100x100", 1), ("1024x1024x", 1), ("512x512", 0), ("512x512", 5)])
def test_images_refuse_sizes_and_counts_not_offered(size, count):
    with pytest.raises(ProviderError, match="Nothing was charged"):
        DemoProvider(delay=0).image(model="m", prompt="x", size=size, count=count)


def test_every_offered_size_can_be_drawn():
    for size in IMAGE_SIZES:
        width, height = (int(side) for side in size.split("x"))
        picture = _png(DemoProvider(delay=0).image(model="m", prompt="x", size=size, count=1)[0].content)
        assert picture.size == (width, height)


def test_images_take_the_demo_pace():
    started = time.monotonic()
    DemoProvider(delay=0.01).image(model="m", prompt="x", size="256x256", count=2)
    assert time.monotonic() - started >= 2 * 10 * 0.01


# --- speech ----------------------------------------------------------------------------------------------------


def _wav(content: bytes) -> tuple[wave._wave_params, array.array[int]]:
    with wave.open(io.BytesIO(content)) as audio:
        params = audio.getparams()
        frames = audio.readframes(params.nframes)
    assert len(frames) == params.nframes * params.sampwidth * params.nchannels  # the header tells the truth
    return params, array.array("h", frames)


def test_speech_is_a_wav_spoken_by_espeak_and_deterministic():
    provider = DemoProvider(delay=0)
    media = provider.speech(model="demo-tts", text="Welcome to the spring launch.", voice="nova")
    assert media.content_type == "audio/wav"
    params, samples = _wav(media.content)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 22050)
    assert 1.0 < params.nframes / params.framerate < 5.0  # a short sentence at 165 words a minute
    assert max(abs(sample) for sample in samples) > 3000  # a voice, not silence
    assert provider.speech(model="demo-tts", text="Welcome to the spring launch.", voice="nova") == media
    longer = provider.speech(model="demo-tts", text="Welcome to the spring launch. " * 3, voice="nova")
    assert _wav(longer.content)[0].nframes > 2 * params.nframes


def test_every_voice_speaks_differently():
    provider = DemoProvider(delay=0)
    spoken = {provider.speech(model="m", text="Good morning, team.", voice=voice).content for voice in VOICES}
    assert len(spoken) == len(VOICES)


def test_speech_text_is_never_an_option_nor_a_shell_command(tmp_path):
    marker = tmp_path / "pwned"
    text = f"-w {tmp_path}/out.wav --help; touch {marker} $(touch {marker}) `touch {marker}`"
    media = DemoProvider(delay=0).speech(model="m", text=text, voice="alloy")
    assert _wav(media.content)[0].nframes > 22050  # it was all spoken, as words
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "voice", "message"),
    [
        ("Hello", "robot", "no voice called robot"),
        ("   ", "alloy", "no text to speak"),
        ("x" * (SPEECH_MAX_CHARS + 1), "alloy", "up to 4,000 characters"),
    ],
)
def test_speech_refuses_what_it_cannot_say(text, voice, message):
    with pytest.raises(ProviderError, match=message):
        DemoProvider(delay=0).speech(model="m", text=text, voice=voice)


def test_speech_without_espeak_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine where espeak-ng is not installed
    with pytest.raises(ProviderError, match="espeak-ng is missing") as refused:
        DemoProvider(delay=0).speech(model="m", text="Hello", voice="alloy")
    assert not isinstance(refused.value, ProviderTimeout)


def test_speech_that_runs_too_long_is_a_timeout(monkeypatch):
    monkeypatch.setattr(demo_media, "SPEECH_TIMEOUT", 0.001)
    with pytest.raises(ProviderTimeout, match="took too long"):
        DemoProvider(delay=0).speech(model="m", text="A long paragraph to read aloud. " * 100, voice="alloy")


# --- video -----------------------------------------------------------------------------------------------------


def test_video_is_a_playable_h264_mp4_of_the_length_asked_for():
    reports: list[float] = []
    media = DemoProvider(delay=0).video(
        model="demo-video", prompt="Waves on a beach", seconds=2, progress=reports.append
    )
    assert media.content_type == "video/mp4"
    assert media.content[4:8] == b"ftyp"
    assert media.content.index(b"moov") < media.content.index(b"mdat")  # the index first: plays while loading
    with av.open(io.BytesIO(media.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 640, 360)
        assert stream.codec_context.pix_fmt == "yuv420p"  # what browsers decode
        assert stream.average_rate == 24
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(2.0, abs=0.05)
        frames = [frame.to_image() for frame in container.decode(video=0)]
    assert len(frames) == 48
    assert frames[0].tobytes() != frames[-1].tobytes()  # it moves
    assert len(reports) == 48  # once a frame
    assert reports == sorted(reports)
    assert reports[-1] == 1.0


def test_video_is_deterministic_and_follows_the_prompt():
    provider = DemoProvider(delay=0)
    first = provider.video(model="m", prompt="Fireworks", seconds=1, progress=lambda done: None)
    assert provider.video(model="m", prompt="Fireworks", seconds=1, progress=lambda done: None) == first
    assert provider.video(model="m", prompt="Fireflies", seconds=1, progress=lambda done: None) != first


def test_video_stops_when_cancelled_and_leaves_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    reports: list[float] = []

    def progress(done: float) -> None:
        reports.append(done)
        if done >= 0.25:
            raise GenerationCancelled

    with pytest.raises(GenerationCancelled):
        DemoProvider(delay=0).video(model="m", prompt="x", seconds=4, progress=progress)
    assert len(reports) == 24  # stopped at the frame that asked (a quarter of 96), not at the end
    assert list(Path(tmp_path).iterdir()) == []


@pytest.mark.parametrize("seconds", [0, -1, VIDEO_MAX_SECONDS + 1])
def test_video_refuses_lengths_not_offered(seconds):
    with pytest.raises(ProviderError, match="1 to 20 seconds"):
        DemoProvider(delay=0).video(model="m", prompt="x", seconds=seconds, progress=lambda done: None)


def test_video_takes_the_demo_pace():
    started = time.monotonic()
    DemoProvider(delay=0.004).video(model="m", prompt="x", seconds=1, progress=lambda done: None)
    assert time.monotonic() - started >= 25 * 0.004  # LONG_JOB_PACE delays per second of video


# --- music -----------------------------------------------------------------------------------------------------


def test_music_is_a_wav_of_the_length_asked_for_with_progress_per_beat():
    reports: list[float] = []
    media = DemoProvider(delay=0).music(
        model="demo-music", prompt="A calm piano loop", seconds=6, progress=reports.append
    )
    assert media.content_type == "audio/wav"
    params, samples = _wav(media.content)
    assert (params.nchannels, params.sampwidth, params.framerate, params.nframes) == (1, 2, 22050, 6 * 22050)
    peak = max(abs(sample) for sample in samples)
    assert 10_000 < peak < 32_767  # loud enough to hear, never clipped
    assert max(abs(sample) for sample in samples[-50:]) < 200  # it fades out rather than stopping on a click
    assert 6 * 84 / 60 - 1 <= len(reports) <= 6 * 132 / 60 + 1  # once a beat, at 84 to 132 beats a minute
    assert reports == sorted(reports)
    assert reports[-1] == 1.0


def test_music_is_a_melody_not_one_tone():
    media = DemoProvider(delay=0).music(model="m", prompt="A calm piano loop", seconds=4, progress=lambda done: None)
    samples = _wav(media.content)[1]
    window = 2205  # a tenth of a second; its zero crossings follow the pitch heard in it
    crossings = [
        sum(1 for a, b in zip(samples[i : i + window], samples[i + 1 : i + window], strict=False) if (a < 0) != (b < 0))
        for i in range(0, len(samples) - window, window)
    ]
    assert len({count // 5 for count in crossings}) >= 4  # several notes


def test_music_is_deterministic_and_follows_the_prompt():
    provider = DemoProvider(delay=0)
    first = provider.music(model="m", prompt="Jazz for a rainy day", seconds=3, progress=lambda done: None)
    assert provider.music(model="m", prompt="Jazz for a rainy day", seconds=3, progress=lambda done: None) == first
    assert provider.music(model="m", prompt="Jazz for a sunny day", seconds=3, progress=lambda done: None) != first


def test_music_stops_when_cancelled():
    reports: list[float] = []

    def progress(done: float) -> None:
        reports.append(done)
        if len(reports) == 3:
            raise GenerationCancelled

    with pytest.raises(GenerationCancelled):
        DemoProvider(delay=0).music(model="m", prompt="x", seconds=60, progress=progress)
    assert len(reports) == 3
    assert reports[-1] < 0.1


def test_music_refuses_lengths_not_offered():
    with pytest.raises(ProviderError, match="1 to 120 seconds"):
        DemoProvider(delay=0).music(model="m", prompt="x", seconds=121, progress=lambda done: None)


# --- in a browser ----------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_chromium_plays_the_demo_video_and_audio(browser: Browser):
    """The files as a member's browser gets them: Debian's Chromium decodes the video's frames and plays the WAVs."""
    provider = DemoProvider(delay=0)
    files = {
        "video": provider.video(model="m", prompt="Waves on a beach", seconds=2, progress=lambda done: None),
        "speech": provider.speech(model="m", text="Welcome to the spring launch.", voice="nova"),
        "music": provider.music(model="m", prompt="A calm piano loop", seconds=3, progress=lambda done: None),
    }
    page_html = (
        '<video id="video" src="http://media.test/video" muted></video>'
        '<audio id="speech" src="http://media.test/speech"></audio><audio id="music" src="http://media.test/music"></audio>'
    )
    # The suite's own browser (pytest-playwright): a second sync Playwright inside its event loop is refused. The
    # video is muted, so it may play without a gesture.
    page = browser.new_page()
    try:
        page.route(
            "http://media.test/*",
            lambda route: route.fulfill(
                body=files[route.request.url.rsplit("/", 1)[1]].content,
                content_type=files[route.request.url.rsplit("/", 1)[1]].content_type,
            ),
        )
        page.route("http://page.test/", lambda route: route.fulfill(body=page_html, content_type="text/html"))
        page.goto("http://page.test/")
        page.wait_for_function(
            "['video', 'speech', 'music'].every(id => { const e = document.getElementById(id);"
            " return e.readyState >= 1 || e.error; })",
            timeout=15_000,
        )
        loaded = page.evaluate(
            "['video', 'speech', 'music'].map(id => { const e = document.getElementById(id);"
            " return [e.error && e.error.code, e.duration]; })"
        )
        assert [error for error, _ in loaded] == [None, None, None]
        assert [duration for _, duration in loaded] == [2, pytest.approx(1.9, abs=0.5), 3]
        assert page.evaluate("(e => [e.videoWidth, e.videoHeight])(document.getElementById('video'))") == [640, 360]
        page.evaluate("document.getElementById('video').play()")
        # Decoded and shown, not only parsed. Waited for rather than sampled: on a busy machine playback lags.
        page.wait_for_function(
            "document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames > 10", timeout=30_000
        )
        frames = page.evaluate("document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames")
        assert frames > 10
    finally:
        page.close()
