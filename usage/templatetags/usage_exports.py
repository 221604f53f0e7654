"""`{% usage_export_url query %}`: the CSV export URL of a Usage tab query (its parameters, urlencoded)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from usage.reports import UsageQuery

register = template.Library()


@register.simple_tag(takes_context=True)
def usage_export_url(context: dict[str, Any], query: UsageQuery) -> str:
    base = reverse("usage:usage_export_csv", kwargs={"org_slug": context["tenant"].organization.slug})
    params = urlencode(query.params(), doseq=True)
    return f"{base}?{params}" if params else base
