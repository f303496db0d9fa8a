"""Accounts and login sessions: ``/api/auth/*``."""

from __future__ import annotations

from flask import Blueprint, Response, g

from llmlab_server.account_schemas import PasswordReset, PasswordResetRequest, VerifyEmail
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.schemas import (
    LoginRequest,
    LogoutRequest,
    Me,
    RefreshRequest,
    Session,
    SignupRequest,
    UserOut,
)
from llmlab_server.services import accounts, verification
from llmlab_server.services.access import require_user

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


@bp.post("/signup")
@operation(tag="auth", auth="none", ip_limited=True, body=SignupRequest, response=Session,
           status=201, errors=(409,))
def signup(body: SignupRequest) -> Response:
    """Create an account and log in."""
    return ok(accounts.signup(body), 201)


@bp.post("/login")
@operation(tag="auth", auth="none", ip_limited=True, body=LoginRequest, response=Session,
           errors=(401,))
def login(body: LoginRequest) -> Response:
    """Log in with email and password: an access token and a refresh token."""
    return ok(accounts.login(body))


@bp.post("/refresh")
@operation(tag="auth", auth="none", ip_limited=True, body=RefreshRequest, response=Session,
           errors=(401,))
def refresh(body: RefreshRequest) -> Response:
    """Exchange a refresh token for a new pair; reusing an old one ends the session."""
    return ok(accounts.refresh(body.refresh_token))


@bp.post("/logout")
@operation(tag="auth", auth="optional", body=LogoutRequest, response=None, errors=(401,))
def logout(body: LogoutRequest) -> Response:
    """End a session (by refresh token, or the caller's): its tokens stop working."""
    accounts.logout(g.get("principal"), body.refresh_token)
    return ok(None)


@bp.get("/me")
@operation(tag="auth", response=Me)
def me() -> Response:
    """The caller (user or API key) and the projects they can see."""
    return ok(accounts.me(principal()))


@bp.post("/verify-email")
@operation(tag="auth", auth="none", ip_limited=True, body=VerifyEmail, response=UserOut,
           errors=(400,))
def verify_email(body: VerifyEmail) -> Response:
    """Prove you read mail at your address, with the token mailed to it."""
    return ok(verification.verify_email(body.token))


@bp.post("/verify-email/resend")
@operation(tag="auth", auth="user", response=None, status=202)
def resend_verification() -> Response:
    """Mail the caller another verification token."""
    verification.send_verification(require_user(principal()))
    return ok(None, 202)


@bp.post("/password-reset")
@operation(tag="auth", auth="none", ip_limited=True, body=PasswordResetRequest, response=None,
           status=202)
def request_password_reset(body: PasswordResetRequest) -> Response:
    """Mail a reset token to a verified account; the answer is the same for any email."""
    verification.request_reset(body.email)
    return ok(None, 202)


@bp.post("/password-reset/confirm")
@operation(tag="auth", auth="none", ip_limited=True, body=PasswordReset, response=None,
           errors=(400,))
def confirm_password_reset(body: PasswordReset) -> Response:
    """Set a new password with a reset token; every session of the account ends."""
    verification.confirm_reset(body.token, body.password)
    return ok(None)
