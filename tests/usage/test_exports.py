"""Usage exports: the CSV of a Usage tab filter (streamed, in the user's scope, in the organization's offset), and
the background job that prepares large ones (progress, idempotence, requester-only download, expiry)."""

from __future__ import annotations

import csv
import io
import itertools
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.http import StreamingHttpResponse
from django.template import Context, Template
from django.urls import reverse
from django.utils.timezone import now

from orgs.models import AuditAction, AuditEvent, Organization, OrganizationRole, User
from qolaba.lifecycle import organization_delete
from tests.factories import UserFactory, make_member, make_organization, make_workspace
from usage import exports
from usage.exports import EXPORT_HEADER, usage_export_create, usage_exports_expire
from usage.models import UsageEvent, UsageExport, UsageExportStatus, UsageStatus, usage_export_storage
from usage.reports import UsageQuery
from usage.tasks import usage_export_run
from workspaces.models import Workspace, WorkspaceRole

HEADER_LINE = "time,workspace,member,tool,model,units,credits,status,idempotency_key\r\n"
MARCH = {"range": "custom", "start": "2026-03-01", "end": "2026-03-31"}
_keys = itertools.count(1)


@pytest.fixture(autouse=True, scope="module")
def _empty_export_storage():
    """The export storage of the test settings starts empty, so a test can count the files a job wrote."""
    shutil.rmtree(Path(usage_export_storage().location), ignore_errors=True)


@dataclass
class World:
    org: Organization
    owner: User
    admin: User
    ws_admin: User  # admin of `alpha` only
    member: User  # member of `alpha`
    other: User  # member of `beta`
    viewer: User  # viewer of `beta`
    primary: Workspace
    alpha: Workspace
    beta: Workspace


def make_world(timezone: str) -> World:
    owner = UserFactory(email=f"owner-{next(_keys)}@example.com")
    org = make_organization(owner=owner, name=f"Export {timezone}", timezone=timezone)
    primary = Workspace.objects.get(organization=org, is_primary=True)
    alpha, beta = make_workspace(org, name="Alpha Studio"), make_workspace(org, name="Beta Lab")
    admin, ws_admin, member, other, viewer = (UserFactory() for _ in range(5))
    make_member(org, role=OrganizationRole.ADMIN, user=admin)
    make_member(org, user=ws_admin, workspaces={alpha: WorkspaceRole.ADMIN})
    make_member(org, user=member, workspaces={alpha: WorkspaceRole.MEMBER})
    make_member(org, user=other, workspaces={beta: WorkspaceRole.MEMBER})
    make_member(org, user=viewer, workspaces={beta: WorkspaceRole.VIEWER})
    return World(org, owner, admin, ws_admin, member, other, viewer, primary, alpha, beta)


def event(
    world: World,
    workspace: Workspace,
    user: User,
    at: datetime,
    *,
    tool: str = "image",
    model: str = "flux-pro",
    units: int = 1,
    credits: int = 8,
    status: str = UsageStatus.CAPTURED,
    key: str | None = None,
) -> UsageEvent:
    """A usage event as the metering services write it (the table has no foreign keys: ids are enough)."""
    return UsageEvent.objects.create(
        organization=world.org,
        workspace=workspace,
        user=user,
        tool=tool,
        model=model,
        units=units,
        credits=0 if status == UsageStatus.RELEASED else credits,
        status=status,
        idempotency_key=key or f"key-{next(_keys)}",
        ledger_transaction_id=1,
        created_at=at,
    )


def populate(world: World) -> None:
    """Events around the edges of March in both zones, in every workspace, by several members, in every status."""
    w = world
    event(w, w.alpha, w.member, datetime(2026, 3, 1, 3, 45, tzinfo=UTC), units=2, credits=16)  # 09:15 in Kolkata
    event(w, w.alpha, w.member, datetime(2026, 2, 28, 20, 0, tzinfo=UTC))  # 1 Mar 01:30 in Kolkata, Feb in UTC
    event(w, w.alpha, w.ws_admin, datetime(2026, 3, 31, 19, 0, tzinfo=UTC))  # 1 Apr 00:30 in Kolkata, Mar in UTC
    event(w, w.beta, w.other, datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tool="chat", model="gpt-4o", units=3)
    event(w, w.beta, w.other, datetime(2026, 3, 11, 12, 0, tzinfo=UTC), status=UsageStatus.HELD, credits=40)
    event(w, w.alpha, w.member, datetime(2026, 3, 12, 12, 0, tzinfo=UTC), status=UsageStatus.RELEASED)
    event(w, w.primary, w.owner, datetime(2026, 3, 15, 8, 30, tzinfo=UTC), tool="video", model="kling-1.6")
    event(w, w.primary, w.admin, datetime(2026, 4, 2, 8, 30, tzinfo=UTC))  # April everywhere
    event(w, w.primary, w.owner, datetime(2026, 2, 27, 8, 30, tzinfo=UTC))  # February everywhere


def expected_rows(world: World, *, start: date, end: date, where=lambda e: True) -> list[list[str]]:
    """The raw events of the local days [start, end], as the CSV must show them."""
    zone = ZoneInfo(world.org.timezone)
    emails = {u.pk: u.email for u in User.objects.all()}
    names = dict(Workspace.objects.values_list("pk", "name"))
    rows = []
    for e in UsageEvent.objects.filter(organization=world.org).order_by("created_at", "pk"):
        local = e.created_at.astimezone(zone)
        if start <= local.date() <= end and where(e):
            rows.append(
                [
                    local.isoformat(timespec="seconds"),
                    names[e.workspace_id],
                    emails[e.user_id],
                    e.tool,
                    e.model,
                    str(e.units),
                    str(e.credits),
                    e.status,
                    e.idempotency_key,
                ]
            )
    return rows


def export_url(world: World) -> str:
    return reverse("usage:usage_export_csv", kwargs={"org_slug": world.org.slug})


def download(client, world: World, params: dict | str) -> tuple[StreamingHttpResponse, str, list[list[str]]]:
    response = (
        client.get(export_url(world), params)
        if isinstance(params, dict)
        else client.get(f"{export_url(world)}?{params}")
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    return response, text, list(csv.reader(io.StringIO(text)))


@pytest.fixture
def kolkata(db) -> World:
    world = make_world("Asia/Kolkata")
    populate(world)
    return world


# --- the CSV ---------------------------------------------------------------------------------------------------


def test_the_header_line_is_exact(client, kolkata):
    client.force_login(kolkata.owner)
    _, text, rows = download(client, kolkata, MARCH)
    assert text.startswith(HEADER_LINE)
    assert tuple(rows[0]) == EXPORT_HEADER


@pytest.mark.parametrize("timezone", ["Asia/Kolkata", "UTC"])
def test_rows_are_the_raw_events_of_the_period_in_the_organizations_offset(client, db, timezone):
    world = make_world(timezone)
    populate(world)
    client.force_login(world.owner)
    _, _, rows = download(client, world, MARCH)
    expected = expected_rows(world, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert rows[1:] == expected
    times = [row[0] for row in rows[1:]]
    if timezone == "Asia/Kolkata":
        # Cut at Kolkata's midnights: 28 Feb 20:00 UTC is in, 31 Mar 19:00 UTC is out.
        assert times[:2] == ["2026-03-01T01:30:00+05:30", "2026-03-01T09:15:00+05:30"]
        assert len(expected) == 6
        assert all(t.endswith("+05:30") for t in times)
    else:
        assert times[0] == "2026-03-01T03:45:00+00:00"
        assert times[-1] == "2026-03-31T19:00:00+00:00"
        assert len(expected) == 6


def test_every_status_is_listed_and_a_released_event_shows_zero_credits(client, kolkata):
    client.force_login(kolkata.owner)
    _, _, rows = download(client, kolkata, MARCH)
    by_status = {row[7]: row for row in rows[1:]}
    assert set(by_status) == {"captured", "held", "released"}
    assert by_status["released"][6] == "0"
    assert by_status["held"][6] == "40"  # reserved, not charged yet
    # The captured rows add up to the credits the usage views count.
    captured = sum(int(row[6]) for row in rows[1:] if row[7] == "captured")
    assert captured == 16 + 8 + 8 + 8


def test_filters_of_the_usage_tab_apply(client, kolkata):
    client.force_login(kolkata.owner)
    _, _, rows = download(client, kolkata, {**MARCH, "workspace": str(kolkata.beta.pk), "tool": "chat"})
    assert rows[1:] == expected_rows(
        kolkata,
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
        where=lambda e: e.workspace_id == kolkata.beta.pk and e.tool == "chat",
    )
    assert len(rows) == 2


def test_the_response_streams_utf8_csv_named_after_the_org_and_period(client, kolkata):
    client.force_login(kolkata.owner)
    response, _, _ = download(client, kolkata, MARCH)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{kolkata.org.slug}-usage-20260301-20260331.csv"'
    assert "no-store" in response["Cache-Control"]


def test_names_are_utf8_and_cells_that_look_like_formulas_are_escaped(client, kolkata):
    kolkata.alpha.name = '=HYPERLINK("http://evil.test","Ünïcode ✓")'
    kolkata.alpha.save(update_fields=["name"])
    event(kolkata, kolkata.alpha, kolkata.member, datetime(2026, 3, 20, tzinfo=UTC), model="+cmd", key="@SUM(1+1)")
    event(kolkata, kolkata.alpha, kolkata.member, datetime(2026, 3, 21, tzinfo=UTC), model="-2", key="\tx")
    client.force_login(kolkata.owner)
    _, _text, rows = download(client, kolkata, MARCH)
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert '\'=HYPERLINK("http://evil.test","Ünïcode ✓")' in cells
    assert {"'+cmd", "'@SUM(1+1)", "'-2", "'\tx"} <= set(cells)


# --- who sees what ---------------------------------------------------------------------------------------------


def test_each_role_exports_only_its_scope(client, kolkata):
    w = kolkata
    march = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
    scopes = {
        w.owner: lambda e: True,
        w.admin: lambda e: True,
        w.ws_admin: lambda e: e.workspace_id == w.alpha.pk,  # everyone's usage in their workspace, nothing else
        w.member: lambda e: e.user_id == w.member.pk,  # their own only
        w.other: lambda e: e.user_id == w.other.pk,
        w.viewer: lambda e: e.user_id == w.viewer.pk,  # no usage of their own: the header alone
    }
    for user, where in scopes.items():
        client.force_login(user)
        _, _, rows = download(client, w, MARCH)
        assert rows[1:] == expected_rows(w, **march, where=where), user.email
    client.force_login(w.member)
    _, _, rows = download(client, w, {**MARCH, "member": str(w.other.pk)})
    assert rows == [list(EXPORT_HEADER)]  # asking for another member's usage gives nothing
    _, _, rows = download(client, w, {**MARCH, "workspace": str(w.beta.pk)})
    assert rows == [list(EXPORT_HEADER)]
    client.force_login(w.ws_admin)
    _, _, rows = download(client, w, {**MARCH, "workspace": str(w.beta.pk)})
    assert rows == [list(EXPORT_HEADER)]  # a workspace they do not administer


def test_outsiders_get_404_and_anonymous_users_the_login_page(client, kolkata):
    client.force_login(UserFactory())
    assert client.get(export_url(kolkata), MARCH).status_code == 404
    client.logout()
    response = client.get(export_url(kolkata), MARCH)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "params",
    [
        "range=custom&start=2026-13-01&end=nope",
        "range=yesterday",
        "range=custom&start=2026-03-31&end=2026-03-01",
        "range=custom&start=2020-01-01&end=2026-03-01",
        "workspace=abc&member=99999999999999999999&tool=nope&granularity=minute",
        "workspace=%00&model=" + "x" * 500,
    ],
)
def test_bad_parameters_fall_back_like_the_usage_tab(client, kolkata, params):
    client.force_login(kolkata.owner)
    response, text, rows = download(client, kolkata, params)
    today = now().astimezone(ZoneInfo("Asia/Kolkata")).date()
    assert text.startswith(HEADER_LINE)
    assert f"-usage-{today.replace(day=1):%Y%m%d}-{today:%Y%m%d}.csv" in response["Content-Disposition"]
    assert len(rows) >= 1


def test_the_sync_export_costs_the_same_queries_at_two_data_sizes(client, kolkata, django_assert_num_queries):
    client.force_login(kolkata.owner)
    client.get(export_url(kolkata), MARCH)  # warm the session

    def count() -> int:
        with django_assert_num_queries(9) as captured:
            response = client.get(export_url(kolkata), MARCH)
            rows = sum(1 for _ in response.streaming_content) - 1
        return rows, len(captured)

    small = count()
    for day in range(1, 29):
        for user, workspace in ((kolkata.member, kolkata.alpha), (kolkata.other, kolkata.beta)):
            event(kolkata, workspace, user, datetime(2026, 3, day, 6, tzinfo=UTC))
    large = count()
    assert large[0] == small[0] + 56
    assert large[1] == small[1]


# --- large exports: the job --------------------------------------------------------------------------------------


def test_over_the_threshold_the_export_offers_a_background_job(client, kolkata, settings):
    settings.USAGE_EXPORT_SYNC_MAX_ROWS = 3
    client.force_login(kolkata.owner)
    response = client.get(export_url(kolkata), MARCH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "This export is large" in page
    assert f'action="{reverse("usage:usage_export_create", kwargs={"org_slug": kolkata.org.slug})}"' in page
    assert '<input type="hidden" name="start" value="2026-03-01">' in page
    assert not UsageExport.objects.exists()  # a GET asks, it creates nothing
    settings.USAGE_EXPORT_SYNC_MAX_ROWS = 6  # exactly as many rows as March has: still streamed
    assert isinstance(client.get(export_url(kolkata), MARCH), StreamingHttpResponse)


def test_requesting_a_job_is_audited_and_with_eager_tasks_it_completes(
    client, kolkata, django_capture_on_commit_callbacks
):
    client.force_login(kolkata.member)
    create = reverse("usage:usage_export_create", kwargs={"org_slug": kolkata.org.slug})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(create, MARCH)
    assert len(callbacks) == 1
    export = UsageExport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "usage:usage_export", kwargs={"org_slug": kolkata.org.slug, "export_id": export.pk}
    )
    assert (export.requester, export.status, export.params) == (
        kolkata.member,
        UsageExportStatus.DONE,
        MARCH | {"granularity": "day"},
    )
    audit = AuditEvent.objects.get(action=AuditAction.USAGE_EXPORT_REQUESTED)
    assert (audit.actor, audit.target_id, audit.organization) == (kolkata.member, str(export.pk), kolkata.org)
    file = client.get(
        reverse("usage:usage_export_download", kwargs={"org_slug": kolkata.org.slug, "export_id": export.pk})
    )
    body = b"".join(file.streaming_content).decode()
    assert list(csv.reader(io.StringIO(body)))[1:] == expected_rows(
        kolkata, start=date(2026, 3, 1), end=date(2026, 3, 31), where=lambda e: e.user_id == kolkata.member.pk
    )
    assert file["Content-Disposition"] == f'attachment; filename="{kolkata.org.slug}-usage-20260301-20260331.csv"'


def _request(world: World, user: User, query: UsageQuery | None = None) -> UsageExport:
    """A job as the service creates it, without running it (the test plays the worker)."""
    query = query or UsageQuery(start=date(2026, 3, 1), end=date(2026, 3, 31), range="custom")
    return usage_export_create(organization=world.org, requester=user, query=query)


def _files(export: UsageExport) -> list[Path]:
    folder = Path(usage_export_storage().location) / str(export.organization_id)
    return sorted(folder.glob(f"{export.pk}-*.csv"))


def test_the_task_is_idempotent_a_redelivery_writes_no_second_file(kolkata):
    export = _request(kolkata, kolkata.owner)
    assert export.status == UsageExportStatus.QUEUED
    assert usage_export_run(export.pk) == "done"
    export.refresh_from_db()
    first = (export.file.name, export.rows_done, export.rows_total, export.finished_at, export.attempt)
    assert first[1:3] == (6, 6)
    assert usage_export_run(export.pk) == "done"  # redelivered
    export.refresh_from_db()
    assert (export.file.name, export.rows_done, export.rows_total, export.finished_at, export.attempt) == first
    assert [path.name for path in _files(export)] == [Path(export.file.name).name]
    lines = export.file.open("rb").read().decode().splitlines()
    assert lines[0] == HEADER_LINE.strip()
    assert len(lines) == 7


def test_a_run_that_died_midway_is_started_again_by_the_redelivery(kolkata):
    export = _request(kolkata, kolkata.owner)
    # The first worker claimed it, counted and wrote some progress, then was killed (nothing saved to storage).
    UsageExport.objects.filter(pk=export.pk).update(
        status=UsageExportStatus.RUNNING, attempt=1, rows_total=7, rows_done=4
    )
    assert usage_export_run(export.pk) == "done"
    export.refresh_from_db()
    assert (export.attempt, export.rows_done, export.rows_total) == (2, 6, 6)
    assert len(_files(export)) == 1


def test_progress_is_reported_as_rows_are_written(kolkata, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 2)
    reported: list[dict] = []
    real_report = exports._report

    def spy(export, attempt, **fields):
        reported.append(fields)
        return real_report(export, attempt, **fields)

    monkeypatch.setattr(exports, "_report", spy)
    export = _request(kolkata, kolkata.owner)
    usage_export_run(export.pk)
    assert reported == [{"rows_total": 6}, {"rows_done": 2}, {"rows_done": 4}, {"rows_done": 6}]
    export.refresh_from_db()
    assert (export.rows_done, export.rows_total, export.percent) == (6, 6, 100)


def test_a_run_overtaken_by_a_later_one_stops_and_saves_nothing(kolkata, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 2)
    export = _request(kolkata, kolkata.owner)
    real_report = exports._report

    def overtaken(export_row, attempt, **fields):
        if fields.get("rows_done") == 2:  # a duplicate delivery claims the export now
            UsageExport.objects.filter(pk=export_row.pk).update(attempt=attempt + 1)
        return real_report(export_row, attempt, **fields)

    monkeypatch.setattr(exports, "_report", overtaken)
    usage_export_run(export.pk)
    export.refresh_from_db()
    assert (export.status, export.file.name, export.rows_done) == (UsageExportStatus.RUNNING, "", 0)
    assert _files(export) == []


def _detail(world: World, export: UsageExport) -> str:
    return reverse("usage:usage_export", kwargs={"org_slug": world.org.slug, "export_id": export.pk})


def _download_url(world: World, export: UsageExport) -> str:
    return reverse("usage:usage_export_download", kwargs={"org_slug": world.org.slug, "export_id": export.pk})


def test_the_progress_page_shows_a_bar_and_polls_until_done(client, kolkata):
    export = _request(kolkata, kolkata.member)
    client.force_login(kolkata.member)
    page = client.get(_detail(kolkata, export)).content.decode()
    assert "Waiting to start" in page
    assert "<progress" in page
    assert 'hx-trigger="every 1s"' in page
    assert '<meta http-equiv="refresh" content="2">' in page  # without JavaScript
    UsageExport.objects.filter(pk=export.pk).update(status=UsageExportStatus.RUNNING, rows_total=200, rows_done=50)
    fragment = client.get(_detail(kolkata, export), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="export-status")
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="export-status"')
    assert '<progress class="export-progress" value="50" max="200">25 %</progress>' in html
    assert "50 of 200 rows (25 %)" in html
    assert 'hx-trigger="every 1s"' in html
    usage_export_run(export.pk)
    html = client.get(_detail(kolkata, export), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="export-status").content
    html = html.decode()
    assert "Your export is ready" in html
    assert "hx-trigger" not in html  # polling stops
    assert _download_url(kolkata, export) in html


def test_only_the_requester_may_see_or_download_an_export(client, kolkata):
    export = _request(kolkata, kolkata.member)
    usage_export_run(export.pk)
    for user in (kolkata.owner, kolkata.admin, kolkata.ws_admin, kolkata.other, UserFactory()):
        client.force_login(user)
        assert client.get(_detail(kolkata, export)).status_code == 404, user
        assert client.get(_download_url(kolkata, export)).status_code == 404, user
    client.force_login(kolkata.member)
    assert client.get(_detail(kolkata, export)).status_code == 200
    response = client.get(_download_url(kolkata, export))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().startswith(HEADER_LINE)
    # Under another organization's URL it is not found either.
    elsewhere = make_organization(owner=kolkata.member)
    url = reverse("usage:usage_export_download", kwargs={"org_slug": elsewhere.slug, "export_id": export.pk})
    assert client.get(url).status_code == 404


def test_an_unfinished_export_has_no_download(client, kolkata):
    export = _request(kolkata, kolkata.member)
    client.force_login(kolkata.member)
    assert client.get(_download_url(kolkata, export)).status_code == 404


def test_after_the_window_the_download_is_refused_and_the_cleanup_deletes_the_file(
    client, kolkata, django_capture_on_commit_callbacks
):
    export = _request(kolkata, kolkata.member)
    usage_export_run(export.pk)
    export.refresh_from_db()
    path = Path(usage_export_storage().path(export.file.name))
    assert path.exists()
    assert export.expires_at == export.finished_at + timedelta(hours=settings.USAGE_EXPORT_TTL_HOURS)
    UsageExport.objects.filter(pk=export.pk).update(expires_at=now() - timedelta(seconds=1))
    client.force_login(kolkata.member)
    response = client.get(_download_url(kolkata, export))
    assert response.status_code == 410
    assert "This download has expired" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the file goes once the row says so
        assert usage_exports_expire() == 1
    assert not path.exists()
    export.refresh_from_db()
    assert (export.file.name, export.status) == ("", UsageExportStatus.DONE)
    assert usage_exports_expire() == 0  # nothing left to do
    assert client.get(_download_url(kolkata, export)).status_code == 410
    page = client.get(_detail(kolkata, export)).content.decode()
    assert "This download has expired" in page
    assert "Prepare it again" in page


def test_the_cleanup_leaves_files_in_their_window_alone_and_fails_lost_jobs(kolkata):
    live = _request(kolkata, kolkata.member)
    usage_export_run(live.pk)
    lost = _request(kolkata, kolkata.member)
    UsageExport.objects.filter(pk=lost.pk).update(created_at=now() - timedelta(hours=7))
    assert usage_exports_expire() == 0
    live.refresh_from_db()
    lost.refresh_from_db()
    assert live.file
    assert Path(usage_export_storage().path(live.file.name)).exists()
    assert lost.status == UsageExportStatus.FAILED
    assert usage_export_run(lost.pk) == "failed"  # a late delivery does not revive it


def test_a_requester_has_at_most_three_exports_in_progress(client, kolkata):
    for _ in range(3):
        _request(kolkata, kolkata.member)
    client.force_login(kolkata.member)
    create = reverse("usage:usage_export_create", kwargs={"org_slug": kolkata.org.slug})
    response = client.post(create, MARCH, follow=True)
    assert "You already have 3 exports being prepared" in response.content.decode()
    assert UsageExport.objects.count() == 3
    assert AuditEvent.objects.filter(action=AuditAction.USAGE_EXPORT_REQUESTED).count() == 3


def test_the_exports_page_lists_only_the_users_own_exports(client, kolkata):
    mine = _request(kolkata, kolkata.member)
    theirs = _request(kolkata, kolkata.owner)
    client.force_login(kolkata.member)
    page = client.get(reverse("usage:usage_exports", kwargs={"org_slug": kolkata.org.slug})).content.decode()
    assert _detail(kolkata, mine) in page
    assert _detail(kolkata, theirs) not in page


def test_the_export_link_include_carries_the_query(rf, kolkata):
    query = UsageQuery(
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
        range="custom",
        workspace_ids=(kolkata.alpha.pk, kolkata.beta.pk),
        tools=("chat",),
    )
    tenant = type("T", (), {"organization": kolkata.org})()
    html = Template('{% include "usage/includes/export_link.html" %}').render(
        Context({"query": query, "tenant": tenant})
    )
    expected = (
        f"{export_url(kolkata)}?range=custom&amp;start=2026-03-01&amp;end=2026-03-31&amp;granularity=day"
        f"&amp;workspace={kolkata.alpha.pk}&amp;workspace={kolkata.beta.pk}&amp;tool=chat"
    )
    assert f'href="{expected}"' in html
    assert "Export CSV" in html


def test_the_files_of_a_deleted_organization_are_deleted_by_the_cleanup(kolkata, django_capture_on_commit_callbacks):
    export = _request(kolkata, kolkata.member)
    usage_export_run(export.pk)
    export.refresh_from_db()
    path = Path(usage_export_storage().path(export.file.name))
    organization_delete(organization=kolkata.org, actor=kolkata.owner, confirm_name=kolkata.org.name)
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_exports_expire() == 1
    assert not path.exists()
