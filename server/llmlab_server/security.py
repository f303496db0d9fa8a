"""Credentials: bcrypt passwords, access JWTs, refresh and API-key hashing, the caller.

API keys are ``llm_<random>``; only ``HMAC-SHA256(server secret, key)`` is stored (a fast keyed
hash, not bcrypt, because a key is checked on every request and has 256 bits of entropy).
Refresh tokens are random strings stored the same way.

Password policy (`password_problem`): at least `MIN_PASSWORD_LENGTH` characters, not one of the
common passwords shipped in ``data/common-passwords.txt`` (compared without case or surrounding
spaces), not the account's email or its local part, not one character repeated.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import bcrypt
import jwt
from flask import current_app

from llmlab_server.models import ApiKey, Project, User, utcnow

__all__ = [
    "KEY_PREFIX",
    "MIN_PASSWORD_LENGTH",
    "Principal",
    "decode_access_token",
    "hash_password",
    "hash_secret",
    "issue_access_token",
    "issue_purpose_token",
    "new_api_key",
    "new_refresh_token",
    "password_problem",
    "user_of_purpose_token",
    "verify_password",
]

KEY_PREFIX = "llm_"
_ALGORITHM = "HS256"
# A valid hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(4))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a logged-in user (JWT) or a project API key."""

    user: User | None = None
    key: ApiKey | None = None
    #: The API key's project, loaded with the key (None for a user).
    key_project: Project | None = None
    session_id: str | None = None

    @property
    def rate_key(self) -> str:
        """The rate-limit bucket of this caller."""
        return f"key:{self.key.id}" if self.key is not None else f"user:{self.user_id}"

    @property
    def user_id(self) -> int | None:
        """The user's id, None for an API key."""
        return self.user.id if self.user is not None else None


def hash_password(password: str) -> str:
    """A bcrypt hash at the configured cost."""
    rounds = int(current_app.config["BCRYPT_ROUNDS"])
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, hashed: str | None) -> bool:
    """True when ``password`` matches ``hashed`` (constant work when there is no user)."""
    if hashed is None:
        bcrypt.checkpw(password.encode()[:72], _DUMMY_HASH)
        return False
    return bcrypt.checkpw(password.encode()[:72], hashed.encode())


#: Shortest accepted new password, in characters (the wire schema says the same).
MIN_PASSWORD_LENGTH = 10


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("llmlab_server").joinpath("data/common-passwords.txt").read_text(
        "utf-8")
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why ``password`` may not be set (one sentence), or None when it is acceptable."""
    folded = password.strip().lower()
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters"
    if len(password.encode()) > 72:
        return "use at most 72 bytes (a bcrypt limit)"
    if folded in _common_passwords():
        return "this is one of the most common passwords; choose another"
    if email and folded in (email.lower(), email.lower().partition("@")[0]):
        return "do not use your email address as your password"
    if len(set(folded)) == 1:
        return "do not repeat one character"
    return None


def hash_secret(value: str) -> str:
    """``HMAC-SHA256(SECRET_KEY, value)`` in hex: how API keys and refresh tokens are stored."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (the key, shown once; its display prefix; its stored hash)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:12], hash_secret(key)


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and its stored hash."""
    token = "rt_" + secrets.token_urlsafe(32)
    return token, hash_secret(token)


def issue_access_token(user_id: int, session_id: str, now: datetime | None = None) -> str:
    """A signed access JWT for ``user_id`` in login session ``session_id``."""
    issued = now or utcnow()
    ttl = timedelta(seconds=int(current_app.config["ACCESS_TOKEN_TTL"]))
    claims = {"sub": str(user_id), "sid": session_id, "iat": issued, "exp": issued + ttl,
              "typ": "access"}
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=_ALGORITHM)


#: One-purpose tokens mailed to a user, and how long each stays valid.
PURPOSES = {"verify_email": timedelta(days=2), "password_reset": timedelta(hours=1)}


def _fingerprint(user: User) -> str:
    # Binds a token to the user's current email and password hash: a reset token stops
    # working once used (the hash changes), a verification once the email changes.
    text = f"{user.email}\x00{user.password_hash}"
    return hash_secret(text)[:32]


def issue_purpose_token(purpose: str, user: User, now: datetime | None = None) -> str:
    """A signed token for ``purpose`` (a key of `PURPOSES`) and ``user``, to be mailed."""
    issued = now or utcnow()
    claims = {"sub": str(user.id), "typ": purpose, "fp": _fingerprint(user), "iat": issued,
              "exp": issued + PURPOSES[purpose]}
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=_ALGORITHM)


def user_of_purpose_token(token: str, purpose: str, load: Callable[[int], User | None]
                          ) -> User:
    """The user a ``purpose`` token was issued to (``load`` fetches them by id), while it
    still fits their email and password; raises ``jwt.InvalidTokenError`` otherwise."""
    claims = jwt.decode(token, current_app.config["SECRET_KEY"], algorithms=[_ALGORITHM],
                        options={"require": ["sub", "typ", "fp", "exp"]})
    if claims.get("typ") != purpose or not str(claims["sub"]).isdigit():
        raise jwt.InvalidTokenError("not a token for this purpose")
    user = load(int(claims["sub"]))
    if user is None or not hmac.compare_digest(str(claims["fp"]), _fingerprint(user)):
        raise jwt.InvalidTokenError("used, or issued before the email or password changed")
    return user


def decode_access_token(token: str) -> dict[str, Any]:
    """The verified claims of an access JWT; raises ``jwt.InvalidTokenError``."""
    claims: dict[str, Any] = jwt.decode(
        token, current_app.config["SECRET_KEY"], algorithms=[_ALGORITHM],
        options={"require": ["sub", "sid", "exp", "iat"]})
    if claims.get("typ") != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims
