"""Request rate limits and the failed-authentication throttle.

`TokenBucketLimiter`: an in-process token bucket per caller (API key or user), behind
``X-RateLimit-*`` headers. Each gunicorn worker keeps its own buckets, so the effective limit of
a deployment is the configured one times the number of workers (documented in docs/server.md).

`FailureThrottle`: failed authentications per client address and per account, in a moving
window. It is built on ``limits`` (the engine under Flask-Limiter) rather than on Flask-Limiter
itself: Flask-Limiter counts requests to decorated routes, while this counts *failures* wherever
a credential is checked (every route's bearer token, login, refresh), keyed by an email read
from the body, and must refuse before the credential is verified. ``limits`` gives the window
arithmetic and swappable storage (``memory://``; ``redis://`` shares it between workers).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

__all__ = ["Decision", "FailureThrottle", "TokenBucketLimiter", "client_bucket"]


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


def client_bucket(address: str | None) -> str:
    """The throttled identity of a client address: the address, or its /64 for IPv6 (one
    subscriber usually holds a whole /64, so single addresses would be free to rotate)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class FailureThrottle:
    """At most ``per_client`` failed authentications per client and ``per_account`` per
    account (``limits`` notation: ``"30 per 5 minutes"``); past either, refuse until the
    oldest failure leaves the window."""

    def __init__(self, per_client: str, per_account: str, storage: str = "memory://",
                 clock: Callable[[], float] | None = None) -> None:
        self._window = MovingWindowRateLimiter(storage_from_string(storage))
        self._client: RateLimitItem = parse(per_client)
        self._account: RateLimitItem = parse(per_account)
        self._clock = clock or time.time

    def wait(self, client: str, account: str | None = None) -> int:
        """Seconds before ``client`` (and ``account``) may try again; 0 when they may now."""
        waits = [self._wait(self._client, "client", client)]
        if account is not None:
            waits.append(self._wait(self._account, "account", account))
        return max(waits)

    def failed(self, client: str | None, account: str | None = None) -> None:
        """Count one failure against ``client`` and ``account`` (each when given)."""
        if client is not None:
            self._window.hit(self._client, "client", client)
        if account is not None:
            self._window.hit(self._account, "account", account)

    def forget_account(self, account: str) -> None:
        """Clear an account's failures (after a successful login). A client's failures are
        never cleared: logging in to one's own account between guesses would reset them."""
        self._window.clear(self._account, "account", account)

    def _wait(self, item: RateLimitItem, kind: str, ident: str) -> int:
        if self._window.test(item, kind, ident):
            return 0
        reset = self._window.get_window_stats(item, kind, ident).reset_time
        return max(1, math.ceil(reset - self._clock()))
