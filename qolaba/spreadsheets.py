"""CSV files people open in a spreadsheet: every cell that holds user input (names, emails, model names, keys) goes
through `spreadsheet_safe`, and long files stream line by line through `csv_line_writer`."""

from __future__ import annotations

import csv
from typing import Any

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would read as a formula is prefixed with a quote, as OWASP's CSV injection advice says;
    the csv module quotes separators and quotes."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream without a buffer."""

    def write(self, value: str) -> str:
        return value


def csv_line_writer() -> Any:
    """A csv writer whose `writerow` returns the written line (CRLF-terminated) instead of writing it anywhere."""
    return csv.writer(_Echo())
