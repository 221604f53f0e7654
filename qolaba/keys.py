"""API key secrets, below every app: `<scheme>_<prefix>_<secret>`, where the scheme says what kind of key it is (a
workspace key `qlb`, an organization admin key `qlbadm`), the prefix (8 hex characters) is public and finds the key's
row, and the secret carries 240 bits of randomness. Only the SHA-256 of the whole key is stored: with that much
randomness a fast hash is as safe as a slow one and keeps every API call cheap. Rows are found by prefix and the
hashes compared in constant time (`hmac.compare_digest`) by each kind's selector."""

from __future__ import annotations

import hashlib
import secrets
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.timezone import now

KEY_PREFIX_LENGTH = 8


def key_secret_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_generate(*, scheme: str) -> tuple[str, str]:
    """A new key of this scheme: (its public prefix, the whole key — shown once, never stored)."""
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    return prefix, f"{scheme}_{prefix}_{secrets.token_urlsafe(30)}"


def key_parse(raw: str, *, scheme: str) -> tuple[str, str] | None:
    """Split `<scheme>_<prefix>_<secret>` into (prefix, hash of the whole key); None when it is not such a key."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != scheme or len(parts[1]) != KEY_PREFIX_LENGTH or not 30 <= len(parts[2]) <= 64:
        return None
    if not all(part.isascii() and part.replace("-", "").replace("_", "").isalnum() for part in parts[1:]):
        return None
    return parts[1], key_secret_hash(raw)


class SecretKey(models.Model):
    """What every kind of key row holds: a name, the public prefix, the hash of the whole key, who created and
    revoked it and when, and when it was last used. A concrete key says its `scheme` and what it belongs to."""

    scheme: ClassVar[str]

    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, shown in lists.")
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def display_prefix(self) -> str:
        return f"{self.scheme}_{self.prefix}_…"
