"""The offline demo provider: deterministic chat assembled from the prompt, streamed word by word."""

from __future__ import annotations

import pytest

from usage.studio.providers import ChatChunk, ChatUsage, DemoProvider, ProviderError


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


def test_the_demo_media_tools_are_refused_plainly_until_they_are_built():
    with pytest.raises(ProviderError, match="not available yet"):
        DemoProvider(delay=0).image(model="demo", prompt="x", size="512x512", count=1)
