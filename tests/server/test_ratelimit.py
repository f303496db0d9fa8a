"""The token bucket."""

from __future__ import annotations

import pytest

from llmlab_server import ratelimit
from llmlab_server.ratelimit import TokenBucketLimiter


class FakeClock:
    """A controllable monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestTokenBucket:
    """TokenBucketLimiter.hit."""

    def test_burst_then_refusal_then_refill(self) -> None:
        """A bucket allows its burst, refuses the next hit, and refills at its rate."""
        clock = FakeClock()
        limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)  # type: ignore[arg-type]
        assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, True, False]
        refused = limiter.hit("k")
        assert refused.retry_after == 1 and refused.headers()["Retry-After"] == "1"
        clock.now += 0.5
        assert limiter.hit("k").allowed

    def test_many_other_callers_do_not_reset_a_busy_callers_limit(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past the cap the least recently used callers are forgotten, one at a time: a
        caller still hitting its empty bucket stays limited however many other keys come
        and go (the whole table used to be cleared, every limit reset at once)."""
        monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 100)
        limiter = TokenBucketLimiter(rate=0.001, burst=1)
        assert limiter.hit("busy").allowed
        for n in range(1_000):
            limiter.hit(f"other-{n}")
            if n % 10 == 0:
                assert not limiter.hit("busy").allowed
        assert len(limiter._buckets) == 100

    def test_keys_are_independent(self) -> None:
        """One caller exhausting its bucket does not limit another."""
        limiter = TokenBucketLimiter(rate=0.001, burst=1)
        assert limiter.hit("a").allowed and not limiter.hit("a").allowed
        assert limiter.hit("b").allowed

    def test_headers(self) -> None:
        """Allowed hits report limit, remaining and reset without Retry-After."""
        clock = FakeClock()
        limiter = TokenBucketLimiter(rate=1.0, burst=10, clock=clock)  # type: ignore[arg-type]
        headers = limiter.hit("k").headers()
        assert headers == {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9",
                           "X-RateLimit-Reset": "1"}
