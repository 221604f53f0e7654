"""The Overview shows the price list in force, so members see what a generation costs before it runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from usage.models import Price

pytestmark = pytest.mark.django_db


def test_the_overview_lists_active_prices_only(client, metered):
    Price.objects.filter(tool="music", model="suno-v4").update(is_active=False)
    client.force_login(metered.viewer)
    url = reverse(
        "workspaces:overview", kwargs={"org_slug": metered.organization.slug, "ws_slug": metered.workspace.slug}
    )
    html = client.get(url).content.decode()
    assert "<code>flux-pro</code>" in html
    assert "per image" not in html  # the unit has its own column
    assert "suno-v4" not in html
    row = html[html.index("<code>flux-pro</code>") :].split("</tr>")[0]
    assert ">12</td>" in row
