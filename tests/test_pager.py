"""The pager under the Members, Audit and History tables (templates/includes/pager.html)."""

from __future__ import annotations

import re

from django.core.paginator import Paginator
from django.template.loader import render_to_string


def pager(page_number: int, count: int = 2500, **options: object) -> str:
    page = Paginator(range(count), 25).get_page(page_number)
    context = {"page": page, "target": "rows", "previous_label": "← Newer", "next_label": "Older →", **options}
    return re.sub(r"\s+", " ", render_to_string("includes/pager.html", context)).strip()


def test_links_keep_the_filters_and_replace_the_target():
    html = pager(2, querystring="q=shot&tool=image")
    for number, label in ((1, "← Newer"), (3, "Older →")):
        url = f"?q=shot&amp;tool=image&amp;page={number}"
        assert (
            f'<a class="btn btn-secondary btn-sm" href="{url}" hx-get="{url}" hx-target="#rows" hx-swap="outerHTML" '
            f'hx-push-url="true">{label}</a>'
        ) in html
    assert 'href="?page=1"' in pager(2, querystring="")  # no stray "&" without filters


def test_the_summary_counts_the_rows_when_told_what_they_are():
    assert '<span class="muted small">Page 1 of 100</span>' in pager(1)
    assert '<span class="muted small">Page 1 of 100 · 2,500 items</span>' in pager(1, noun="item")
    assert "· 1 item</span>" in pager(1, count=1, noun="item")


def test_fixed_places_keep_the_summary_in_the_middle_on_the_first_and_last_pages():
    assert pager(1).startswith('<nav class="pagination" aria-label="Pages"> <span class="muted small">')
    assert pager(1, fixed_places=True).startswith('<nav class="pagination" aria-label="Pages"> <span></span> <span')
    assert pager(100, fixed_places=True).endswith("</span> <span></span> </nav>")
