"""The house style of every PDF the product prints (client statements, invoices), with ReportLab: colours, paragraph
styles, the A4 frame, and the two tables every document has — a label/value block and a numeric table with a header,
zebra rows and totals. Text goes through `pdf_text`/`pdf_safe`: the built-in fonts draw only WinAnsi characters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Table, TableStyle

INK = colors.HexColor("#111827")
MUTED = colors.HexColor("#6B7280")
RULE = colors.HexColor("#E5E7EB")
ZEBRA = colors.HexColor("#F9FAFB")
ACCENT = colors.HexColor("#4F46E5")
DRAFT_RED = colors.HexColor("#B91C1C")

BASE = ParagraphStyle("base", fontName="Helvetica", fontSize=9, leading=12, textColor=INK)
SMALL = ParagraphStyle("small", parent=BASE, fontSize=8, leading=10, textColor=MUTED)
TITLE = ParagraphStyle("title", parent=BASE, fontName="Helvetica-Bold", fontSize=18, leading=22)
H2 = ParagraphStyle("h2", parent=BASE, fontName="Helvetica-Bold", fontSize=11, leading=14, spaceBefore=8)
RIGHT = ParagraphStyle("right", parent=BASE, alignment=TA_RIGHT)
RIGHT_TITLE = ParagraphStyle("right_title", parent=TITLE, fontSize=12, leading=16, alignment=TA_RIGHT)

PAGE_WIDTH = A4[0] - 36 * mm
LABEL_WIDTH = 34 * mm


def pdf_safe(value: object) -> str:
    """Plain text limited to what the built-in (WinAnsi) fonts can draw; anything else prints as "?"."""
    return str(value).encode("cp1252", errors="replace").decode("cp1252")


def pdf_text(value: object) -> str:
    """Text for a Paragraph: escaped, and limited to what the built-in (WinAnsi) fonts can draw."""
    return pdf_safe(escape(str(value)))


def pdf_utc_offset(moment: datetime) -> str:
    """ "UTC+05:30" for an aware local time, "UTC" for UTC itself."""
    text = f"{moment:%z}"
    return f"UTC{text[:3]}:{text[3:]}" if text else "UTC"


def pdf_details(details: Sequence[tuple[str, str]]) -> Table:
    """The label/value block under a document's heading (who, which period, which time zone…)."""
    table = Table(
        [[Paragraph(pdf_text(label), SMALL), Paragraph(pdf_text(value), BASE)] for label, value in details],
        colWidths=[LABEL_WIDTH, PAGE_WIDTH - LABEL_WIDTH],
    )
    table.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def pdf_table(rows: list[list[object]], widths: list[float], *, numeric_from: int, total_rows: int = 0) -> Table:
    """A table with a header row, zebra body rows, numbers right-aligned from column `numeric_from`, and the last
    `total_rows` rows set in bold under a rule."""
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
