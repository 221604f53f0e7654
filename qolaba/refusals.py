"""The one base class for a refusal: a service said no, wrote nothing, and says why.

Every refusal carries a machine-readable `code` (the metering API's error code) and a human `message` (what a form,
a flash message or the admin shows), so views and the admin read `error.message` instead of probing for it.
"""

from __future__ import annotations


class Refusal(Exception):
    code = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
