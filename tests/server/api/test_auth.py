"""/api/auth: signup, login, refresh rotation and reuse detection, logout, expiry, me."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from llmlab_server.models import utcnow
from llmlab_server.security import issue_access_token

from ..helpers import Api, from_address


class TestSignupLogin:
    """Accounts and credentials."""

    def test_signup_returns_a_working_session(self, api: Api) -> None:
        """Signup answers 201 with the user and tokens; the access token works on /me."""
        session = api.signup("Alice@Example.com")
        assert session["user"]["email"] == "alice@example.com"
        assert session["token_type"] == "Bearer" and session["expires_in"] == 900
        me = api.data("GET", "/api/auth/me", session["access_token"])
        assert me["kind"] == "user" and me["user"]["id"] == session["user"]["id"]

    def test_duplicate_email_is_409(self, api: Api) -> None:
        """Signing up twice with one email is a 409 email_taken."""
        api.signup("bob@example.com")
        response = api.call("POST", "/api/auth/signup", json_body={
            "email": "BOB@example.com", "password": "another password"})
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "email_taken"

    def test_short_password_is_400(self, api: Api) -> None:
        """A password under 10 characters is a 400 naming the field."""
        for password in ("short", "nine-char"):
            response = api.call("POST", "/api/auth/signup", json_body={
                "email": "c@example.com", "password": password})
            assert response.status_code == 400
            assert response.get_json()["error"]["param"] == "password"

    @pytest.mark.parametrize("password", ["password", "12345678", "1234567890", "Password123",
                                          " qwertyuiop ", "basketball", "zzzzzzzzzzzz",
                                          "mallory@example.com", "MALLORY@example.com "])
    def test_weak_passwords_are_refused(self, api: Api, password: str) -> None:
        """Common, repeated-character and own-email passwords are a 400 weak_password (or a
        400 for length) and create no account."""
        response = api.call("POST", "/api/auth/signup", json_body={
            "email": "mallory@example.com", "password": password})
        assert response.status_code == 400
        assert response.get_json()["error"]["param"] == "password"
        login = api.call("POST", "/api/auth/login", json_body={
            "email": "mallory@example.com", "password": password})
        assert login.status_code == 401

    def test_login_with_right_and_wrong_password(self, api: Api) -> None:
        """Login succeeds with the password and is a 401 with a wrong one or unknown email."""
        api.signup("dan@example.com", password="the right password")
        ok = api.data("POST", "/api/auth/login", json_body={
            "email": "dan@example.com", "password": "the right password"})
        assert ok["access_token"]
        for email, password in (("dan@example.com", "wrong"), ("nobody@example.com", "x")):
            response = api.call("POST", "/api/auth/login", json_body={
                "email": email, "password": password})
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "invalid_credentials"

    def test_password_is_stored_as_bcrypt(self, api: Api, app: Flask) -> None:
        """The stored password is a bcrypt hash, not the password."""
        from llmlab_server import db
        from llmlab_server.models import User

        api.signup("eve@example.com", password="plain text pw")
        with app.app_context():
            user = db.session().query(User).filter_by(email="eve@example.com").one()
            assert user.password_hash.startswith("$2") and "plain" not in user.password_hash


class TestRefresh:
    """Rotating refresh tokens."""

    def test_refresh_rotates_the_token(self, api: Api) -> None:
        """A refresh returns a new pair and the new refresh token works in turn."""
        first = api.signup()
        second = api.data("POST", "/api/auth/refresh", json_body={
            "refresh_token": first["refresh_token"]})
        assert second["refresh_token"] != first["refresh_token"]
        third = api.data("POST", "/api/auth/refresh", json_body={
            "refresh_token": second["refresh_token"]})
        assert api.data("GET", "/api/auth/me", third["access_token"])["kind"] == "user"

    def test_reusing_a_rotated_token_revokes_the_family(self, api: Api) -> None:
        """Presenting an already-rotated refresh token ends the whole session (all its tokens)."""
        first = api.signup()
        second = api.data("POST", "/api/auth/refresh", json_body={
            "refresh_token": first["refresh_token"]})
        reuse = api.call("POST", "/api/auth/refresh", json_body={
            "refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401
        assert reuse.get_json()["error"]["code"] == "refresh_token_reused"
        latest = api.call("POST", "/api/auth/refresh", json_body={
            "refresh_token": second["refresh_token"]})
        assert latest.status_code == 401
        me = api.call("GET", "/api/auth/me", second["access_token"])
        assert me.status_code == 401 and me.get_json()["error"]["code"] == "session_revoked"

    def test_other_sessions_survive_a_revoked_family(self, api: Api) -> None:
        """Revoking one login session leaves the user's other sessions working."""
        api.signup("f@example.com", password="password one")
        one = api.data("POST", "/api/auth/login", json_body={
            "email": "f@example.com", "password": "password one"})
        two = api.data("POST", "/api/auth/login", json_body={
            "email": "f@example.com", "password": "password one"})
        api.data("POST", "/api/auth/logout", json_body={"refresh_token": one["refresh_token"]})
        assert api.call("GET", "/api/auth/me", one["access_token"]).status_code == 401
        assert api.call("GET", "/api/auth/me", two["access_token"]).status_code == 200

    def test_unknown_refresh_token_is_401(self, api: Api) -> None:
        """A made-up refresh token is a 401."""
        response = api.call("POST", "/api/auth/refresh", json_body={"refresh_token": "rt_nope"})
        assert response.status_code == 401

    @pytest.mark.parametrize("app_config", [{"REFRESH_TOKEN_TTL": -1}])
    def test_expired_refresh_token_is_401(self, api: Api) -> None:
        """A refresh token past its lifetime is refused with refresh_token_expired."""
        session = api.signup()
        response = api.call("POST", "/api/auth/refresh", json_body={
            "refresh_token": session["refresh_token"]})
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "refresh_token_expired"


class TestAccessTokens:
    """Access JWTs: expiry, forgery, logout."""

    def test_expired_access_token_is_401(self, api: Api, app: Flask) -> None:
        """An access token past its 15 minutes is a 401 token_expired."""
        session = api.signup()
        claims_sid = api.data("GET", "/api/auth/me", session["access_token"])  # session exists
        assert claims_sid["kind"] == "user"
        import jwt

        sid = jwt.decode(session["access_token"], options={"verify_signature": False})["sid"]
        with app.app_context():
            old = issue_access_token(session["user"]["id"], sid,
                                     now=utcnow() - timedelta(minutes=16))
        response = api.call("GET", "/api/auth/me", old)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "token_expired"

    def test_forged_token_is_401(self, api: Api) -> None:
        """A JWT signed with another secret is a 401 invalid_token."""
        import jwt

        claims = {"sub": "1", "sid": "x", "iat": 0, "exp": 4102444800, "typ": "access"}
        forged = jwt.encode(claims, "another-secret-that-is-long-enough-0123456789",
                            algorithm="HS256")
        response = api.call("GET", "/api/auth/me", forged)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "invalid_token"

    def test_logout_with_access_token_ends_the_session(self, api: Api) -> None:
        """Logout by access token alone revokes that session's refresh and access tokens."""
        session = api.signup()
        api.data("POST", "/api/auth/logout", session["access_token"], json_body={})
        assert api.call("GET", "/api/auth/me", session["access_token"]).status_code == 401
        refresh = api.call("POST", "/api/auth/refresh", json_body={
            "refresh_token": session["refresh_token"]})
        assert refresh.status_code == 401

    def test_logout_without_anything_is_400(self, api: Api) -> None:
        """Logout with neither a refresh token nor an access token is a 400."""
        response = api.call("POST", "/api/auth/logout", json_body={})
        assert response.status_code == 400

    def test_me_with_an_api_key(self, api: Api) -> None:
        """/me with an API key describes the key (prefix, scopes) and its one project."""
        t = api.tenant()
        me = api.data("GET", "/api/auth/me", t.key)
        assert me["kind"] == "api_key" and me["user"] is None
        assert me["api_key"]["prefix"] == t.key[:12]
        assert [p["id"] for p in me["projects"]] == [t.project_id]

    def test_malformed_authorization_header_is_401(self, api: Api) -> None:
        """A non-bearer Authorization header is a 401 missing_credentials."""
        response = api.client.get("/api/auth/me", headers={"Authorization": "Basic abc"})
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "missing_credentials"



class TestGuessing:
    """Failed logins, refreshes and taken-email signups are throttled (429 + Retry-After)."""

    def test_one_account_is_locked_after_ten_failures_from_anywhere(self, api: Api) -> None:
        """Ten wrong passwords from ten addresses lock the account's logins (even the right
        password gets 429) while other accounts log in; unknown emails lock the same way."""
        api.signup("target@example.com", password="the real password")
        api.signup("bystander@example.com", password="another real password")
        for email in ("target@example.com", "nobody@example.com"):
            for n in range(10):
                response = api.call("POST", "/api/auth/login", json_body={
                    "email": email, "password": f"guess number {n}"}, **from_address(f"10.1.0.{n}"))
                assert response.status_code == 401, (email, n)
            locked = api.call("POST", "/api/auth/login", json_body={
                "email": email, "password": "the real password"}, **from_address("10.1.1.1"))
            assert locked.status_code == 429
            assert locked.get_json()["error"]["type"] == "rate_limit_error"
            assert 1 <= int(locked.headers["Retry-After"]) <= 900
        other = api.call("POST", "/api/auth/login", json_body={
            "email": "bystander@example.com", "password": "another real password"},
            **from_address("10.1.1.1"))
        assert other.status_code == 200

    def test_a_success_clears_the_accounts_failures(self, api: Api) -> None:
        """A user who mistypes nine times and then logs in starts again from zero."""
        api.signup("typo@example.com", password="the real password")
        for round_ in range(2):
            for n in range(9):
                assert api.call("POST", "/api/auth/login", json_body={
                    "email": "typo@example.com", "password": "wrong password"},
                    **from_address(f"10.2.{round_}.{n}")).status_code == 401
            assert api.call("POST", "/api/auth/login", json_body={
                "email": "typo@example.com", "password": "the real password"},
                **from_address("10.2.9.9")).status_code == 200

    def test_one_address_guessing_many_accounts_is_throttled(self, api: Api) -> None:
        """Thirty failed logins on thirty accounts lock the address, not the accounts."""
        api.signup("sprayed@example.com", password="the real password")
        for n in range(30):
            assert api.call("POST", "/api/auth/login", json_body={
                "email": f"user{n}@example.com", "password": "Summer2026!"},
                **from_address("10.3.0.1")).status_code == 401
        good = {"email": "sprayed@example.com", "password": "the real password"}
        assert api.call("POST", "/api/auth/login", json_body=good,
                        **from_address("10.3.0.1")).status_code == 429
        assert api.call("POST", "/api/auth/login", json_body=good,
                        **from_address("10.3.0.2")).status_code == 200

    def test_unknown_refresh_tokens_are_throttled(self, api: Api) -> None:
        """Guessing refresh tokens costs the address its allowance like any credential."""
        session = api.signup()
        for n in range(30):
            assert api.call("POST", "/api/auth/refresh", json_body={
                "refresh_token": f"rt_guess{n}"}, **from_address("10.4.0.1")).status_code == 401
        real = {"refresh_token": session["refresh_token"]}
        assert api.call("POST", "/api/auth/refresh", json_body=real,
                        **from_address("10.4.0.1")).status_code == 429
        assert api.call("POST", "/api/auth/refresh", json_body=real,
                        **from_address("10.4.0.2")).status_code == 200

    def test_probing_signups_for_registered_emails_is_throttled(self, api: Api) -> None:
        """Each 409 email_taken counts as a failure: the 31st probe is a 429."""
        emails = [api.signup()["user"]["email"] for _ in range(3)]
        for n in range(30):
            assert api.call("POST", "/api/auth/signup", json_body={
                "email": emails[n % 3], "password": "a good long password"},
                **from_address("10.5.0.1")).status_code == 409
        assert api.call("POST", "/api/auth/signup", json_body={
            "email": "fresh@example.com", "password": "a good long password"},
            **from_address("10.5.0.1")).status_code == 429

    @pytest.mark.parametrize("app_config", [{"AUTH_THROTTLE_PER_ACCOUNT": "2 per hour"}])
    def test_the_allowance_is_configurable(self, api: Api) -> None:
        """LLMLAB_AUTH_THROTTLE_PER_ACCOUNT sets the failures an account may have."""
        wrong = {"email": "cfg@example.com", "password": "wrong password"}
        codes = [api.call("POST", "/api/auth/login", json_body=wrong,
                          **from_address(f"10.6.0.{n}")).status_code for n in range(3)]
        assert codes == [401, 401, 429]
