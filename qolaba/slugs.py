from __future__ import annotations

from django.db import models
from django.utils.text import slugify


def unique_slug(text: str, *, queryset: models.QuerySet, fallback: str, max_length: int = 50) -> str:
    """A slug for `text` not yet taken in `queryset` (`acme`, `acme-2`, `acme-3`, ...)."""
    base = slugify(text)[:max_length].strip("-") or fallback
    taken = set(queryset.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
