"""Wire schemas of sign-up, login, token refresh and logout, and the user they answer with."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from llmlab_server.common_schemas import Email, Name, Password, _In, _Out

__all__ = ["LoginRequest", "LogoutRequest", "RefreshRequest", "Session", "SignupRequest",
           "UserOut"]


class SignupRequest(_In):
    """A new account."""

    email: Email
    password: Password
    name: Name | None = None


class LoginRequest(_In):
    """Credentials for a new session."""

    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshRequest(_In):
    """A refresh token to exchange for a new pair (the old one stops working)."""

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LogoutRequest(_In):
    """The session to end, named by its refresh token (optional with an access token)."""

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


class UserOut(_Out):
    """A user account."""

    id: int
    email: str
    name: str | None
    created_at: datetime
    email_verified: bool = False


class Session(BaseModel):
    """Tokens of a login session: a short-lived access JWT and a rotating refresh token."""

    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
