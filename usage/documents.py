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
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

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
            figures.organization_name,
            figures.workspace_name,
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
                line.model,
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

INK = colors.HexColor("#111827")
MUTED = colors.HexColor("#6B7280")
RULE = colors.HexColor("#E5E7EB")
ZEBRA = colors.HexColor("#F9FAFB")
ACCENT = colors.HexColor("#4F46E5")
DRAFT_RED = colors.HexColor("#B91C1C")

_BASE = ParagraphStyle("base", fontName="Helvetica", fontSize=9, leading=12, textColor=INK)
_SMALL = ParagraphStyle("small", parent=_BASE, fontSize=8, leading=10, textColor=MUTED)
_TITLE = ParagraphStyle("title", parent=_BASE, fontName="Helvetica-Bold", fontSize=18, leading=22)
_H2 = ParagraphStyle("h2", parent=_BASE, fontName="Helvetica-Bold", fontSize=11, leading=14, spaceBefore=8)
_RIGHT = ParagraphStyle("right", parent=_BASE, alignment=TA_RIGHT)
_RIGHT_TITLE = ParagraphStyle("right_title", parent=_TITLE, fontSize=12, leading=16, alignment=TA_RIGHT)
_DRAFT = ParagraphStyle("draft", parent=_RIGHT, fontName="Helvetica-Bold", fontSize=11, textColor=DRAFT_RED)

PAGE_WIDTH = A4[0] - 36 * mm


def _safe(value: object) -> str:
    """Plain text limited to what the built-in (WinAnsi) fonts can draw; anything else prints as "?"."""
    return str(value).encode("cp1252", errors="replace").decode("cp1252")


def _text(value: object) -> str:
    """Text for a Paragraph: escaped, and limited to what the built-in (WinAnsi) fonts can draw."""
    text = escape(str(value))
    return text.encode("cp1252", errors="replace").decode("cp1252")


def _n(value: int) -> str:
    return f"{value:,}"


def _signed(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"-{-value:,}" if value < 0 else "0"


def _money(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else f"{amount:,.2f} {currency}"


def _offset(moment: datetime) -> str:
    text = f"{moment:%z}"
    return f"UTC{text[:3]}:{text[3:]}" if text else "UTC"


def _local(moment: datetime, figures: StatementFigures) -> str:
    local = moment.astimezone(ZoneInfo(figures.timezone))
    return f"{local:%-d %b %Y %H:%M} ({_offset(local)})"


def _units(units: int, unit: str) -> str:
    return f"{units:,} \N{MULTIPLICATION SIGN} {unit}"


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _table(rows: list[list[object]], widths: list[float], *, numeric_from: int, total_rows: int = 0) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("TEXTCOLOR", (0, 0), (-1, 0), MUTED),
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
        ("TOPPADDING", (0, 0), (-1, -1), 3.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
    ]
    body_end = len(rows) - 1 - total_rows
    for row in range(2, body_end + 1, 2):
        style.append(("BACKGROUND", (0, row), (-1, row), ZEBRA))
    if total_rows:
        first_total = len(rows) - total_rows
        style += [
            ("LINEABOVE", (0, first_total), (-1, first_total), 0.8, INK),
            ("FONT", (0, first_total), (-1, -1), "Helvetica-Bold", 9),
        ]
    table.setStyle(TableStyle(style))
    return table


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
        Paragraph(_text(DRAFT_LABEL), _DRAFT)
        if figures.is_draft
        else Paragraph(f"No. {_text(figures.number)}", _RIGHT_TITLE)
    )
    heading = Table(
        [
            [Paragraph("Usage statement", _TITLE), status],
            [Paragraph(_text(figures.organization_name), _BASE), Paragraph(_text(figures.period_label), _RIGHT)],
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
        ("Time zone", f"{figures.timezone} ({_offset(starts)})"),
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
    info = Table(
        [[Paragraph(_text(label), _SMALL), Paragraph(_text(value), _BASE)] for label, value in details],
        colWidths=[34 * mm, PAGE_WIDTH - 34 * mm],
    )
    info.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [info, Spacer(1, 4 * mm), Paragraph("Usage by tool and model", _H2), Spacer(1, 1.5 * mm)]

    has_amounts = figures.rate_per_1000 is not None
    header: list[object] = ["Tool", "Model", "Generations", "Units", "Credits"]
    if has_amounts:
        header.append(f"Amount ({figures.currency})")
    rows: list[list[object]] = [header]
    for line in figures.lines:
        row: list[object] = [
            line.tool_label,
            _safe(_clip(line.model, 30)),
            _n(line.generations),
            _safe(_units(line.units, line.unit)),
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
    story.append(_table(rows, widths, numeric_from=2, total_rows=1))

    group_cells = [
        Paragraph(f"Chatbot <b>{_n(figures.chatbot_credits)}</b>", _SMALL),
        Paragraph(f"Image &amp; Speech <b>{_n(figures.image_speech_credits)}</b>", _SMALL),
        Paragraph(f"Total credits <b>{_n(figures.credits)}</b>", _SMALL),
    ]
    if has_amounts:
        group_cells.append(Paragraph(f"Amount <b>{_text(_money(figures.amount, figures.currency))}</b>", _SMALL))
    groups = Table([group_cells])
    groups.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 4)]))
    story.append(groups)

    if figures.balance is not None:
        balance_rows: list[list[object]] = [["Workspace balance (credits)", "Credits"]]
        balance_rows.append(["Opening balance", _n(figures.balance.opening)])
        for item, credits in figures.balance.items:
            balance_rows.append([_safe(item.label), _signed(credits)])
        balance_rows.append(["Closing balance", _n(figures.balance.closing)])
        story.append(
            KeepTogether(
                [
                    Paragraph("Balance", _H2),
                    Spacer(1, 1.5 * mm),
                    _table(balance_rows, [PAGE_WIDTH - 40 * mm, 40 * mm], numeric_from=1, total_rows=1),
                ]
            )
        )
    if figures.balance is None and figures.credit_mode == "shared":
        story += [
            Spacer(1, 3 * mm),
            Paragraph(
                "Shared pool: this workspace spends from the organization's pool and has no balance of its own.", _SMALL
            ),
        ]
    for note in figures.notes:
        story += [Spacer(1, 2 * mm), Paragraph(_text(note), _SMALL)]

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
    story += [Spacer(1, 6 * mm)] + [Paragraph(_text(text), _SMALL) for text in footer]

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(MUTED)
        label = f"{figures.organization_name} · {figures.workspace_name} · {figures.number or DRAFT_LABEL}"
        canvas.drawString(18 * mm, 10 * mm, _safe(label))
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
