"""The token bucket, the shared (Redis) limiter and the failed-authentication throttle."""

from __future__ import annotations

import logging
import multiprocessing
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from limits.strategies import MovingWindowRateLimiter

from llmlab_server import create_app, ratelimit
from llmlab_server.ratelimit import (
    FailureThrottle,
    SharedLimiter,
    TokenBucketLimiter,
    client_bucket,
    open_storage,
)

from .conftest import make_config

#: The suite's Redis database (emptied before each test that uses it); CI starts the server.
REDIS_URL = "redis://127.0.0.1:6379/15"
#: A port nothing listens on: a Redis that is down.
DOWN_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty Redis database; fails (not skips) when Redis is down."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is unreachable ({exc!r}); start it "
                    "(scripts/test_prerequisites.sh).", pytrace=False)
    yield REDIS_URL
    client.flushdb()
    client.close()


def _hit_many(url: str, key: str, times: int, start: Any, allowed: Any) -> None:
    """One process: wait for the start signal, hit ``key`` ``times`` times, report the allowed."""
    limiter = SharedLimiter(rate=0.01, burst=10, store=open_storage(url))
    start.wait(30)
    allowed.put(sum(limiter.hit(key).allowed for _ in range(times)))


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
        limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
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
        limiter = TokenBucketLimiter(rate=1.0, burst=10, clock=clock)
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


class TestSharedLimiter:
    """SharedLimiter: the token bucket's contract in a limits storage."""

    def test_burst_then_refusal_with_headers(self, redis_url: str) -> None:
        """A key gets its burst, then 429 headers with a Retry-After of the window's rest."""
        limiter = SharedLimiter(rate=1.0, burst=3, store=open_storage(redis_url))
        assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, True, False]
        refused = limiter.hit("k").headers()
        assert refused["X-RateLimit-Limit"] == "3" and refused["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(refused["Retry-After"]) <= 3
        assert limiter.hit("other").allowed

    def test_two_processes_share_one_limit(self, redis_url: str) -> None:
        """Two processes hitting one key through Redis are allowed the burst together, not
        each (in-process buckets let each worker have its own)."""
        ctx = multiprocessing.get_context("spawn")
        start, allowed = ctx.Event(), ctx.Queue()
        key = secrets.token_hex(8)
        procs = [ctx.Process(target=_hit_many, args=(redis_url, key, 10, start, allowed))
                 for _ in range(2)]
        for proc in procs:
            proc.start()
        start.set()
        counts = [allowed.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(30)
        assert sum(counts) == 10 and all(proc.exitcode == 0 for proc in procs)

    def test_falls_back_to_local_limits_and_logs_once(self, caplog: pytest.LogCaptureFixture
                                                      ) -> None:
        """With Redis down the process limits on its own (never not at all) and one warning
        is logged, not one per request; the storage is not asked again during the pause."""
        limiter = SharedLimiter(rate=0.01, burst=2, store=open_storage(DOWN_URL))
        with caplog.at_level(logging.WARNING, "llmlab_server.ratelimit"):
            assert limiter.hit("k").allowed
            limiter._window = None  # type: ignore[assignment]  # any use would raise
            assert [limiter.hit("k").allowed for _ in range(3)] == [True, False, False]
            assert limiter.hit("other").allowed
        assert len(caplog.records) == 1 and "rate limit storage failed" in caplog.text

    def test_back_after_the_pause(self, redis_url: str, caplog: pytest.LogCaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
        """After the pause the storage is asked again; once it answers, limits apply again
        and its return is logged."""
        monkeypatch.setattr(ratelimit, "OUTAGE_PAUSE", 0.0)
        limiter = SharedLimiter(rate=0.01, burst=1, store=open_storage(DOWN_URL))
        with caplog.at_level(logging.WARNING, "llmlab_server.ratelimit"):
            assert limiter.hit("k").allowed and not limiter.hit("k").allowed  # the local bucket
            limiter._window = MovingWindowRateLimiter(open_storage(redis_url))
            assert limiter.hit("k").allowed and not limiter.hit("k").allowed
        assert [r.getMessage().endswith("storage is back") for r in caplog.records] == [False, True]

    def test_throttle_fails_open(self, caplog: pytest.LogCaptureFixture) -> None:
        """The failure throttle on a Redis that is down lets everyone try and logs once."""
        throttle = FailureThrottle("1 per minute", "1 per minute", DOWN_URL)
        with caplog.at_level(logging.WARNING, "llmlab_server.ratelimit"):
            throttle.failed("1.2.3.4", "a@example.com")
            throttle.failed("1.2.3.4", "a@example.com")
            assert throttle.wait("1.2.3.4", "a@example.com") == 0
            throttle.forget_account("a@example.com")
        assert len(caplog.records) == 1


class TestWiring:
    """create_app with LLMLAB_REDIS_URL."""

    @pytest.fixture
    def app_config(self, redis_url: str) -> dict[str, Any]:
        """Limits in Redis, with a burst of 2."""
        return {"REDIS_URL": redis_url, "RATE_LIMIT_BURST": 2, "RATE_LIMIT_PER_SECOND": 0.01}

    def test_limits_and_throttle_use_redis(self, app: Flask, redis_url: str) -> None:
        """The per-key/per-address limiter is shared, 429s past the burst, and the failure
        throttle counts in the same Redis."""
        assert isinstance(app.extensions["llmlab_limiter"], SharedLimiter)
        assert app.config["AUTH_THROTTLE_STORAGE"] == redis_url
        client = app.test_client()
        bad = {"Authorization": "Bearer llm_wrong"}
        statuses = [client.get("/api/events", headers=bad).status_code for _ in range(40)]
        assert statuses[-1] == 429  # the failure throttle, counted in Redis
        assert list(redis.Redis.from_url(redis_url).scan_iter())

    def test_per_address_limit_is_one_for_two_apps(self, app: Flask,
                                                   app_config: dict[str, Any]) -> None:
        """An address's burst spent on one app is spent on another sharing Redis (a second
        worker): it gets 429 with Retry-After and X-RateLimit-* headers there."""
        other = create_app(make_config(app.config["DATABASE_URL"], **app_config))
        first = app.test_client().post("/api/auth/login", json={})
        assert first.headers["X-RateLimit-Limit"] == "2"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert app.test_client().post("/api/auth/login", json={}).status_code != 429
        refused = other.test_client().post("/api/auth/login", json={})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        other.extensions["llmlab_db"][0].dispose()
