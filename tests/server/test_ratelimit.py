"""The token bucket."""

from __future__ import annotations

import pytest

from llmlab_server import ratelimit
from llmlab_server.ratelimit import FailureThrottle, TokenBucketLimiter, client_bucket


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


class TestFailureThrottle:
    """FailureThrottle: failures per client and per account in a moving window."""

    def test_client_allowance_then_wait(self) -> None:
        """Past its allowance a client waits until the oldest failure leaves the window."""
        throttle = FailureThrottle("3 per minute", "10 per minute")
        for _ in range(3):
            assert throttle.wait("1.2.3.4") == 0
            throttle.failed("1.2.3.4")
        assert 1 <= throttle.wait("1.2.3.4") <= 60
        assert throttle.wait("1.2.3.5") == 0

    def test_account_is_counted_across_clients_and_forgotten_on_success(self) -> None:
        """An account's failures add up over clients; forgetting them clears the account only."""
        throttle = FailureThrottle("100 per minute", "2 per minute")
        throttle.failed("a", "victim@example.com")
        throttle.failed("b", "victim@example.com")
        assert throttle.wait("c", "victim@example.com") > 0
        assert throttle.wait("c") == 0
        throttle.forget_account("victim@example.com")
        assert throttle.wait("c", "victim@example.com") == 0

    @pytest.mark.parametrize(("address", "bucket"), [
        ("10.0.0.1", "10.0.0.1"), ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:1", "2001:db8::/64"), ("::ffff:10.0.0.1", "10.0.0.1"),
        (None, "unknown"), ("not-an-ip", "not-an-ip")])
    def test_client_bucket(self, address: str | None, bucket: str) -> None:
        """IPv4 addresses are themselves, IPv6 ones their /64, mapped IPv4 the IPv4."""
        assert client_bucket(address) == bucket
