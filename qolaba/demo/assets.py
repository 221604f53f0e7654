"""What the demo gives each workspace besides its usage: a working API key, and small generated pictures and tunes
for the image and music items of its history; and each organization a working admin key (its usage report)."""

from __future__ import annotations

import io
import math
import random
import struct
import wave

from PIL import Image, ImageDraw

from orgs.models import AdminKey, Organization, User
from orgs.services import admin_key_create, admin_key_revoke
from workspaces.models import ApiKey, Workspace
from workspaces.services import api_key_create, api_key_revoke

DEMO_KEY_NAME = "Demo tool service"
DEMO_ADMIN_KEY_NAME = "Demo usage reader"


# --- API keys ------------------------------------------------------------------------------------------------


def api_keys_issue(*, organization: Organization, owner: User, rotate: bool) -> dict[int, str]:
    """Give every workspace a working "Demo tool service" key. Secrets are stored hashed, so an old one cannot be
    shown again: with `rotate`, the previous demo keys are revoked and new ones made (their secrets returned);
    without, only workspaces without a live demo key get one."""
    issued: dict[int, str] = {}
    for workspace in Workspace.objects.live().filter(organization=organization).select_related("organization"):
        live = list(ApiKey.objects.active().filter(workspace=workspace, name=DEMO_KEY_NAME))
        if live and not rotate:
            continue
        for api_key in live:
            api_key_revoke(api_key=api_key, actor=owner)
        _, issued[workspace.pk] = api_key_create(workspace=workspace, actor=owner, name=DEMO_KEY_NAME)
    return issued


def admin_key_issue(*, organization: Organization, owner: User, rotate: bool) -> str | None:
    """Give the organization a working "Demo usage reader" admin key, as `api_keys_issue` does for workspaces: with
    `rotate`, the previous one is revoked and a new one made (its secret returned); without, one is made only if
    there is none (None: the existing one is kept, its secret unknown)."""
    live = list(AdminKey.objects.active().filter(organization=organization, name=DEMO_ADMIN_KEY_NAME))
    if live and not rotate:
        return None
    for admin_key in live:
        admin_key_revoke(admin_key=admin_key, actor=owner)
    _, secret = admin_key_create(organization=organization, actor=owner, name=DEMO_ADMIN_KEY_NAME)
    return secret


# --- pictures --------------------------------------------------------------------------------------------------


def picture_size(aspect_ratio: str, long_side: int = 512) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in aspect_ratio.split(":"))
    except ValueError:
        return long_side, long_side
    if width <= 0 or height <= 0:
        return long_side, long_side
    if width >= height:
        return long_side, max(1, round(long_side * height / width))
    return max(1, round(long_side * width / height)), long_side


def demo_png(seed: int | str, width: int = 512, height: int = 512) -> bytes:
    """A small abstract picture (gradient and translucent shapes), the same for the same seed: a few KB."""
    rng = random.Random(seed)  # noqa: S311 (deterministic demo pictures, not secrets)

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    # The gradient is made small and stretched: smooth anyway, and much cheaper than rotating a large one.
    small = 128
    side = math.ceil(math.hypot(small, small))
    gradient = Image.linear_gradient("L").resize((side, side)).rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR)
    margin = (side - small) // 2
    gradient = gradient.crop((margin, margin, margin + small, margin + small))
    gradient = gradient.resize((width, height), Image.Resampling.BILINEAR)
    picture = Image.composite(
        Image.new("RGB", (width, height), colour()), Image.new("RGB", (width, height), colour()), gradient
    ).convert("RGBA")
    shapes = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    short = min(width, height)
    for _ in range(rng.randint(3, 6)):
        fill = (*colour(), rng.randint(90, 200))
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randint(short // 10, short // 3)
        kind = rng.choice(("ellipse", "rectangle", "triangle"))
        if kind == "ellipse":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif kind == "rectangle":
            draw.rounded_rectangle((x - r, y - r // 2, x + r, y + r // 2), radius=max(1, r // 5), fill=fill)
        else:
            draw.polygon([(rng.randrange(width), rng.randrange(height)) for _ in range(3)], fill=fill)
    flat = Image.alpha_composite(picture, shapes).convert("RGB").quantize(48, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    flat.save(out, "PNG", optimize=True)
    return out.getvalue()


# --- Tunes -------------------------------------------------------------------------------------------------------

_SAMPLE_RATE = 11_025
_PENTATONIC = (261.63, 293.66, 329.63, 392.00, 440.00, 523.25, 587.33, 659.25)  # C major pentatonic, two octaves


def demo_wav(seed: int | str, seconds: float = 4.0) -> bytes:
    """A short tune (soft sine notes of a pentatonic scale, mono WAV), the same for the same seed: about 90 KB."""
    rng = random.Random(seed)  # noqa: S311 (deterministic demo audio, not secrets)
    note_length = rng.choice((0.25, 0.3, 0.4))
    frames = bytearray()
    for index in range(int(seconds / note_length)):
        frequency = rng.choice(_PENTATONIC) * (0.5 if index % 8 == 0 else 1.0)
        count = int(_SAMPLE_RATE * note_length)
        for n in range(count):
            envelope = min(1.0, n / 200) * (1 - n / count) ** 1.5  # a soft attack and a decay: no clicks
            sample = math.sin(2 * math.pi * frequency * n / _SAMPLE_RATE) * envelope * 0.45
            frames += struct.pack("<h", int(sample * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(_SAMPLE_RATE)
        audio.writeframes(bytes(frames))
    return out.getvalue()
