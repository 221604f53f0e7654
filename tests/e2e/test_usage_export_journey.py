"""A large usage export in a real browser: the Owner of an organization in Asia/Kolkata asks for the last 30 days,
is told the export is large, has it prepared in the background, watches the progress bar fill while a worker writes
the file (the page polls with htmx), and downloads the CSV.

The test suite runs Celery tasks eagerly, which would finish the job inside the request and never show a bar. Here
the enqueue is captured instead (the test is the broker) and the real task runs in a thread (the worker), its progress
reports slowed a little so that the once-a-second polling can be seen moving. A phone-width screenshot of the page
and its JavaScript-less fallback (a meta refresh) are taken too. Last, under the threshold the same export is
streamed in the request, and the two files are the same.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.db import connection
from django.utils.timezone import now
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Screenshot, log_in
from tests.factories import PASSWORD, UserFactory, make_organization, make_workspace
from usage import exports
from usage.models import UsageEvent, UsageExport, UsageStatus
from usage.tasks import usage_export_run

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
EVENTS = 40


def _worker(export_id: int) -> None:
    try:
        usage_export_run(export_id)
    finally:
        connection.close()


def test_a_large_export_shows_its_progress_and_ends_in_a_download(
    live_server, browser: Browser, screenshot: Screenshot, settings, monkeypatch
):
    settings.USAGE_EXPORT_SYNC_MAX_ROWS = 20
    monkeypatch.setattr(exports, "CHUNK_ROWS", 5)
    queued: list[int] = []
    monkeypatch.setattr(exports, "outbox_enqueue", lambda *, task, args: queued.append(args[0]))
    real_report = exports._report

    def slow_report(export, attempt, **fields):
        time.sleep(0.6)
        return real_report(export, attempt, **fields)

    monkeypatch.setattr(exports, "_report", slow_report)

    base = live_server.url
    owner = UserFactory(email="priya@mumbai.test", name="Priya Owner")
    org = make_organization(owner=owner, name="Mumbai Studio", timezone="Asia/Kolkata")
    workspace = make_workspace(org, name="Monsoon Campaign")
    start = now() - timedelta(hours=EVENTS + 1)
    UsageEvent.objects.bulk_create(
        UsageEvent(
            organization=org,
            workspace=workspace,
            user=owner,
            tool="image",
            model="flux-pro",
            units=1,
            credits=8,
            status=UsageStatus.CAPTURED,
            idempotency_key=f"monsoon-{n}",
            ledger_transaction_id=1,
            created_at=start + timedelta(hours=n),
        )
        for n in range(EVENTS)
    )

    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    log_in(page, base, owner.email, PASSWORD)
    page.goto(f"{base}/o/{org.slug}/usage/exports/")
    expect(page.get_by_role("heading", name="Usage exports")).to_be_visible()
    page.get_by_label("Period").select_option("30d")
    screenshot(page, "exports-page")
    page.get_by_role("button", name="Export CSV").click()
    expect(page.get_by_role("heading", name="This export is large")).to_be_visible()
    screenshot(page, "large-export-offer")
    page.get_by_role("button", name="Prepare the file").click()
    expect(page).to_have_url(re.compile(r"/usage/exports/\d+/$"))
    status = page.locator("#export-status")
    expect(status).to_contain_text("Waiting to start")
    expect(status.locator("progress")).to_be_visible()
    screenshot(page, "queued")
    assert len(queued) == 1
    export = UsageExport.objects.get(pk=queued[0])
    assert export.requester == owner

    phone = browser.new_context(viewport=PHONE, java_script_enabled=False)
    phone_page = phone.new_page()
    log_in(phone_page, base, owner.email, PASSWORD)
    phone_page.goto(page.url)
    expect(phone_page.locator("#export-status")).to_contain_text("Waiting to start")
    screenshot(phone_page, "queued-phone-no-js")

    worker = threading.Thread(target=_worker, args=(export.pk,))
    worker.start()
    expect(status).to_contain_text(re.compile(rf"[1-9]\d* of {EVENTS} rows"), timeout=15_000)
    value, maximum = status.locator("progress").evaluate("p => [p.value, p.max]")
    assert 0 < value < maximum == EVENTS
    screenshot(page, "in-progress")
    # Without JavaScript the page reloads itself (meta refresh) and shows the same progress.
    expect(phone_page.locator("#export-status")).to_contain_text(re.compile(rf"of {EVENTS} rows|ready"), timeout=8_000)

    expect(status).to_contain_text("Your export is ready", timeout=30_000)
    worker.join(timeout=30)
    expect(status).not_to_have_attribute("hx-trigger", re.compile("every"))
    screenshot(page, "ready")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith(f"{org.slug}-usage-")
    text = Path(download.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["time", "workspace", "member", "tool", "model", "units", "credits", "status", "idempotency_key"]
    assert len(rows) == EVENTS + 1
    assert all(row[0].endswith("+05:30") and row[1] == "Monsoon Campaign" for row in rows[1:])
    assert [row[8] for row in rows[1:]] == [f"monsoon-{n}" for n in range(EVENTS)]

    expect(phone_page.locator("#export-status")).to_contain_text("Your export is ready", timeout=8_000)
    screenshot(phone_page, "ready-phone-no-js")

    # Under the threshold the same export streams in the request (a server-side cursor, outside a transaction
    # here as in production, read 5 rows at a time): the same file.
    settings.USAGE_EXPORT_SYNC_MAX_ROWS = 1000
    page.goto(f"{base}/o/{org.slug}/usage/exports/")
    page.get_by_label("Period").select_option("30d")
    with page.expect_download() as streamed_info:
        page.get_by_role("button", name="Export CSV").click()
    assert Path(streamed_info.value.path()).read_text(encoding="utf-8") == text
    phone.close()
    context.close()
