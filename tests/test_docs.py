"""The project's own docs are self-contained: every path they point to is inside the repository and exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `path/to/file.ext` or `path/` in backticks, and markdown links [text](target).
MENTIONED = re.compile(r"`((?:\.\./|[\w.-]+/)[\w./-]*)`|\]\(([^)#\s]+)\)")


def _paths(text: str) -> list[str]:
    found = []
    for code, link in MENTIONED.findall(text):
        target = code or link
        if target.startswith(("http://", "https://", "mailto:")) or "<" in target or "*" in target:
            continue
        found.append(target)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_docs_point_only_inside_the_repository(doc):
    text = doc.read_text()
    outside = [path for path in _paths(text) if path.startswith("../") or path.startswith("/")]
    assert outside == [], f"{doc.name} points outside the repository: {outside}"


@pytest.mark.parametrize("doc", [ROOT / "README.md"], ids=["README.md"])
def test_the_readme_links_to_files_that_exist(doc):
    missing = [path for path in _paths(doc.read_text()) if not (ROOT / path.split(":")[0]).exists()]
    assert missing == []


def test_the_product_is_described_in_the_project_itself():
    product = (ROOT / "docs" / "product.md").read_text()
    for section in ("## Roles", "## Credits", "Shared pool", "Workspace budget", "Primary Workspace"):
        assert section in product
