"""Passwords, tokens and key hashing."""

from __future__ import annotations

import jwt
import pytest
from flask import Flask

from llmlab_server.security import (
    decode_access_token,
    hash_password,
    hash_secret,
    issue_access_token,
    new_api_key,
    password_problem,
    verify_password,
)


@pytest.fixture
def ctx(app: Flask):  # type: ignore[no-untyped-def]
    """An app context."""
    with app.app_context():
        yield


@pytest.mark.usefixtures("ctx")
class TestSecurity:
    """Credential primitives."""

    def test_password_round_trip(self) -> None:
        """A bcrypt hash verifies its password only; a missing user never verifies."""
        hashed = hash_password("hunter2hunter2")
        assert verify_password("hunter2hunter2", hashed)
        assert not verify_password("wrong", hashed)
        assert not verify_password("hunter2hunter2", None)

    def test_api_keys_are_random_and_hmac_hashed(self) -> None:
        """Keys start with llm_, are unique, and hash to a 64-hex HMAC that depends on the secret."""
        key, prefix, digest = new_api_key()
        other, _, _ = new_api_key()
        assert key.startswith("llm_") and key != other and prefix == key[:12]
        assert digest == hash_secret(key) and len(digest) == 64 and key not in digest

    def test_access_token_claims(self) -> None:
        """An access token carries the user and session and decodes with the server secret."""
        claims = decode_access_token(issue_access_token(42, "sess"))
        assert claims["sub"] == "42" and claims["sid"] == "sess" and claims["typ"] == "access"
        assert claims["exp"] - claims["iat"] == 900

    def test_token_of_another_type_is_refused(self, app: Flask) -> None:
        """A JWT signed by us but without typ=access is not an access token."""
        token = jwt.encode({"sub": "1", "sid": "s", "iat": 0, "exp": 4102444800},
                           app.config["SECRET_KEY"], algorithm="HS256")
        with pytest.raises(jwt.InvalidTokenError):
            decode_access_token(token)


class TestPasswordPolicy:
    """password_problem: the rules a new password must pass."""

    @pytest.mark.parametrize(("password", "why"), [
        ("short", "at least 10"), ("é" * 37, "72 bytes"), ("PASSWORD123", "most common"),
        ("  iloveyou12  ", "most common"), ("ann@example.com", "email"),
        ("ANN@example.com", "email"), ("annexample", None), ("aaaaaaaaaaaa", "repeat"),
        ("correct horse battery", None)])
    def test_rules(self, password: str, why: str | None) -> None:
        """Each rule names itself; a long uncommon password passes."""
        problem = password_problem(password, "ann@example.com")
        assert (problem is None) if why is None else (why in (problem or ""))

    def test_local_part_of_the_email_is_refused(self) -> None:
        """The email's local part alone is refused when it is long enough to be a password."""
        assert "email" in (password_problem("annabellee", "annabellee@example.com") or "")
