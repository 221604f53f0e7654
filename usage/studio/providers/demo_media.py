"""The demo provider's media, made on this machine with no network: images drawn with Pillow, speech from
espeak-ng, a short H.264 video encoded with PyAV, music synthesised into a WAV.

Everything is a pure function of its inputs (a seed from a hash of them, no clock, no global random state), so the
same request gives the same bytes. The pacing and the checks of the options are `demo.DemoProvider`'s.
"""

from __future__ import annotations

import array
import colorsys
import contextlib
import hashlib
import io
import math
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from usage.studio.providers.base import ProviderError, ProviderTimeout

LABEL = "Demo output"

# Friendly voice (the names in `base.VOICES`) -> espeak-ng voice: a language and a variant (m1-m7 male, f1-f5 female).
ESPEAK_VOICES: dict[str, str] = {
    "alloy": "en-us+m1",
    "echo": "en-gb+m3",
    "fable": "en-gb-x-rp+m2",
    "onyx": "en-us+m7",
    "nova": "en-us+f3",
    "shimmer": "en-us+f4",
}
ESPEAK_WORDS_PER_MINUTE = 165
SPEECH_TIMEOUT = 60.0  # seconds; espeak-ng speaks 4,000 characters in well under one

VIDEO_SIZE = (640, 360)
VIDEO_FPS = 24
MUSIC_RATE = 22050  # samples a second, mono, 16 bit


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode(errors="replace")).digest()
    return random.Random(int.from_bytes(digest, "big"))  # noqa: S311 - a picture's colours, not a secret


def _colour(rng: random.Random, lightness: float, saturation: float = 0.65) -> tuple[int, int, int]:
    red, green, blue = colorsys.hls_to_rgb(rng.random(), lightness, saturation)
    return round(red * 255), round(green * 255), round(blue * 255)


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


# DejaVu Sans (Debian's fonts-dejavu-core, installed by the scripts) has accents, Greek, Cyrillic and symbols;
# Pillow's embedded font, the fallback, is ASCII only.
FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Loaded per picture (about a millisecond), not cached: a FreeType face is not safe to share between threads.
    if FONT_PATH.exists():
        return ImageFont.truetype(str(FONT_PATH), size)
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float, *, max_lines: int) -> list[str]:
    """`text` in lines no wider than `width` pixels (a word too long for a line is cut), at most `max_lines`, the
    last ending in "…" when some is left over."""
    # No glyph is narrower than a quarter of the font size: a line never holds more characters than this.
    most = max(1, int(width / (getattr(font, "size", 10) * 0.25)))
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while len(lines) <= max_lines and font.getlength(word) > width:  # a word wider than a line: cut it
            cut = next((n for n in range(min(len(word), most), 1, -1) if font.getlength(word[:n]) <= width), 1)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
        if len(lines) > max_lines:
            break
    else:
        if line:
            lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(f"{last} …") > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], f"{last.rstrip()} …"]
    return lines


def _caption(size: tuple[int, int], prompt: str, *, scale: int) -> Image.Image:
    """A transparent layer: the prompt in a dark panel along the bottom and the "Demo output" badge at the top."""
    width, height = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    margin, text_size = scale, max(12, round(scale * 0.9))
    font, badge_font = _font(text_size), _font(max(11, round(scale * 0.75)))
    lines = _wrap(" ".join(prompt.split()) or "(no prompt)", font, width - 4 * margin, max_lines=3)
    line_height = round(text_size * 1.3)
    panel_top = height - margin - 2 * margin - line_height * len(lines)
    draw.rounded_rectangle(
        (margin, panel_top, width - margin, height - margin), radius=margin // 2, fill=(10, 14, 28, 190)
    )
    for number, line in enumerate(lines):
        draw.text((2 * margin, panel_top + margin + number * line_height), line, font=font, fill=(255, 255, 255, 255))
    left, _top, right, bottom = draw.textbbox((0, 0), LABEL, font=badge_font)
    pad = max(4, scale // 3)
    draw.rounded_rectangle(
        (margin, margin, margin + right - left + 2 * pad, margin + bottom + 2 * pad),
        radius=pad,
        fill=(255, 255, 255, 225),
    )
    draw.text((margin + pad - left, margin + pad), LABEL, font=badge_font, fill=(20, 24, 40, 255))
    return layer


def image_png(*, model: str, prompt: str, width: int, height: int, index: int) -> bytes:
    """One picture: a gradient and translucent shapes in colours from a hash of the request, with the prompt and
    the demo label written on it."""
    rng = _rng("image", model, width, height, index, prompt)
    size = (width, height)
    picture = _gradient(size, _colour(rng, 0.35), _colour(rng, 0.7)).convert("RGBA")
    shapes = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    unit = min(width, height)
    for _ in range(rng.randint(6, 11)):
        fill = (*_colour(rng, rng.uniform(0.4, 0.8), 0.8), rng.randint(90, 190))
        x, y, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.06, 0.28) * unit
        kind = rng.choice(("circle", "square", "triangle"))
        if kind == "circle":
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
        elif kind == "square":
            draw.regular_polygon((x, y, radius), 4, rotation=rng.uniform(0, 90), fill=fill)
        else:
            draw.regular_polygon((x, y, radius), 3, rotation=rng.uniform(0, 120), fill=fill)
    picture.alpha_composite(shapes)
    picture.alpha_composite(_caption(size, prompt, scale=max(16, unit // 24)))
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def speech_wav(*, text: str, voice: str) -> bytes:
    """`text` spoken by espeak-ng as a WAV (22,050 Hz mono). The text goes on stdin: nothing in it is an option."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise ProviderError(
            "Speech is not installed on this server (espeak-ng is missing; staff install it with the project's "
            "scripts). Nothing was charged."
        )
    with tempfile.TemporaryDirectory(prefix="qolaba-speech-") as folder:
        path = Path(folder) / "speech.wav"
        command = [binary, "-v", ESPEAK_VOICES[voice], "-s", str(ESPEAK_WORDS_PER_MINUTE), "-b", "1", "-w", str(path)]
        try:
            done = subprocess.run(  # noqa: S603 - a fixed binary and fixed options; the text is data on stdin
                command, input=text.encode(errors="replace"), capture_output=True, timeout=SPEECH_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise ProviderTimeout("Speech took too long. Nothing was charged; please try a shorter text.") from error
        if done.returncode != 0 or not path.exists() or path.stat().st_size <= 44:
            raise ProviderError("Speech could not be made from this text. Nothing was charged.")
        return path.read_bytes()


def video_mp4(*, model: str, prompt: str, seconds: int, on_frame: Callable[[int, int], None]) -> bytes:
    """A `seconds` long H.264 MP4 (640x360, 24 fps, the index at the front so browsers start playing at once):
    shapes orbiting over a gradient, with the prompt and the demo label. `on_frame(done, total)` follows each frame
    and may raise to stop."""
    rng = _rng("video", model, seconds, prompt)
    width, height = VIDEO_SIZE
    background = _gradient(VIDEO_SIZE, _colour(rng, 0.25), _colour(rng, 0.6))
    caption = _caption(VIDEO_SIZE, prompt, scale=18)
    orbits = [
        (
            _colour(rng, rng.uniform(0.5, 0.8), 0.85),
            rng.uniform(0.2, 0.8) * width,  # centre
            rng.uniform(0.2, 0.6) * height,
            rng.uniform(40, 140),  # orbit radius
            rng.uniform(14, 40),  # shape radius
            rng.choice((-1, 1)) * rng.uniform(0.3, 1.0),  # turns a second
            rng.uniform(0, 2 * math.pi),  # phase
        )
        for _ in range(rng.randint(3, 5))
    ]
    total = seconds * VIDEO_FPS
    with tempfile.TemporaryDirectory(prefix="qolaba-video-") as folder:
        path = Path(folder) / "video.mp4"
        # faststart moves the index before the frames, which needs a file to rewrite (a BytesIO cannot).
        container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            # One encoder thread: x264's output depends on its thread count, which would follow the machine's cores.
            options = {"crf": "26", "preset": "veryfast", "threads": "1"}
            stream = container.add_stream("libx264", rate=VIDEO_FPS, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for number in range(total):
                frame = background.copy()
                draw = ImageDraw.Draw(frame)
                t = number / VIDEO_FPS
                for colour, cx, cy, orbit, radius, speed, phase in orbits:
                    angle = phase + 2 * math.pi * speed * t
                    x, y = cx + orbit * math.cos(angle), cy + orbit * 0.6 * math.sin(angle)
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
                draw.rectangle((0, height - 6, round(width * (number + 1) / total), height), fill=(255, 255, 255))
                frame = Image.alpha_composite(frame.convert("RGBA"), caption).convert("RGB")
                for packet in stream.encode(av.VideoFrame.from_image(frame)):
                    container.mux(packet)
                on_frame(number + 1, total)
            for packet in stream.encode():
                container.mux(packet)
        except BaseException:
            with contextlib.suppress(av.FFmpegError):
                container.close()  # a stop or a failure: the file is thrown away
            raise
        container.close()
        return path.read_bytes()


# --- music ---------------------------------------------------------------------------------------------------

SCALES = {"major pentatonic": (0, 2, 4, 7, 9), "minor pentatonic": (0, 3, 5, 7, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
PROGRESSIONS = ((0, 7, 9, 5), (0, 5, 7, 5), (9, 5, 0, 7), (0, 9, 5, 7))  # bars' bass roots, semitones over the key


def _frequency(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


@lru_cache(maxsize=256)  # a tune repeats its beats; bounded, as every prompt has its own tempo
def _beat(melody: int | None, bass: int, samples: int) -> bytes:
    """One beat: a plucked melody note (or a rest) over a soft bass note, 16-bit samples in the machine's order."""
    out = array.array("h")
    melody_hz, bass_hz = (_frequency(melody) if melody is not None else 0.0), _frequency(bass)
    attack = MUSIC_RATE // 200
    for n in range(samples):
        t = n / MUSIC_RATE
        envelope = min(1.0, n / attack) * math.exp(-4.0 * n / samples)
        value = 0.32 * envelope * math.sin(2 * math.pi * bass_hz * t)
        if melody is not None:
            tone = math.sin(2 * math.pi * melody_hz * t) + 0.3 * math.sin(4 * math.pi * melody_hz * t)
            value += 0.38 * envelope * tone
        out.append(round(max(-1.0, min(1.0, value)) * 32000))
    return out.tobytes()


def music_wav(*, model: str, prompt: str, seconds: int, on_beat: Callable[[int, int], None]) -> bytes:
    """A `seconds` long melody (22,050 Hz mono WAV): its key, scale, tempo, chords and motif come from a hash of
    the prompt. `on_beat(samples_done, samples_total)` follows each beat and may raise to stop."""
    rng = _rng("music", model, seconds, prompt)
    key = rng.randint(55, 64)
    scale = SCALES[rng.choice(sorted(SCALES))]
    progression = rng.choice(PROGRESSIONS)
    beat_samples = round(MUSIC_RATE * 60 / rng.randint(84, 132))
    degree, motif = rng.randrange(len(scale)), []
    for _ in range(8):  # a motif of eight beats: a walk on the scale, some rests
        degree = max(0, min(2 * len(scale) - 1, degree + rng.choice((-2, -1, 1, 1, 2))))
        motif.append(None if rng.random() < 0.15 else key + 12 * (degree // len(scale)) + scale[degree % len(scale)])
    total = seconds * MUSIC_RATE
    audio = bytearray()
    beat = 0
    while len(audio) < 2 * total:
        bar = beat // 4
        note = motif[beat % len(motif)]
        if note is not None and bar % 4 == 3:  # every fourth bar answers the motif a step higher
            note += scale[1]
        bass = key - 24 + progression[bar % len(progression)]
        audio += _beat(note, bass, beat_samples)[: 2 * total - len(audio)]
        beat += 1
        on_beat(len(audio) // 2, total)
    fade = min(total, MUSIC_RATE // 2)  # the last half second fades out rather than stopping on a click
    samples = array.array("h", bytes(audio))
    for n in range(fade):
        samples[total - fade + n] = round(samples[total - fade + n] * (fade - n) / fade)
    if sys.byteorder == "big":
        samples.byteswap()  # WAV samples are little-endian; `array` writes the machine's order
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MUSIC_RATE)
        wav.writeframes(samples.tobytes())
    return out.getvalue()
