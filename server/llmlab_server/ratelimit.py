"""An in-process token bucket per caller (API key or user), behind ``X-RateLimit-*`` headers.

Each gunicorn worker keeps its own buckets, so the effective limit of a deployment is the
configured one times the number of workers (documented in docs/server.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Decision", "TokenBucketLimiter"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one `TokenBucketLimiter.hit`."""

    allowed: bool
    limit: int
    remaining: int
    #: Seconds until the bucket is full again.
    reset: int
    #: Seconds until one request is allowed again (0 when allowed).
    retry_after: int

    def headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` (and, when refused, ``Retry-After``) response headers."""
        out = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
               "X-RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


#: Callers a limiter remembers (about 100 bytes each).
MAX_BUCKETS = 100_000


class TokenBucketLimiter:
    """``burst`` requests at once, refilled at ``rate`` per second, per key."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] | None = None
                 ) -> None:
        self.rate = max(rate, 1e-9)
        self.burst = max(burst, 1)
        self._clock = clock or time.monotonic
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket if it has them."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            # Kept in order of last use: past the cap the least recently used caller is
            # forgotten (its bucket has refilled the most), not every caller at once, which
            # let anyone with enough keys or addresses reset every limit, their own included.
            self._buckets.pop(key, None)
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                del self._buckets[next(iter(self._buckets))]
        reset = math.ceil((self.burst - tokens) / self.rate)
        retry = 0 if allowed else max(1, math.ceil((cost - tokens) / self.rate))
        return Decision(allowed, self.burst, int(tokens), reset, retry)
