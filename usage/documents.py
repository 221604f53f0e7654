"""A statement as files: CSV (three blocks, each with its header row) and PDF (ReportLab, one A4 page).

Both render `usage.statements.StatementFigures`, the same figures the page shows, closed or draft.
Credits print as integers and amounts as plain decimal numbers in the CSV; the PDF groups digits for reading.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from qolaba.pdf import (
    ACCENT,
    BASE,
    DRAFT_RED,
    H2,
    MUTED,
    PAGE_WIDTH,
    RIGHT,
    RIGHT_TITLE,
    SMALL,
    TITLE,
    pdf_details,
    pdf_safe,
    pdf_table,
    pdf_text,
    pdf_utc_offset,
)
from qolaba.spreadsheets import spreadsheet_safe
from usage.statements import StatementFigures

DRAFT_LABEL = "DRAFT — not closed"


def _iso(moment: datetime | None, timezone_name: str | None = None) -> str:
    if moment is None:
        return ""
    if timezone_name:
        moment = moment.astimezone(ZoneInfo(timezone_name))
    return moment.isoformat(timespec="seconds")


def _plain(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount:.2f}"


def statement_csv(figures: StatementFigures) -> str:
    """The statement block, the lines with their total, and (budget mode) the balance, separated by blank rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "statement",
            "status",
            "organization",
            "workspace",
            "period",
            "period_start",
            "period_end",
            "time_zone",
            "closed_at",
            "as_of",
            "client_rate_per_1000_credits",
            "currency",
        ]
    )
    writer.writerow(
        [
            figures.number,
            "draft" if figures.is_draft else "closed",
            spreadsheet_safe(figures.organization_name),
            spreadsheet_safe(figures.workspace_name),
            f"{figures.period_start:%Y-%m}",
            _iso(figures.local_starts_at),
            _iso(figures.local_ends_at),
            figures.timezone,
            _iso(figures.closed_at, figures.timezone),
            _iso(figures.as_of, figures.timezone),
            "" if figures.rate_per_1000 is None else f"{figures.rate_per_1000.normalize():f}",
            figures.currency,
        ]
    )
    writer.writerow([])
    writer.writerow(["tool", "model", "unit", "generations", "units", "credits", "amount", "currency"])
    for line in figures.lines:
        writer.writerow(
            [
                line.tool,
                spreadsheet_safe(line.model),
                line.unit,
                line.generations,
                line.units,
                line.credits,
                _plain(line.amount),
                figures.currency if line.amount is not None else "",
            ]
        )
    writer.writerow(
        [
            "total",
            "",
            "",
            figures.generations,
            "",
            figures.credits,
            _plain(figures.amount),
            figures.currency if figures.amount is not None else "",
        ]
    )
    if figures.balance is not None:
        writer.writerow([])
        writer.writerow(["balance", "credits"])
        writer.writerow(["opening_balance", figures.balance.opening])
        for item, credits in figures.balance.items:
            writer.writerow([item.value, credits])
        writer.writerow(["closing_balance", figures.balance.closing])
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------------------------------------

_DRAFT = ParagraphStyle("draft", parent=RIGHT, fontName="Helvetica-Bold", fontSize=11, textColor=DRAFT_RED)


def _n(value: int) -> str:
    return f"{value:,}"


def _signed(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"-{-value:,}" if value < 0 else "0"


def _money(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else f"{amount:,.2f} {currency}"


def _local(moment: datetime, figures: StatementFigures) -> str:
    local = moment.astimezone(ZoneInfo(figures.timezone))
    return f"{local:%-d %b %Y %H:%M} ({pdf_utc_offset(local)})"


def _units(units: int, unit: str) -> str:
    return f"{units:,} \N{MULTIPLICATION SIGN} {unit}"


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "\N{HORIZONTAL ELLIPSIS}"


def statement_pdf(figures: StatementFigures) -> bytes:
    """A one-page A4 statement: header, period, lines with totals, balances (budget mode), amounts (with a rate)."""
    buffer = io.BytesIO()
    title = f"Statement {figures.number}" if figures.number else f"Statement {figures.period_label} (draft)"
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=title,
        author=figures.organization_name,
        subject=f"{figures.workspace_name} · {figures.period_label}",
        creator="Qolaba",
    )
    story: list[object] = []

    status = (
        Paragraph(pdf_text(DRAFT_LABEL), _DRAFT)
        if figures.is_draft
        else Paragraph(f"No. {pdf_text(figures.number)}", RIGHT_TITLE)
    )
    heading = Table(
        [
            [Paragraph("Usage statement", TITLE), status],
            [Paragraph(pdf_text(figures.organization_name), BASE), Paragraph(pdf_text(figures.period_label), RIGHT)],
        ],
        colWidths=[PAGE_WIDTH * 0.6, PAGE_WIDTH * 0.4],
    )
    heading.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("LINEBELOW", (0, -1), (-1, -1), 1.5, ACCENT),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 8),
            ]
        )
    )
    story += [heading, Spacer(1, 5 * mm)]

    starts, ends = figures.local_starts_at, figures.local_ends_at
    details = [
        ("Organization", figures.organization_name),
        ("Workspace", figures.workspace_name),
        ("Period", f"{figures.period_label}: {_local(starts, figures)} to {_local(ends, figures)}"),
        ("Time zone", f"{figures.timezone} ({pdf_utc_offset(starts)})"),
        ("Statement number", figures.number or "none yet (draft)"),
        (
            "Closed on" if not figures.is_draft else "Figures as of",
            _local(figures.closed_at, figures)
            if figures.closed_at
            else _local(figures.as_of, figures)
            if figures.as_of
            else "",
        ),
    ]
    if figures.rate_per_1000 is not None:
        details.append(("Client rate", f"{figures.rate_per_1000.normalize():f} {figures.currency} per 1,000 credits"))
    info = pdf_details(details)
    story += [info, Spacer(1, 4 * mm), Paragraph("Usage by tool and model", H2), Spacer(1, 1.5 * mm)]

    has_amounts = figures.rate_per_1000 is not None
    header: list[object] = ["Tool", "Model", "Generations", "Units", "Credits"]
    if has_amounts:
        header.append(f"Amount ({figures.currency})")
    rows: list[list[object]] = [header]
    for line in figures.lines:
        row: list[object] = [
            line.tool_label,
            pdf_safe(_clip(line.model, 30)),
            _n(line.generations),
            pdf_safe(_units(line.units, line.unit)),
            _n(line.credits),
        ]
        if has_amounts:
            row.append(f"{line.amount:,.2f}" if line.amount is not None else "")
        rows.append(row)
    if not figures.lines:
        empty: list[object] = ["No generations in this period.", "", "", "", "", ""]
        rows.append(empty[: len(header)])
    total: list[object] = ["Total", "", _n(figures.generations), "", _n(figures.credits)]
    if has_amounts:
        total.append(f"{figures.amount:,.2f}")
    rows.append(total)
    if has_amounts:
        widths = [20 * mm, 48 * mm, 22 * mm, 34 * mm, 22 * mm]
        widths.append(PAGE_WIDTH - sum(widths))
    else:
        widths = [24 * mm, 62 * mm, 26 * mm, 36 * mm, PAGE_WIDTH - 148 * mm]
    story.append(pdf_table(rows, widths, numeric_from=2, total_rows=1))

    group_cells = [
        Paragraph(f"Chatbot <b>{_n(figures.chatbot_credits)}</b>", SMALL),
        Paragraph(f"Image &amp; Speech <b>{_n(figures.image_speech_credits)}</b>", SMALL),
        Paragraph(f"Total credits <b>{_n(figures.credits)}</b>", SMALL),
    ]
    if has_amounts:
        group_cells.append(Paragraph(f"Amount <b>{pdf_text(_money(figures.amount, figures.currency))}</b>", SMALL))
    groups = Table([group_cells])
    groups.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 4)]))
    story.append(groups)

    if figures.balance is not None:
        balance_rows: list[list[object]] = [["Workspace balance (credits)", "Credits"]]
        balance_rows.append(["Opening balance", _n(figures.balance.opening)])
        for item, credits in figures.balance.items:
            balance_rows.append([pdf_safe(item.label), _signed(credits)])
        balance_rows.append(["Closing balance", _n(figures.balance.closing)])
        story.append(
            KeepTogether(
                [
                    Paragraph("Balance", H2),
                    Spacer(1, 1.5 * mm),
                    pdf_table(balance_rows, [PAGE_WIDTH - 40 * mm, 40 * mm], numeric_from=1, total_rows=1),
                ]
            )
        )
    if figures.balance is None and figures.credit_mode == "shared":
        story += [
            Spacer(1, 3 * mm),
            Paragraph(
                "Shared pool: this workspace spends from the organization's pool and has no balance of its own.", SMALL
            ),
        ]
    for note in figures.notes:
        story += [Spacer(1, 2 * mm), Paragraph(pdf_text(note), SMALL)]

    footer = [
        "Credits are captured credits of generations started in the period (by their start time), per the price "
        "list in force when each generation ran.",
    ]
    if has_amounts:
        footer.append(
            f"Amounts: credits x {figures.rate_per_1000.normalize():f} {figures.currency} / 1,000, each line rounded "  # type: ignore[union-attr]
            "half-up to the cent; the total is the sum of the lines."
        )
    if figures.is_draft:
        footer.append("This month is not closed: its figures can still change. The closed statement is final.")
    story += [Spacer(1, 6 * mm)] + [Paragraph(pdf_text(text), SMALL) for text in footer]

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(MUTED)
        label = f"{figures.organization_name} · {figures.workspace_name} · {figures.number or DRAFT_LABEL}"
        canvas.drawString(18 * mm, 10 * mm, pdf_safe(label))
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {doc.page}")
        if figures.is_draft:
            canvas.setFont("Helvetica-Bold", 64)
            canvas.setFillColor(colors.Color(0.73, 0.11, 0.11, alpha=0.07))
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(35)
            canvas.drawCentredString(0, 0, "DRAFT")
        canvas.restoreState()

    document.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()
