"""The metering API's request bodies: at most `MAX_BODY_BYTES` (`usage.middleware` refuses a longer one before
anything reads it), strict JSON (no NaN or infinities), and no NUL character anywhere (PostgreSQL text cannot
store one)."""

from __future__ import annotations

import json
import math
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser

from usage.api.errors import ApiError

MAX_BODY_BYTES = 1024 * 1024


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _nul_at(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in parsed JSON (PostgreSQL text cannot store one), or None."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return here
        found = _nul_at(item, here)
        if found is not None:
            return found
    return None


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        try:
            data = json.loads(request.body, parse_constant=_not_json, parse_float=_finite)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "invalid_request", "The body is not valid JSON.", fields={}) from None
        where = _nul_at(data)
        if where is not None:
            raise ApiError(400, "invalid_request", "Text may not contain NUL characters.", fields={where: "NUL"})
        return data
