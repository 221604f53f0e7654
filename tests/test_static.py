"""The app's own stylesheet parses: an unclosed block (easy to leave behind when two changes meet in a merge) would
silently swallow every rule after it."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings


def test_every_block_of_the_stylesheet_is_closed():
    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    depth = 0
    for number, line in enumerate(
        re.sub(r"/\*.*?\*/", lambda m: "\n" * m[0].count("\n"), css, flags=re.S).split("\n"), 1
    ):
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"a block closes that never opened, line {number}"
    assert depth == 0, "a block of static/css/app.css is never closed"
