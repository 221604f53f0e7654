"""Request rate limits counted in Redis (fixed windows): the metering API's per-key limit.

Why Redis, and why it fails open: the API's charge is one SQL statement (usage.fastpath); a counter row in PostgreSQL
per key would add a write to one hot row per request, the contention the striped balances exist to avoid. A Redis
INCR costs a fraction of a millisecond. When Redis cannot be reached the limit is not applied (the request goes on,
and a warning is logged at most once a minute per process): the limit guards fairness and load, not money (balances,
holds and workspace limits are enforced in the database), and the metering API must keep working while Redis is
down (docs/operations.md). After a failure Redis is not tried again for RATE_LIMIT_RETRY_SECONDS, so an outage
costs requests no connection timeouts.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until the current window ends


def rate_parse(text: str) -> Rate | None:
    """'1200/m', '50/10s', '10000/h'; empty or '0/...' is no limit."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", text or "")
    if match is None:
        if (text or "").strip():
            raise ValueError(f"Not a rate: {text!r} (write it as 1200/m, 50/10s, 10000/h)")
        return None
    limit, count, unit = int(match[1]), int(match[2] or 1), match[3]
    return Rate(limit=limit, seconds=count * _UNITS[unit]) if limit else None


class _Counters:
    """One Redis client per process, with the breaker that skips Redis for a while after it failed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.url: str | None = None
        self.client: redis.Redis | None = None
        self.down_until = 0.0
        self.logged_at = 0.0

    def get(self) -> redis.Redis | None:
        url: str = settings.RATE_LIMIT_REDIS_URL
        if not url or time.monotonic() < self.down_until:
            return None
        with self.lock:
            if self.client is None or self.url != url:
                timeout = settings.RATE_LIMIT_REDIS_TIMEOUT
                self.client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
                self.url = url
            return self.client

    def failed(self, error: Exception) -> None:
        now = time.monotonic()
        self.down_until = now + settings.RATE_LIMIT_RETRY_SECONDS
        if now - self.logged_at >= 60:
            self.logged_at = now
            logger.warning("Rate limits are not applied: Redis is unreachable (%s)", error)

    def reset(self) -> None:
        """Forget the client and the breaker (tests that point the limits at another Redis)."""
        with self.lock:
            self.client, self.url, self.down_until, self.logged_at = None, None, 0.0, 0.0


counters = _Counters()


def rate_hit(*, scope: str, key: str, rate: Rate) -> Verdict | None:
    """Count one request of `key` in the current window of `rate`; None when the count could not be made (no Redis
    configured, or Redis unreachable: the caller lets the request through)."""
    client = counters.get()
    if client is None:
        return None
    now = time.time()
    window = int(now // rate.seconds)
    name = f"ratelimit:{scope}:{key}:{rate.seconds}:{window}"
    try:
        pipeline = client.pipeline(transaction=True)
        pipeline.incr(name)
        pipeline.expire(name, rate.seconds + 1)
        count = int(pipeline.execute()[0])
    except redis.RedisError as error:
        counters.failed(error)
        return None
    retry_after = max(1, int((window + 1) * rate.seconds - now + 0.999))
    return Verdict(
        allowed=count <= rate.limit,
        limit=rate.limit,
        remaining=max(rate.limit - count, 0),
        retry_after=retry_after,
    )
