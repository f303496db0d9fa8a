"""services/access.py: the failed-authentication throttle on bearer credentials, and sessions
bound to their user."""

from __future__ import annotations

import jwt
from flask import Flask

from llmlab_server.security import issue_access_token

from ..helpers import Api, from_address

#: The default allowance of failures per client address (Config.AUTH_THROTTLE_PER_CLIENT).
ALLOWED = 30



class TestBearerThrottle:
    """Wrong API keys and access tokens cost the client address its allowance."""

    def test_wrong_api_keys_are_throttled_then_even_a_valid_key_waits(self, api: Api) -> None:
        """After 30 wrong keys an address gets 429 with Retry-After, for a valid key too (no
        oracle), while another address is unaffected."""
        t = api.tenant()
        for n in range(ALLOWED):
            response = api.call("GET", "/api/auth/me", f"llm_guess{n:04d}", **from_address("10.0.0.1"))
            assert response.status_code == 401, n
        refused = api.call("GET", "/api/auth/me", "llm_guess-next", **from_address("10.0.0.1"))
        assert refused.status_code == 429
        body = refused.get_json()
        assert body["success"] is False and body["error"]["type"] == "rate_limit_error"
        assert body["error"]["code"] == "too_many_failures"
        assert 1 <= int(refused.headers["Retry-After"]) <= 300
        assert api.call("GET", "/api/auth/me", t.key, **from_address("10.0.0.1")).status_code == 429
        assert api.call("GET", "/api/auth/me", t.key, **from_address("10.0.0.2")).status_code == 200

    def test_bad_access_tokens_are_throttled(self, api: Api) -> None:
        """Forged or garbage JWTs count as failures like wrong keys do."""
        token = api.user()
        for n in range(ALLOWED):
            garbage = "eyJ" + "x" * n
            assert api.call("GET", "/api/auth/me", garbage,
                            **from_address("10.0.0.3")).status_code == 401
        assert api.call("GET", "/api/auth/me", "eyJnext", **from_address("10.0.0.3")).status_code == 429
        assert api.call("GET", "/api/auth/me", token, **from_address("10.0.0.3")).status_code == 429

    def test_ipv6_clients_are_counted_per_64(self, api: Api) -> None:
        """Rotating addresses inside one IPv6 /64 does not buy more guesses."""
        for n in range(ALLOWED):
            assert api.call("GET", "/api/auth/me", "llm_x",
                            **from_address(f"2001:db8::{n + 1:x}")).status_code == 401
        assert api.call("GET", "/api/auth/me", "llm_x",
                        **from_address("2001:db8::ffff")).status_code == 429
        assert api.call("GET", "/api/auth/me", "llm_x",
                        **from_address("2001:db8:0:1::1")).status_code == 401

    def test_only_guesses_cost_the_allowance(self, api: Api) -> None:
        """Valid calls, missing headers, a revoked key and a logged-out session's token (all
        ours, not guesses) never reach 429, so one stale deployment cannot lock out its host."""
        t = api.tenant()
        revoked = api.key(t.token, t.project_id)
        key_id = api.data("GET", "/api/keys", t.token)[-1]["id"]
        api.data("DELETE", f"/api/keys/{key_id}", t.token)
        ended = api.signup()
        api.data("POST", "/api/auth/logout", ended["access_token"], json_body={})
        here = from_address("10.0.0.4")
        for _ in range(ALLOWED + 5):
            assert api.call("GET", "/api/auth/me", t.key, **here).status_code == 200
            assert api.client.get("/api/auth/me", **here).status_code == 401
            assert api.call("GET", "/api/auth/me", revoked, **here).status_code == 401
            assert api.call("GET", "/api/auth/me", ended["access_token"],
                            **here).status_code == 401


class TestSessionBinding:
    """An access token's session (sid) must belong to its user (sub)."""

    def test_a_token_naming_another_users_session_is_refused(self, api: Api, app: Flask
                                                              ) -> None:
        """A token for user B carrying user A's live session id is a 401 session_revoked."""
        alice, bob = api.signup(), api.signup()
        alice_sid = jwt.decode(alice["access_token"], options={"verify_signature": False})["sid"]
        with app.app_context():
            crossed = issue_access_token(bob["user"]["id"], alice_sid)
        response = api.call("GET", "/api/auth/me", crossed)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "session_revoked"
        assert api.call("GET", "/api/auth/me", alice["access_token"]).status_code == 200
