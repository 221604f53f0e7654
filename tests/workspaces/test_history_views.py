"""The History tab: a workspace's generations, newest first, filtered and searched; an item's page, its file, and
its deletion. Nothing of one workspace is ever reachable from another, or by anyone who cannot open it."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from billing.models import LedgerTransaction
from orgs.models import AuditEvent, Membership, OrganizationRole
from qolaba.lifecycle import workspace_archive
from qolaba.tools import Tool
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from tests.workspaces.test_views import hx_gets_without_fallback
from usage.studio.models import ChatThread
from workspaces.models import HistoryItem, Workspace, WorkspaceRole
from workspaces.selectors import history_items
from workspaces.services import history_item_create, member_remove, workspace_member_remove

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")
HTMX_RESULTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "history-results"}


def png_bytes(width: int = 6, height: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (91, 75, 245)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_item(
    workspace: Workspace, author, *, tool: str = Tool.CHAT, at: datetime | None = None, **fields
) -> HistoryItem:
    fields.setdefault("model", {"chat": "gpt-4o", "image": "flux-pro", "video": "veo-3"}.get(tool, "model-x"))
    fields.setdefault("credits", 5)
    return history_item_create(workspace=workspace, author=author, tool=tool, created_at=at, **fields)


def make_image_item(workspace: Workspace, author, **fields) -> HistoryItem:
    return make_item(
        workspace,
        author,
        tool=Tool.IMAGE,
        media=ContentFile(png_bytes(), name="out.png"),
        media_content_type="image/png",
        **fields,
    )


def history_url(ws: Workspace, query: str = "") -> str:
    url = reverse("workspaces:history", kwargs={"org_slug": ws.organization.slug, "ws_slug": ws.slug})
    return f"{url}?{query}" if query else url


def item_url(ws: Workspace, item: HistoryItem, name: str = "history_item") -> str:
    kwargs = {"org_slug": ws.organization.slug, "ws_slug": ws.slug, "item_id": item.pk}
    return reverse(f"workspaces:{name}", kwargs=kwargs)


def listed(response) -> list[int]:
    return [item.pk for item in response.context["page"].object_list]


@pytest.fixture
def world():
    """Studio (the workspace under test) and Other in one org, the people around them, and a foreign org."""
    org = make_organization(name="Northwind")
    studio = make_workspace(org, name="Studio")
    other = make_workspace(org, name="Other")
    people = {
        "owner": org.created_by,
        "org_admin": make_member(org, role=OrganizationRole.ADMIN).user,
        "ws_admin": make_member(org, workspaces={studio: WorkspaceRole.ADMIN}).user,
        "author": make_member(
            org, user=UserFactory(email="ada@northwind.test"), workspaces={studio: WorkspaceRole.MEMBER}
        ).user,
        "colleague": make_member(
            org, user=UserFactory(email="bo@northwind.test"), workspaces={studio: WorkspaceRole.MEMBER}
        ).user,
        "viewer": make_member(org, workspaces={studio: WorkspaceRole.VIEWER}).user,
        "other_member": make_member(org, workspaces={other: WorkspaceRole.MEMBER}).user,
        "other_viewer": make_member(org, workspaces={other: WorkspaceRole.VIEWER}).user,
        "outsider": make_organization(name="Bluepeak").created_by,
    }
    return {"org": org, "studio": studio, "other": other, **people}


@pytest.fixture
def items(world):
    """Five items of Studio over five days (UTC noon), by two people, of four tools; one in Other."""
    studio, ada, bo = world["studio"], world["author"], world["colleague"]
    day = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    made = {
        "chat_ada": make_item(studio, ada, at=day, prompt="Write a haiku about the harbour lights"),
        "image_ada": make_image_item(studio, ada, at=day + timedelta(days=1), prompt="A red lighthouse at dusk"),
        "chat_bo": make_item(
            studio, bo, at=day + timedelta(days=2), prompt="Summarise the brief", output_text="Line one\nLine two"
        ),
        "video_bo": make_item(studio, bo, tool=Tool.VIDEO, at=day + timedelta(days=3), prompt="Drone shot of cliffs"),
        "speech_ada": make_item(studio, ada, tool=Tool.SPEECH, at=day + timedelta(days=4), prompt="Read the intro"),
        "in_other": make_item(
            world["other"], world["other_member"], at=day, prompt="Other workspace secret lighthouse"
        ),
    }
    return made


# --- list: order, filters, search, pagination ------------------------------------------------------------


def test_history_lists_the_workspace_newest_first(world, items):
    response = logged_in(world["author"]).get(history_url(world["studio"]))
    assert response.status_code == 200
    expected = ["speech_ada", "video_bo", "chat_bo", "image_ada", "chat_ada"]
    assert listed(response) == [items[name].pk for name in expected]
    html = response.content.decode()
    assert "Other workspace secret" not in html
    assert "Drone shot of cliffs" in html
    assert 'class="badge tool-badge tool-video"' in html
    assert "veo-3" in html


def test_history_row_shows_a_thumbnail_for_images_only(world, items):
    html = logged_in(world["author"]).get(history_url(world["studio"])).content.decode()
    assert html.count('class="history-thumb"') == 1
    assert f'src="{item_url(world["studio"], items["image_ada"], "history_media")}"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tool=chat", ["chat_bo", "chat_ada"]),
        ("tool=image", ["image_ada"]),
        ("tool=music", []),
        ("member={bo}", ["video_bo", "chat_bo"]),
        ("date_from=2025-03-12", ["speech_ada", "video_bo", "chat_bo"]),
        ("date_to=2025-03-11", ["image_ada", "chat_ada"]),
        ("date_from=2025-03-11&date_to=2025-03-12", ["chat_bo", "image_ada"]),
        ("date_from=2025-03-11&date_to=2025-03-11", ["image_ada"]),
        ("tool=chat&member={ada}", ["chat_ada"]),
        ("member={ada}&date_from=2025-03-11", ["speech_ada", "image_ada"]),
        ("tool=chat&member={bo}&date_to=2025-03-12&q=brief", ["chat_bo"]),
        ("tool=video&member={ada}", []),
    ],
)
def test_history_filters(world, items, query, expected):
    query = query.format(ada=world["author"].pk, bo=world["colleague"].pk)
    response = logged_in(world["viewer"]).get(history_url(world["studio"], query))
    assert response.status_code == 200
    assert not response.context["form"].errors
    assert listed(response) == [items[name].pk for name in expected]


def test_history_dates_are_days_in_the_organizations_time_zone(world):
    world["org"].timezone = "Asia/Tokyo"  # UTC+9
    world["org"].save(update_fields=["timezone"])
    late = make_item(world["studio"], world["author"], at=datetime(2025, 3, 10, 16, 0, tzinfo=UTC))  # 11 Mar in Tokyo
    early = make_item(world["studio"], world["author"], at=datetime(2025, 3, 10, 14, 0, tzinfo=UTC))  # 10 Mar 23:00
    client = logged_in(world["author"])
    assert listed(client.get(history_url(world["studio"], "date_from=2025-03-11"))) == [late.pk]
    assert listed(client.get(history_url(world["studio"], "date_to=2025-03-10"))) == [early.pk]
    html = client.get(history_url(world["studio"])).content.decode()
    assert "11 Mar 2025" in html  # shown in Tokyo time
    assert "Asia/Tokyo" in html


def test_member_filter_lists_the_authors_of_this_workspace_only(world, items):
    form = logged_in(world["author"]).get(history_url(world["studio"])).context["form"]
    choices = dict(form.fields["member"].choices)
    assert choices == {
        "": "All members",
        str(world["author"].pk): world["author"].display_name,  # names, as the table shows them
        str(world["colleague"].pk): world["colleague"].display_name,
    }


def test_member_filter_tells_two_people_of_the_same_name_apart_by_email(world, items):
    world["colleague"].name = world["author"].name
    world["colleague"].save(update_fields=["name"])
    form = logged_in(world["author"]).get(history_url(world["studio"])).context["form"]
    choices = dict(form.fields["member"].choices)
    assert choices[str(world["author"].pk)] == f"{world['author'].name} (ada@northwind.test)"
    assert choices[str(world["colleague"].pk)] == f"{world['author'].name} (bo@northwind.test)"


def test_the_list_shows_the_credits_total_of_what_is_filtered(world, items):
    studio = world["studio"]
    for credits, at in ((7, datetime(2025, 3, 20, 9, 0, tzinfo=UTC)), (11, datetime(2025, 3, 21, 9, 0, tzinfo=UTC))):
        make_item(studio, world["author"], at=at, credits=credits, prompt="extra")
    for _ in range(30):  # more than one page: the total covers every page
        make_item(studio, world["colleague"], tool=Tool.MUSIC, at=datetime(2025, 2, 1, 9, 0, tzinfo=UTC), credits=3)
    client = logged_in(world["viewer"])
    everything = client.get(history_url(studio))
    assert everything.context["credits_total"] == 5 * 5 + 7 + 11 + 30 * 3
    assert "In all: <strong>37 items</strong>, <strong>133 credits</strong>" in everything.content.decode()
    by_ada = client.get(history_url(studio, f"member={world['author'].pk}&date_from=2025-03-11"))
    assert by_ada.context["credits_total"] == 5 + 5 + 7 + 11  # image, speech and the two extra
    assert "Matching these filters: <strong>4 items</strong>, <strong>28 credits</strong>" in by_ada.content.decode()
    music = client.get(history_url(studio, "tool=music"), **HTMX_RESULTS)
    assert "<strong>90 credits</strong>" in music.content.decode()
    nothing = client.get(history_url(studio, "q=zebra"))
    assert nothing.context["credits_total"] == 0
    assert "history-total" not in nothing.content.decode()


def test_a_member_of_another_workspace_is_not_a_valid_member_filter(world, items):
    response = logged_in(world["author"]).get(history_url(world["studio"], f"member={world['other_member'].pk}"))
    assert response.status_code == 200
    assert "member" in response.context["form"].errors
    assert len(listed(response)) == 5  # the filter is not applied, never widened to another workspace
    assert "Other workspace secret" not in response.content.decode()


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("lighthouse", ["image_ada"]),
        ("LIGHTHOUSE dusk", ["image_ada"]),
        ("dusk lighthouse", ["image_ada"]),  # words in any order
        ('"red lighthouse"', ["image_ada"]),  # a phrase
        ('"lighthouse red"', []),
        ("two", ["chat_bo"]),  # the output is searched too
        ("harbour -haiku", []),  # an excluded word
        ("the", ["speech_ada", "chat_bo", "chat_ada"]),
        ("nothing-like-this", []),
        ("   ", ["speech_ada", "video_bo", "chat_bo", "image_ada", "chat_ada"]),
        ("'); DROP TABLE workspaces_historyitem; --", []),
    ],
)
def test_history_search_is_full_text(world, items, search, expected):
    response = logged_in(world["author"]).get(history_url(world["studio"]), {"q": search})
    assert response.status_code == 200
    assert listed(response) == [items[name].pk for name in expected]


def test_history_search_uses_the_indexed_expression(world, items):
    client = logged_in(world["author"])
    with CaptureQueriesContext(connection) as captured:
        response = client.get(history_url(world["studio"]), {"q": "lighthouse"})
    assert listed(response) == [items["image_ada"].pk]
    searches = [q["sql"] for q in captured.captured_queries if "to_tsvector('simple'" in q["sql"]]
    assert len(searches) == 2  # the count (with the credits total) and the page
    assert all('"workspaces_historyitem"."deleted_at" IS NULL' in sql for sql in searches)


def test_the_planner_uses_the_full_text_index(world, items):
    """The selector's expression is the one of the GIN index `history_fulltext` (the planner uses an expression
    index only for the same expression). With a realistic table (thousands of items, statistics gathered) the
    History query finds a rare word through that index instead of reading the workspace's items one by one."""
    studio = world["studio"]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO workspaces_historyitem (organization_id, workspace_id, author_id, tool, model, prompt, "
            "output_text, metadata, media, media_content_type, credits, created_at) "
            "SELECT %s, %s, %s, 'chat', 'gpt-4o', 'filler prompt ' || g, 'filler output ' || g, '{}', '', '', 1, "
            "now() - g * interval '1 minute' FROM generate_series(1, 5000) AS g",
            [studio.organization_id, studio.pk, world["author"].pk],
        )
        cursor.execute("ANALYZE workspaces_historyitem")
        queryset = history_items(workspace=studio, search="lighthouse")
        assert list(queryset) == [items["image_ada"]]
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on history_fulltext" in plan, plan


def test_pagination_keeps_the_filters(world):
    studio, ada = world["studio"], world["author"]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    made = [
        make_item(studio, ada, tool=Tool.IMAGE, at=start + timedelta(hours=i), prompt=f"shot {i}") for i in range(30)
    ]
    make_item(studio, ada, tool=Tool.CHAT, at=start + timedelta(days=5))
    client = logged_in(ada)
    first = client.get(history_url(studio, "tool=image&q=shot"))
    page = first.context["page"]
    assert (page.number, page.paginator.num_pages, page.paginator.count) == (1, 2, 30)
    assert listed(first) == [item.pk for item in reversed(made)][:25]
    html = first.content.decode()
    assert 'href="?q=shot&amp;tool=image&amp;page=2"' in html
    assert 'hx-get="?q=shot&amp;tool=image&amp;page=2"' in html
    second = client.get(history_url(studio, "q=shot&tool=image&page=2"))
    assert listed(second) == [item.pk for item in reversed(made)][25:]
    assert 'href="?q=shot&amp;tool=image&amp;page=1"' in second.content.decode()
    # An out-of-range or malformed page number shows the last or first page, never an error.
    assert client.get(history_url(studio, "tool=image&page=99")).context["page"].number == 2
    assert client.get(history_url(studio, "tool=image&page=abc")).context["page"].number == 1


def test_htmx_request_renders_only_the_results(world, items):
    response = logged_in(world["author"]).get(history_url(world["studio"], "tool=chat"), **HTMX_RESULTS)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<div id="history-results"')
    assert "<html" not in html
    assert '<aside class="sidebar"' not in html
    assert 'name="q"' not in html  # the filter form stays on the page
    assert "Summarise the brief" in html
    assert "Drone shot" not in html
    assert "HX-Request" in response["Vary"]
    # htmx restoring a page it no longer has in its history cache gets the whole page.
    restore = logged_in(world["author"]).get(
        history_url(world["studio"], "tool=chat"), HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX_RESULTS
    )
    assert "<html" in restore.content.decode()


def test_filter_form_works_without_and_with_javascript(world, items):
    html = logged_in(world["author"]).get(history_url(world["studio"])).content.decode()
    form = html.split('<form class="toolbar history-filters"')[1].split(">")[0]
    url = history_url(world["studio"])
    assert 'method="get"' in form
    assert f'action="{url}"' in form
    assert f'hx-get="{url}"' in form
    assert 'hx-target="#history-results"' in form
    assert 'hx-push-url="true"' in form
    missing, found = hx_gets_without_fallback(html)
    assert found >= 3
    assert missing == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("date_from=2025-13-45", "date_from"),
        ("date_to=yesterday", "date_to"),
        ("date_from=2025-03-12&date_to=2025-03-10", "date_to"),
        ("date_to=99999-01-01", "date_to"),
        ("date_from=0001-01-01", "date_from"),
        ("tool=hologram", "tool"),
        ("member=abc", "member"),
    ],
)
def test_bad_filters_are_form_errors_not_server_errors(world, items, query, field):
    client = logged_in(world["author"])
    response = client.get(history_url(world["studio"], query))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert "Some filters were not understood" in response.content.decode()
    assert client.get(history_url(world["studio"], query), **HTMX_RESULTS).status_code == 200


def test_empty_states(world, items):
    client = logged_in(world["owner"])
    empty_ws = make_workspace(world["org"], name="Empty")
    assert "Nothing here yet." in client.get(history_url(empty_ws)).content.decode()
    html = client.get(history_url(world["studio"], "q=zebra")).content.decode()
    assert "Nothing in this workspace's history matches these filters." in html


def test_history_is_in_the_navigation_and_active_on_list_and_detail(world, items):
    client = logged_in(world["viewer"])
    url = history_url(world["studio"])
    for page in (url, item_url(world["studio"], items["chat_bo"])):
        nav = {item["label"]: item for item in client.get(page).context["nav_items"]}
        labels = list(nav)
        assert labels[labels.index("Overview") + 1 : labels.index("Overview") + 3] == ["Studio", "History"]
        assert nav["History"]["url"] == url
        assert nav["History"]["active"] is True
        assert nav["Overview"]["active"] is False
    overview = client.get(f"/o/{world['org'].slug}/w/{world['studio'].slug}/")
    nav = {item["label"]: item for item in overview.context["nav_items"]}
    assert (nav["Overview"]["active"], nav["History"]["active"]) == (True, False)


# --- detail and media ---------------------------------------------------------------------------------------


def test_detail_shows_the_item(world, items):
    item = make_item(
        world["studio"],
        world["author"],
        prompt="Say <b>hi</b>\nand bye",
        output_text="<script>alert(1)</script>\nSecond line",
        metadata={"temperature": 0.7, "size": "1024x1024"},
        credits=1234,
    )
    response = logged_in(world["viewer"]).get(item_url(world["studio"], item))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Say &lt;b&gt;hi&lt;/b&gt;\nand bye" in html  # escaped, line breaks kept (white-space: pre-wrap)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\nSecond line" in html
    assert "<script>alert(1)" not in html
    # The settings as a readable list, not raw JSON.
    assert "<div><dt>Size</dt><dd>1024x1024</dd></div><div><dt>Temperature</dt><dd>0.7</dd></div>" in html
    assert "&quot;temperature&quot;" not in html
    assert "1,234" in html
    assert "ada@northwind.test" in html
    assert "gpt-4o" in html


def test_detail_of_a_studio_item_links_its_thread_instead_of_listing_internal_ids(world):
    thread = ChatThread.objects.create(
        organization=world["org"], workspace=world["studio"], author=world["author"], title="Brief"
    )
    item = make_item(
        world["studio"],
        world["author"],
        metadata={"studio": "chat", "thread_id": thread.pk, "turn_id": 7, "prompt_tokens": 12},
    )
    html = logged_in(world["author"]).get(item_url(world["studio"], item)).content.decode()
    assert "Open the chat thread in the Studio" in html
    assert "<dt>Prompt tokens</dt><dd>12</dd>" in html
    assert "Thread id" not in html
    assert "Turn id" not in html
    assert "<dt>Studio</dt>" not in html


def test_detail_shows_an_image_inline(world, items):
    item = items["image_ada"]
    html = logged_in(world["author"]).get(item_url(world["studio"], item)).content.decode()
    assert f'<img class="history-image" src="{item_url(world["studio"], item, "history_media")}"' in html


def test_detail_shows_readable_metadata_of_every_shape(world):
    item = make_item(
        world["studio"],
        world["author"],
        metadata={"duration_s": 60, "loop": True, "tags": ["calm", "piano"], "extra": {"a": 1}, "seed": None},
    )
    html = logged_in(world["author"]).get(item_url(world["studio"], item)).content.decode()
    for label, value in (
        ("Duration (seconds)", "60"),
        ("Loop", "Yes"),
        ("Tags", "calm, piano"),
        ("Extra", "{&quot;a&quot;: 1}"),
        ("Seed", "—"),
    ):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in html


@pytest.mark.parametrize(
    ("tool", "content_type", "player"),
    [(Tool.SPEECH, "audio/mpeg", "<audio"), (Tool.MUSIC, "audio/wav", "<audio"), (Tool.VIDEO, "video/mp4", "<video")],
)
def test_detail_plays_audio_and_video_and_offers_the_download(world, tool, content_type, player):
    item = make_item(
        world["studio"],
        world["author"],
        tool=tool,
        media=ContentFile(b"fake", name="out.bin"),
        media_content_type=content_type,
    )
    media_url = item_url(world["studio"], item, "history_media")
    html = logged_in(world["author"]).get(item_url(world["studio"], item)).content.decode()
    main = html.split('<main id="main"')[1]
    assert f'{player} class="history-{player[1:]}" controls preload="metadata" src="{media_url}"' in main
    assert "<img" not in main
    assert f'href="{media_url}?download=1" download' in main


def test_detail_offers_other_files_as_a_download_only(world):
    item = make_item(
        world["studio"],
        world["author"],
        media=ContentFile(b"PK..", name="out.zip"),
        media_content_type="application/zip",
    )
    main = logged_in(world["author"]).get(item_url(world["studio"], item)).content.decode().split('<main id="main"')[1]
    assert "<img" not in main
    assert "<audio" not in main
    assert "<video" not in main
    assert f'href="{item_url(world["studio"], item, "history_media")}?download=1" download' in main


def test_detail_shows_the_image_full_size_with_a_download(world, items):
    item = items["image_ada"]
    media_url = item_url(world["studio"], item, "history_media")
    html = logged_in(world["author"]).get(item_url(world["studio"], item)).content.decode()
    assert f'<a class="btn btn-ghost btn-sm" href="{media_url}">Open full size</a>' in html
    assert f'href="{media_url}?download=1" download' in html
    response = logged_in(world["author"]).get(f"{media_url}?download=1")
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == png_bytes()


def test_media_is_streamed_with_safe_headers(world, items):
    item = items["image_ada"]
    response = logged_in(world["viewer"]).get(item_url(world["studio"], item, "history_media"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    assert "private" in response["Cache-Control"]
    assert "public" not in response["Cache-Control"]
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/zip", b"PK.."), ("image/svg+xml", b"<svg onload='alert(1)'/>"), ("text/html", b"<h1>x</h1>")],
)
def test_media_that_is_not_a_plain_image_audio_or_video_is_an_attachment(world, content_type, body):
    item = make_item(
        world["studio"], world["author"], media=ContentFile(body, name="file.bin"), media_content_type=content_type
    )
    response = logged_in(world["author"]).get(item_url(world["studio"], item, "history_media"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == body
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/wav", "video/mp4", "video/webm"])
def test_audio_and_video_are_served_inline_to_play_under_the_same_headers(world, content_type):
    item = make_item(
        world["studio"], world["author"], media=ContentFile(b"fake", name="file.bin"), media_content_type=content_type
    )
    url = item_url(world["studio"], item, "history_media")
    response = logged_in(world["viewer"]).get(url)
    assert response["Content-Disposition"].startswith("inline")
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert logged_in(world["viewer"]).get(f"{url}?download=1")["Content-Disposition"].startswith("attachment")
    assert logged_in(world["other_member"]).get(url).status_code == 404


def test_media_of_an_item_without_a_file_is_404(world, items):
    assert (
        logged_in(world["author"]).get(item_url(world["studio"], items["chat_ada"], "history_media")).status_code == 404
    )


def test_media_whose_file_is_gone_is_404(world, items):
    item = items["image_ada"]
    item.media.storage.delete(item.media.name)
    assert logged_in(world["author"]).get(item_url(world["studio"], item, "history_media")).status_code == 404


def test_media_is_not_served_from_media_url(world, items, settings):
    item = items["image_ada"]
    assert item.media.name.startswith(f"history/{world['studio'].pk}/")
    client = logged_in(world["owner"])
    for prefix in ("/media/", f"/{settings.MEDIA_URL.strip('/')}/"):
        assert client.get(f"{prefix}{item.media.name}").status_code == 404


# --- deletion -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["author", "ws_admin", "org_admin", "owner"])
def test_author_and_workspace_admins_delete_an_item(world, items, persona):
    item = items["image_ada"]
    client = logged_in(world[persona])
    detail = client.get(item_url(world["studio"], item)).content.decode()
    delete_url = item_url(world["studio"], item, "history_item_delete")
    assert f'href="{delete_url}" hx-get="{delete_url}" hx-target="#dialog-body"' in detail
    confirm = client.get(delete_url)
    assert confirm.status_code == 200
    assert "Delete this history item?" in confirm.content.decode()
    dialog = client.get(delete_url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dialog-body")
    assert "<html" not in dialog.content.decode()
    assert HistoryItem.objects.get(pk=item.pk).deleted_at is None  # asking changes nothing

    response = client.post(delete_url, follow=True)
    assert response.redirect_chain == [(history_url(world["studio"]), 302)]
    assert "History item deleted" in response.content.decode()
    deleted = HistoryItem.objects.get(pk=item.pk)
    assert deleted.deleted_at is not None
    assert deleted.deleted_by == world[persona]
    assert item.pk not in listed(response)
    event = AuditEvent.objects.get(action="history_item.deleted", target_id=str(item.pk))
    assert (event.organization, event.actor) == (world["studio"].organization, world[persona])
    assert event.target_type == "workspaces.historyitem"
    assert event.before == {
        "workspace": world["studio"].name,
        "author": item.author.email,
        "tool": item.tool,
        "model": item.model,
        "created_at": item.created_at.isoformat(),
    }
    client.post(delete_url)  # deleting again changes nothing, and is not audited again
    assert AuditEvent.objects.filter(action="history_item.deleted").count() == 1


@pytest.mark.parametrize("persona", ["colleague", "viewer"])
def test_others_cannot_delete_and_do_not_see_the_button(world, items, persona):
    item = items["image_ada"]
    client = logged_in(world[persona])
    detail = client.get(item_url(world["studio"], item))
    assert detail.status_code == 200
    assert "history_item_delete" not in detail.content.decode()
    assert item_url(world["studio"], item, "history_item_delete") not in detail.content.decode()
    assert client.get(item_url(world["studio"], item, "history_item_delete")).status_code == 404
    assert client.post(item_url(world["studio"], item, "history_item_delete")).status_code == 404
    assert HistoryItem.objects.get(pk=item.pk).deleted_at is None
    assert not AuditEvent.objects.filter(action="history_item.deleted").exists()


def test_a_deleted_item_is_gone_from_list_detail_media_and_delete(world, items):
    item = items["image_ada"]
    client = logged_in(world["author"])
    assert client.post(item_url(world["studio"], item, "history_item_delete")).status_code == 302
    assert item.pk not in listed(client.get(history_url(world["studio"])))
    assert item.pk not in listed(client.get(history_url(world["studio"], "q=lighthouse")))
    for name in ("history_item", "history_media", "history_item_delete"):
        assert client.get(item_url(world["studio"], item, name)).status_code == 404, name
    assert logged_in(world["owner"]).get(item_url(world["studio"], item)).status_code == 404
    assert client.post(item_url(world["studio"], item, "history_item_delete")).status_code == 404


# --- isolation ----------------------------------------------------------------------------------------------

ITEM_VIEWS = ["history_item", "history_media", "history_item_delete"]


@pytest.mark.parametrize("name", ITEM_VIEWS)
def test_an_item_is_404_under_another_workspaces_url_even_for_the_owner(world, items, name):
    """The Owner can open both workspaces, but an item belongs to one: Studio's id under Other's URL is not found."""
    client = logged_in(world["owner"])
    assert client.get(item_url(world["studio"], items["image_ada"], name)).status_code == 200
    assert client.get(item_url(world["other"], items["image_ada"], name)).status_code == 404
    assert client.get(item_url(world["studio"], items["in_other"], name)).status_code == 404
    assert client.post(item_url(world["other"], items["image_ada"], "history_item_delete")).status_code == 404
    assert HistoryItem.objects.get(pk=items["image_ada"].pk).deleted_at is None


@pytest.mark.parametrize("persona", ["other_member", "other_viewer", "outsider"])
def test_people_who_cannot_open_the_workspace_get_404_everywhere(world, items, persona):
    client = logged_in(world[persona])
    studio, item = world["studio"], items["image_ada"]
    assert client.get(history_url(studio)).status_code == 404
    for name in ITEM_VIEWS:
        assert client.get(item_url(studio, item, name)).status_code == 404, name
    assert client.post(item_url(studio, item, "history_item_delete")).status_code == 404
    if persona != "outsider":
        # From their own workspace's URL, Studio's item does not exist either.
        for name in ITEM_VIEWS:
            assert client.get(item_url(world["other"], item, name)).status_code == 404, name
        html = client.get(history_url(world["other"])).content.decode()
        assert "Other workspace secret lighthouse" in html
        assert "A red lighthouse" not in html
    assert HistoryItem.objects.get(pk=item.pk).deleted_at is None


def test_another_organizations_owner_gets_404_even_under_their_own_org_slug(world, items):
    outsider = world["outsider"]
    own = Membership.objects.get(user=outsider).organization
    own_ws = Workspace.objects.get(organization=own, is_primary=True)
    client = logged_in(outsider)
    assert client.get(history_url(own_ws)).status_code == 200
    for name in ITEM_VIEWS:
        assert client.get(item_url(own_ws, items["image_ada"], name)).status_code == 404, name


def test_anonymous_visitors_are_sent_to_login(client, world, items):
    urls = [history_url(world["studio"])] + [item_url(world["studio"], items["image_ada"], name) for name in ITEM_VIEWS]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"/accounts/login/?next={url}"
    assert client.post(item_url(world["studio"], items["image_ada"], "history_item_delete")).status_code == 302
    assert HistoryItem.objects.get(pk=items["image_ada"].pk).deleted_at is None


def test_archived_workspace_history_is_404(world, items):
    workspace_archive(workspace=world["studio"], actor=world["owner"])
    client = logged_in(world["owner"])
    assert client.get(history_url(world["studio"])).status_code == 404
    assert client.get(item_url(world["studio"], items["image_ada"], "history_media")).status_code == 404


def test_a_removed_member_loses_access_but_their_items_stay_attributed(world, items):
    ada = world["author"]
    member_remove(membership=Membership.objects.get(user=ada, organization=world["org"]), actor=world["owner"])
    assert logged_in(ada).get(history_url(world["studio"])).status_code == 404
    assert logged_in(ada).get(item_url(world["studio"], items["image_ada"], "history_media")).status_code == 404

    response = logged_in(world["viewer"]).get(history_url(world["studio"]))
    assert len(listed(response)) == 5
    html = response.content.decode()
    assert html.count('<span class="muted">(removed)</span>') == 3  # Ada's three rows
    choices = dict(response.context["form"].fields["member"].choices)
    assert choices[str(ada.pk)] == f"{ada.display_name} (removed)"
    assert choices[str(world["colleague"].pk)] == world["colleague"].display_name
    by_ada = logged_in(world["viewer"]).get(history_url(world["studio"], f"member={ada.pk}"))
    assert listed(by_ada) == [items[n].pk for n in ("speech_ada", "image_ada", "chat_ada")]
    detail = logged_in(world["viewer"]).get(item_url(world["studio"], items["image_ada"])).content.decode()
    assert "ada@northwind.test" in detail
    assert "Removed" in detail


def test_a_member_removed_from_the_workspace_only_is_marked_removed_too(world, items):
    workspace_member_remove(workspace=world["studio"], user=world["colleague"], actor=world["owner"])
    response = logged_in(world["author"]).get(history_url(world["studio"]))
    choices = dict(response.context["form"].fields["member"].choices)
    assert choices[str(world["colleague"].pk)] == f"{world['colleague'].display_name} (removed)"
    assert choices[str(world["author"].pk)] == world["author"].display_name


def test_a_viewer_reads_history_but_cannot_delete(world, items):
    client = logged_in(world["viewer"])
    assert len(listed(client.get(history_url(world["studio"])))) == 5
    detail = client.get(item_url(world["studio"], items["chat_ada"]))
    assert detail.status_code == 200
    assert ">Delete<" not in detail.content.decode()
    assert detail.context["can_delete"] is False


# --- query counts -------------------------------------------------------------------------------------------


def _fill(world, count: int) -> Workspace:
    workspace = make_workspace(world["org"], name=f"Filled {count}")
    authors = [make_member(world["org"], workspaces={workspace: WorkspaceRole.MEMBER}).user for _ in range(3)]
    start = datetime(2025, 2, 1, tzinfo=UTC)
    for i in range(count):
        if i % 7 == 0:
            make_image_item(workspace, authors[i % 3], at=start + timedelta(minutes=i), prompt=f"image {i}")
        else:
            make_item(workspace, authors[i % 3], tool=[Tool.CHAT, Tool.VIDEO][i % 2], at=start + timedelta(minutes=i))
    member_remove(membership=Membership.objects.get(user=authors[2], organization=world["org"]), actor=world["owner"])
    return workspace


# Measured: session, user, workspace permissions, membership, organization permissions, the authors of the
# member filter, the count with the credits total, the page of items (authors joined) and the unread notifications:
# 9 for the list; 8 for the detail (its author's access instead of the filter, count and page) and for a list with
# no match.
HISTORY_QUERY_LIMIT = 9


def test_history_pages_make_a_constant_number_of_queries(world, django_assert_max_num_queries):
    small, large = _fill(world, 3), _fill(world, 60)
    client = logged_in(world["owner"])
    counts: dict[str, list[int]] = {}
    for workspace in (small, large):
        first = HistoryItem.objects.filter(workspace=workspace).earliest("created_at")
        pages = {
            "list": (history_url(workspace), {}),
            "list filtered": (history_url(workspace, "tool=chat&q=zebra&date_from=2025-01-01"), {}),
            "list htmx page": (history_url(workspace, "page=2"), HTMX_RESULTS),
            "detail": (item_url(workspace, first), {}),
        }
        for label, (url, headers) in pages.items():
            client.get(url, **headers)  # the session remembers the workspace once
            with django_assert_max_num_queries(HISTORY_QUERY_LIMIT, info=label) as captured:
                response = client.get(url, **headers)
            assert response.status_code == 200, label
            counts.setdefault(label, []).append(len(captured))
    print(f"history queries (3 items, 60 items): {counts}")  # noqa: T201
    for label, (small_count, large_count) in counts.items():
        assert small_count == large_count, (label, counts)


def test_the_delete_dialog_says_only_what_is_true(world, items):
    """It promised "usage reports" that did not exist; it says what deletion does to credits: nothing."""
    item = items["image_ada"]
    client = logged_in(world["author"])
    delete_url = item_url(world["studio"], item, "history_item_delete")
    body = client.get(delete_url).content.decode()
    assert "usage reports" not in body
    assert "The credits it cost are not refunded: they still count as spent." in body
    transactions = LedgerTransaction.objects.count()
    client.post(delete_url)
    assert HistoryItem.objects.get(pk=item.pk).deleted_at is not None
    assert LedgerTransaction.objects.count() == transactions  # no refund was written
