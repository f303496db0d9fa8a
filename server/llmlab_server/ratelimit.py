"""Request rate limits and the failed-authentication throttle.

`TokenBucketLimiter`: an in-process token bucket per caller (API key, user or address), behind
``X-RateLimit-*`` headers: the zero-configuration default. Each process keeps its own buckets, so
under N gunicorn workers a caller gets up to N times the limit.

`SharedLimiter`: the same contract over a ``limits`` storage (Redis when ``LLMLAB_REDIS_URL`` is
set), so every worker and instance enforces one limit. ``limits`` has no token bucket; a moving
window of ``burst`` requests per ``burst / rate`` seconds keeps both numbers (a burst at once,
``rate`` per second sustained) and is stricter only in that the next burst waits for the window
instead of trickling in at ``rate``.

When the storage errs, for `OUTAGE_PAUSE` seconds at a time (one warning per outage), a
`SharedLimiter` falls back to a `TokenBucketLimiter` of its own (each process limits alone, as
without Redis: never no limit), and the `FailureThrottle` fails open (everyone may try), because
a limiter must not take the API down with it.

`FailureThrottle`: failed authentications per client address and per account, in a moving
window. It is built on ``limits`` (the engine under Flask-Limiter) rather than on Flask-Limiter
itself: Flask-Limiter counts requests to decorated routes, while this counts *failures* wherever
a credential is checked (every route's bearer token, login, refresh), keyed by an email read
from the body, and must refuse before the credential is verified. ``limits`` gives the window
arithmetic and swappable storage (``memory://``; ``redis://`` shares it between workers).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

__all__ = ["Decision", "FailureThrottle", "SharedLimiter", "TokenBucketLimiter", "client_bucket",
           "open_storage"]

log = logging.getLogger(__name__)

#: Seconds a shared limiter lets everything through after its storage failed, before it asks
#: the storage again (so an unreachable Redis costs one timeout per pause, not per request).
OUTAGE_PAUSE = 5.0
#: Seconds to wait for Redis: a limiter check must stay far cheaper than the request it guards.
REDIS_TIMEOUT = 0.25


def open_storage(uri: str) -> Storage:
    """The ``limits`` storage at ``uri``, raising `StorageError` on failure; Redis ones with
    short timeouts."""
    options: dict[str, float] = {}
    if uri.startswith(("redis", "valkey")):
        options = {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT}
    store = storage_from_string(uri, wrap_exceptions=True, **options)
    if not isinstance(store, Storage):  # an async+ URI: the limiters are synchronous
        raise ValueError(f"{uri!r} is an asynchronous storage")
    return store


class _Breaker:
    """Fail-open bookkeeping: whether to ask the storage now, one warning per outage."""

    def __init__(self, what: str, meanwhile: str = "allowing every request") -> None:
        self._what = what
        self._meanwhile = meanwhile
        self._until = 0.0
        self._down = False

    def closed(self) -> bool:
        """True when the storage may be asked (no recent failure)."""
        return time.monotonic() >= self._until

    def failed(self, exc: Exception) -> None:
        self._until = time.monotonic() + OUTAGE_PAUSE
        if not self._down:
            self._down = True
            log.warning("%s storage failed (%s); %s until it is back",
                        self._what, exc, self._meanwhile)

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            log.warning("%s storage is back", self._what)


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


class SharedLimiter:
    """`TokenBucketLimiter`'s contract over a ``limits`` storage shared by processes: at most
    ``burst`` requests in any ``burst / rate`` seconds (rounded up to whole seconds) per key."""

    def __init__(self, rate: float, burst: int, store: Storage) -> None:
        self.burst = max(burst, 1)
        self._item = RateLimitItemPerSecond(self.burst, max(1, math.ceil(self.burst / rate)))
        self._window = MovingWindowRateLimiter(store)
        self._breaker = _Breaker("rate limit", "limiting in each process on its own")
        #: The limits while the storage is down: per process, as without Redis; never none.
        self._local = TokenBucketLimiter(rate, burst)

    def hit(self, key: str, cost: float = 1.0) -> Decision:
        """Count ``cost`` requests (rounded up) against ``key`` if its window has room."""
        if self._breaker.closed():
            try:
                allowed = self._window.hit(self._item, "key", key, cost=math.ceil(cost))
                stats = self._window.get_window_stats(self._item, "key", key)
            except StorageError as exc:
                self._breaker.failed(exc)
            else:
                self._breaker.succeeded()
                reset = max(0, math.ceil(stats.reset_time - time.time()))
                retry = 0 if allowed else max(1, reset)
                return Decision(allowed, self.burst, stats.remaining, reset, retry)
        return self._local.hit(key, cost)


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
        self._window = MovingWindowRateLimiter(open_storage(storage))
        self._client: RateLimitItem = parse(per_client)
        self._account: RateLimitItem = parse(per_account)
        self._clock = clock or time.time
        self._breaker = _Breaker("failed-authentication throttle")

    def wait(self, client: str, account: str | None = None) -> int:
        """Seconds before ``client`` (and ``account``) may try again; 0 when they may now
        (or when the storage fails: see the module's docstring)."""
        if not self._breaker.closed():
            return 0
        try:
            waits = [self._wait(self._client, "client", client)]
            if account is not None:
                waits.append(self._wait(self._account, "account", account))
        except StorageError as exc:
            self._breaker.failed(exc)
            return 0
        self._breaker.succeeded()
        return max(waits)

    def failed(self, client: str | None, account: str | None = None) -> None:
        """Count one failure against ``client`` and ``account`` (each when given)."""
        if not self._breaker.closed():
            return
        try:
            if client is not None:
                self._window.hit(self._client, "client", client)
            if account is not None:
                self._window.hit(self._account, "account", account)
        except StorageError as exc:
            self._breaker.failed(exc)

    def forget_account(self, account: str) -> None:
        """Clear an account's failures (after a successful login). A client's failures are
        never cleared: logging in to one's own account between guesses would reset them."""
        if not self._breaker.closed():
            return
        try:
            self._window.clear(self._account, "account", account)
        except StorageError as exc:
            self._breaker.failed(exc)

    def _wait(self, item: RateLimitItem, kind: str, ident: str) -> int:
        if self._window.test(item, kind, ident):
            return 0
        reset = self._window.get_window_stats(item, kind, ident).reset_time
        return max(1, math.ceil(reset - self._clock()))
