"""``LLMLAB_TRUSTED_PROXIES``: behind N proxies, ``X-Forwarded-For`` names the client for the
failed-authentication throttle; without it the header is ignored, so it cannot be forged."""

from __future__ import annotations

from typing import Any

import pytest

from llmlab_server.config import Config, ConfigError

from .helpers import Api, from_address

#: The allowance of failures per client (Config.AUTH_THROTTLE_PER_CLIENT's default).
ALLOWED = 30
PROXY = "10.9.9.9"


def _guess(api: Api, forwarded_for: str, n: int = 0) -> int:
    """One wrong API key from ``forwarded_for`` through the proxy; the status."""
    return api.call("GET", "/api/auth/me", f"llm_guess{n:04d}",
                    headers={"X-Forwarded-For": forwarded_for},
                    **from_address(PROXY)).status_code


class TestBehindOneProxy:
    """``TRUSTED_PROXIES = 1``: the proxy's X-Forwarded-For entry is the client."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """One trusted hop."""
        return {"TRUSTED_PROXIES": 1}

    def test_clients_behind_the_proxy_have_their_own_allowance(self, api: Api) -> None:
        """One client's guesses through the proxy exhaust its allowance, not its neighbour's
        (before this setting, every client shared the proxy's)."""
        for n in range(ALLOWED):
            assert _guess(api, "203.0.113.7", n) == 401, n
        assert _guess(api, "203.0.113.7") == 429
        assert _guess(api, "198.51.100.20") == 401
        token = api.user()
        assert api.call("GET", "/api/auth/me", token, headers={
            "X-Forwarded-For": "198.51.100.20"}, **from_address(PROXY)).status_code == 200

    def test_only_the_trusted_hops_are_read(self, api: Api) -> None:
        """A client prepending its own X-Forwarded-For entries changes nothing: only the
        last (the proxy's own) is read."""
        for n in range(ALLOWED):
            assert _guess(api, f"192.0.2.{n}, 203.0.113.8", n) == 401, n
        assert _guess(api, "192.0.2.200, 203.0.113.8") == 429


class TestAddressRateLimit:
    """The per-address rate limit of unauthenticated routes (signup, login, ...) counts the
    forwarded client too, and an IPv6 client's whole /64."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """One trusted hop, a burst of 3 requests and a slow refill."""
        return {"TRUSTED_PROXIES": 1, "RATE_LIMIT_BURST": 3, "RATE_LIMIT_PER_SECOND": 0.01}

    def _login(self, api: Api, forwarded_for: str) -> int:
        return api.call("POST", "/api/auth/login", None,
                        {"email": "nobody@example.com", "password": "wrong password 1"},
                        headers={"X-Forwarded-For": forwarded_for},
                        **from_address(PROXY)).status_code

    def test_each_forwarded_client_has_its_own_bucket(self, api: Api) -> None:
        """A client's burst spent, it gets 429; its neighbour behind the proxy does not;
        rotating through its IPv6 /64 does not help."""
        for _ in range(3):
            assert self._login(api, "203.0.113.9") == 401
        assert self._login(api, "203.0.113.9") == 429
        assert self._login(api, "198.51.100.21") == 401
        for n in range(3):
            assert self._login(api, f"2001:db8:1:2::{n + 1:x}") == 401
        assert self._login(api, "2001:db8:1:2:ffff::1") == 429
        assert self._login(api, "2001:db8:1:3::1") == 401  # another /64


class TestWithoutProxies:
    """The default, 0: the socket's peer is the client; X-Forwarded-For is ignored."""

    def test_a_forged_forwarded_for_cannot_escape_the_throttle(self, api: Api) -> None:
        """A new X-Forwarded-For on every guess still spends the one address's allowance."""
        for n in range(ALLOWED):
            assert _guess(api, f"192.0.2.{n}", n) == 401, n
        assert _guess(api, "192.0.2.250") == 429
        assert api.call("GET", "/api/auth/me", "llm_other",
                        **from_address("10.9.9.10")).status_code == 401  # another peer


class TestSetting:
    """LLMLAB_TRUSTED_PROXIES is read and bounded."""

    def test_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A hop count is read; a negative one refuses to start."""
        assert Config().TRUSTED_PROXIES == 0
        monkeypatch.setenv("LLMLAB_TRUSTED_PROXIES", "2")
        assert Config.from_env().TRUSTED_PROXIES == 2
        monkeypatch.setenv("LLMLAB_TRUSTED_PROXIES", "-1")
        with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_PROXIES must be 0"):
            Config.from_env()
