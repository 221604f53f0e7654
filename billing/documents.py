"""An invoice as a PDF (ReportLab, one A4 page), in the style of the usage statements (usage.documents)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.gateways import GATEWAYS
from billing.models import Invoice, InvoicePurpose, InvoiceStatus
from orgs.models import Organization
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

STATUS_LABELS = {InvoiceStatus.PAID: "PAID", InvoiceStatus.OPEN: "OPEN — awaiting payment", InvoiceStatus.VOID: "VOID"}


def _local(moment: datetime | None, timezone_name: str) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(timezone_name))
    return f"{local:%-d %b %Y %H:%M} ({pdf_utc_offset(local)})"


def _what(invoice: Invoice) -> str:
    if invoice.purpose == InvoicePurpose.PACK:
        return f"{invoice.plan.name}: one-time credit pack, valid {invoice.plan.validity_months} months"
    if invoice.purpose == InvoicePurpose.RENEWAL:
        return f"{invoice.plan.name} plan: monthly renewal"
    return f"{invoice.plan.name} plan: first month"


def invoice_document(invoice: Invoice, organization: Organization) -> bytes:
    """The invoice on one A4 page: who, what, credits, amount, status and, once paid, when."""
    buffer = io.BytesIO()
    zone = organization.timezone
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"Invoice {invoice.number}",
        author="Qolaba",
        subject=f"{organization.name} · {invoice.plan.name}",
        creator="Qolaba",
    )
    story: list[object] = []
    heading = Table(
        [
            [Paragraph("Invoice", TITLE), Paragraph(f"No. {pdf_text(invoice.number)}", RIGHT_TITLE)],
            [
                Paragraph(pdf_text(organization.name), BASE),
                Paragraph(pdf_text(_local(invoice.created_at, zone)), RIGHT),
            ],
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

    gateway = GATEWAYS.get(invoice.gateway)
    details = [
        ("Billed to", organization.name),
        ("Invoice number", invoice.number),
        ("Issued", _local(invoice.created_at, zone)),
        ("Status", invoice.get_status_display()),
        ("Payment method", gateway.label if gateway else invoice.gateway),
    ]
    if invoice.period_start is not None:
        details.append(("Period from", _local(invoice.period_start, zone)))
    if invoice.paid_at is not None:
        details.append(("Paid", _local(invoice.paid_at, zone)))
    details.append(("Time zone", zone))
    info = pdf_details(details)
    story += [info, Spacer(1, 4 * mm), Paragraph("Items", H2), Spacer(1, 1.5 * mm)]

    amount = f"{invoice.amount_cents / 100:,.2f}"
    rows: list[list[object]] = [
        ["Description", "Credits", f"Amount ({invoice.currency})"],
        [pdf_safe(_what(invoice)), f"{invoice.credits:,}", amount],
        ["Total", f"{invoice.credits:,}", amount],
    ]
    story.append(pdf_table(rows, [PAGE_WIDTH - 70 * mm, 30 * mm, 40 * mm], numeric_from=1, total_rows=1))

    status_colour = {InvoiceStatus.PAID: ACCENT, InvoiceStatus.OPEN: colors.HexColor("#A3620A")}.get(
        InvoiceStatus(invoice.status), DRAFT_RED
    )
    stamp_style = ParagraphStyle("stamp", parent=BASE, fontSize=11, textColor=status_colour, alignment=TA_CENTER)
    stamp = Table(
        [[Paragraph(f"<b>{pdf_text(STATUS_LABELS[InvoiceStatus(invoice.status)])}</b>", stamp_style)]],
        colWidths=[60 * mm],
    )
    stamp.setStyle(
        TableStyle(
            [
                ("TEXTCOLOR", (0, 0), (-1, -1), status_colour),
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("BOX", (0, 0), (-1, -1), 1, status_colour),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    stamp.hAlign = "RIGHT"
    story += [Spacer(1, 5 * mm), stamp]

    notes = [
        "Paying the invoice grants its credits to the Primary Workspace, once. Prices are for the whole period: "
        "plan changes are not prorated.",
    ]
    if invoice.purpose == InvoicePurpose.PACK:
        notes.append("Pack credits last the months stated; what is left then moves to the Credit Bank.")
    if invoice.status == InvoiceStatus.VOID:
        notes.append("This invoice was voided: nothing is owed for it.")
    story += [Spacer(1, 6 * mm)] + [Paragraph(pdf_text(text), SMALL) for text in notes]

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(18 * mm, 10 * mm, pdf_safe(f"{organization.name} · Invoice {invoice.number}"))
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    document.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()
