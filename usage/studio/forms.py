"""The Studio's forms: a chat message (model + text), a thread's title, the thread search, a media tool's prompt and
options."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxLengthValidator

from usage.models import Price
from usage.studio.pricing import (
    DEFAULT_OPTIONS,
    IMAGE_COUNTS,
    IMAGE_SIZE_LABELS,
    MUSIC_SECONDS,
    VIDEO_SECONDS,
    VOICE_LABELS,
)
from usage.studio.providers.base import SPEECH_MAX_CHARS
from usage.studio.selectors import chat_prices
from usage.studio.services import MAX_PROMPT_CHARS, MEDIA_PROMPT_CHARS


class PriceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        demo = " (demo)" if obj.provider == "demo" else ""
        plural = "" if obj.credits_per_unit == 1 else "s"
        return f"{obj.model}{demo} · {obj.credits_per_unit} credit{plural} per 1k tokens"


class ChatMessageForm(forms.Form):
    price = PriceChoiceField(queryset=Price.objects.none(), to_field_name="model", label="Model", empty_label=None)
    prompt = forms.CharField(
        label="Message",
        max_length=MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask anything…"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["price"].queryset = chat_prices()  # type: ignore[attr-defined]


class ChatEstimateForm(ChatMessageForm):
    """The same fields, read leniently for the live estimate: an empty message is priced too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt"].required = False


class ThreadRenameForm(forms.Form):
    title = forms.CharField(max_length=120, label="Title")


class ThreadSearchForm(forms.Form):
    q = forms.CharField(max_length=120, required=False, label="Search threads")


class MediaPriceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        demo = " (demo)" if obj.provider == "demo" else ""
        return f"{obj.model}{demo} · {obj.credits_per_unit}/{obj.unit}"


PROMPT_LABELS = {
    "image": ("Describe the image", "A lighthouse at dawn, watercolour"),
    "video": ("Describe the video", "Waves rolling onto a beach, slow motion"),
    "speech": ("Text to speak", "Welcome to the spring launch. Here is what is new."),
    "music": ("Describe the music", "A calm piano loop for a product video"),
}


class MediaJobForm(forms.Form):
    """A media tool's prompt and options (the service validates them again: `studio_options_clean`)."""

    price = MediaPriceChoiceField(queryset=Price.objects.none(), to_field_name="model", label="Model", empty_label=None)
    prompt = forms.CharField(label="Prompt", widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, tool: str, prices: list[Price], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tool = tool
        self.fields["price"].queryset = Price.objects.filter(pk__in=[price.pk for price in prices]).order_by(  # type: ignore[attr-defined]
            "credits_per_unit", "model"
        )
        label, placeholder = PROMPT_LABELS[tool]
        prompt = self.fields["prompt"]
        limit = SPEECH_MAX_CHARS if tool == "speech" else MEDIA_PROMPT_CHARS
        prompt.label = label
        prompt.widget.attrs.update(placeholder=placeholder, maxlength=str(limit))
        prompt.validators.append(MaxLengthValidator(limit))
        defaults = DEFAULT_OPTIONS[tool]
        if tool == "image":
            self.fields["size"] = forms.TypedChoiceField(
                label="Size", choices=list(IMAGE_SIZE_LABELS.items()), initial=defaults["size"]
            )
            self.fields["count"] = forms.TypedChoiceField(
                label="Images", choices=[(n, str(n)) for n in IMAGE_COUNTS], coerce=int, initial=defaults["count"]
            )
        elif tool in ("video", "music"):
            seconds = VIDEO_SECONDS if tool == "video" else MUSIC_SECONDS
            self.fields["seconds"] = forms.TypedChoiceField(
                label="Length", choices=[(n, f"{n} seconds") for n in seconds], coerce=int, initial=defaults["seconds"]
            )
        else:
            self.fields["voice"] = forms.ChoiceField(
                label="Voice", choices=list(VOICE_LABELS.items()), initial=defaults["voice"]
            )

    @property
    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in ("price", "prompt")]

    def options(self) -> dict[str, Any]:
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name, DEFAULT_OPTIONS[self.tool].get(name)) for name in DEFAULT_OPTIONS[self.tool]}


class MediaEstimateForm(MediaJobForm):
    """The same fields, read leniently for the live estimate: an empty prompt is priced too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt"].required = False
