"""Payment gateways. The app never sees card data: a gateway takes an open invoice and, when the money arrives,
the invoice is marked paid (billing.services.invoice_mark_paid), which grants the credits.

- `manual`: the invoice stays open; staff mark it paid in the admin once the transfer arrives.
- `demo`: pays at once; only allowed while DEBUG is on (demos and local development).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Gateway:
    code: str
    label: str
    pays_immediately: bool
    instructions: str

    def available(self) -> bool:
        return self.code != "demo" or settings.DEBUG


GATEWAYS: dict[str, Gateway] = {
    "manual": Gateway(
        code="manual",
        label="Bank transfer (invoice)",
        pays_immediately=False,
        instructions="We email you an invoice; the credits arrive as soon as the payment is received.",
    ),
    "demo": Gateway(
        code="demo",
        label="Demo payment (development only)",
        pays_immediately=True,
        instructions="Pays at once, for demos. Not available in production.",
    ),
}


def available_gateways() -> list[Gateway]:
    """The gateways people may pick; in development the instant demo gateway comes first."""
    gateways = [gateway for gateway in GATEWAYS.values() if gateway.available()]
    return sorted(gateways, key=lambda gateway: not gateway.pays_immediately)
