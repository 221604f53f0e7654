"""The Studio's forms: a chat message (model + text), a thread's title, the thread search."""

from __future__ import annotations

from typing import Any

from django import forms

from usage.models import Price
from usage.studio.selectors import chat_prices
from usage.studio.services import MAX_PROMPT_CHARS


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
