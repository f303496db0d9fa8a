"""Webhook signatures and the screening of internal addresses."""

from __future__ import annotations

import time

import pytest

from llmlab_server.services.webhooks import UnsafeURL, check_url, sign, verify, webhook_secret


class TestSignature:
    """Deliveries are signed with HMAC-SHA256 over ``timestamp + "." + body``."""

    def test_signature_is_hmac_sha256_of_timestamp_dot_body(self) -> None:
        """The header equals an independently computed HMAC."""
        import hashlib
        import hmac

        expected = hmac.new(b"whsec_x", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert sign("whsec_x", 1700000000, b"{}") == f"sha256={expected}"

    def test_verify_accepts_fresh_and_refuses_tampered_or_stale(self) -> None:
        """A changed body, a wrong secret or an old timestamp fail verification."""
        now = int(time.time())
        sig = sign("s", now, b"body")
        assert verify("s", str(now), b"body", sig)
        assert not verify("s", str(now), b"bodY", sig)
        assert not verify("t", str(now), b"body", sig)
        old = now - 3600
        assert not verify("s", str(old), b"body", sign("s", old, b"body"))
        assert not verify("s", "soon", b"body", sig)

    def test_secret_depends_on_server_key_and_salt(self) -> None:
        """Secrets differ per webhook and per server secret, and are stable."""
        a = webhook_secret("k1", "salt")
        assert a == webhook_secret("k1", "salt") and a.startswith("whsec_")
        assert a != webhook_secret("k2", "salt") != webhook_secret("k1", "other")


class TestScreening:
    """Internal addresses are refused unless explicitly allowed."""

    @pytest.mark.parametrize("url", [
        "http://127.0.0.1/hook", "http://localhost:8000/", "http://10.1.2.3/",
        "http://192.168.0.10/", "http://172.16.5.4/", "http://169.254.169.254/latest/meta-data",
        "http://[::1]/", "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/",
        "http://240.0.0.1/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        # 6to4 (2002::/16) embedding 169.254.169.254 and 127.0.0.1: "global" to Python 3.11.
        "http://[2002:a9fe:a9fe::]/", "http://[2002:7f00:1::]/",
    ])
    def test_internal_addresses_are_refused(self, url: str) -> None:
        """Loopback, private, link-local, multicast, reserved and mapped addresses fail,
        also inside an IPv6 form that carries an IPv4 address (mapped, 6to4, Teredo)."""
        with pytest.raises(UnsafeURL):
            check_url(url)

    @pytest.mark.parametrize("url", ["ftp://8.8.8.8/", "http:///nohost",
                                     "http://user:pw@8.8.8.8/", "http://no-such-host.invalid/"])
    def test_malformed_or_unresolvable_urls_are_refused(self, url: str) -> None:
        """Only http(s) URLs with a resolvable host and no credentials pass."""
        with pytest.raises(UnsafeURL):
            check_url(url)

    def test_public_address_passes(self) -> None:
        """A public address is accepted and pinned as the connection target."""
        target = check_url("https://8.8.8.8:8443/path?q=1")
        assert (target.address, target.port, target.path) == ("8.8.8.8", 8443, "/path?q=1")

    def test_allow_list_of_networks(self) -> None:
        """A CIDR allow-list admits loopback but still refuses other private ranges."""
        assert check_url("http://127.0.0.1:9/", "127.0.0.0/8,::1/128").address == "127.0.0.1"
        with pytest.raises(UnsafeURL):
            check_url("http://10.0.0.1/", "127.0.0.0/8")
        assert check_url("http://10.0.0.1/", True).address == "10.0.0.1"

    @pytest.mark.parametrize(("setting", "allowed"), [("on", True), ("Yes", True), ("1", True),
                                                      ("off", False), ("false", False),
                                                      ("0", False), ("", False)])
    def test_an_on_off_setting_takes_every_spelling(self, setting: str, allowed: bool) -> None:
        """A setting given as text (a config mapping) takes the on/off spellings every switch
        takes: `on` allows internal addresses, `off` refuses them (it is no CIDR list)."""
        if allowed:
            assert check_url("http://10.0.0.1/", setting).address == "10.0.0.1"
        else:
            with pytest.raises(UnsafeURL):
                check_url("http://10.0.0.1/", setting)
