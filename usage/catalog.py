"""The price list at launch. Staff edit prices in the admin; this list only fills in missing (tool, model) rows."""

from __future__ import annotations

from qolaba.tools import Tool
from usage.models import Price

# (tool, model, unit, credits per unit, description)
DEFAULT_PRICES: list[tuple[str, str, str, int, str]] = [
    (Tool.CHAT, "gpt-4o-mini", "message", 1, "Fast everyday chat"),
    (Tool.CHAT, "gpt-4o", "message", 5, "OpenAI's flagship chat model"),
    (Tool.CHAT, "claude-sonnet", "message", 6, "Long documents and careful writing"),
    (Tool.CHAT, "gemini-flash", "message", 2, "Quick answers with a long context"),
    (Tool.IMAGE, "flux-schnell", "image", 4, "Quick drafts"),
    (Tool.IMAGE, "flux-pro", "image", 12, "High-quality images"),
    (Tool.IMAGE, "sdxl", "image", 6, "Stable Diffusion XL"),
    (Tool.IMAGE, "dall-e-3", "image", 16, "OpenAI images"),
    (Tool.VIDEO, "runway-gen3", "second", 25, "Video from text or an image"),
    (Tool.VIDEO, "kling-1.6", "second", 20, "Realistic motion"),
    (Tool.SPEECH, "elevenlabs-v2", "1k characters", 8, "Natural text to speech"),
    (Tool.SPEECH, "whisper", "minute", 3, "Speech to text"),
    (Tool.MUSIC, "suno-v4", "song", 30, "Songs with vocals"),
    (Tool.MUSIC, "stable-audio", "30 seconds", 10, "Instrumental loops and sound effects"),
]


def prices_ensure_defaults() -> int:
    """Create the launch prices that do not exist yet; existing rows stay as staff edited them. Returns how many."""
    created = 0
    for tool, model, unit, credits_per_unit, description in DEFAULT_PRICES:
        _, was_created = Price.objects.get_or_create(
            tool=tool,
            model=model,
            defaults={"unit": unit, "credits_per_unit": credits_per_unit, "description": description},
        )
        created += was_created
    return created
