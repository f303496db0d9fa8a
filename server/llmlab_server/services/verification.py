"""Email verification and password reset, by signed one-purpose tokens sent through the mailer.

Signup mails a verification token; ``POST /api/auth/verify-email`` redeems it. Invitations are
shown and answered only to verified users, and reset mails go only to verified addresses. A
reset request answers the same whatever the email (mail goes out on a background thread with
SMTP), a reset ends every session of the user, and its token stops working once used, because
it is bound to the password hash it replaces (`security.user_of_purpose_token`). Every mail
counts against the recipient's throttle allowance, and reset and resend requests against the
client's too, like failures, so nobody can flood a mailbox.
"""

from __future__ import annotations

import jwt
from flask import current_app
from sqlalchemy import select, update

from llmlab_server import db
from llmlab_server.errors import BadRequest, Forbidden
from llmlab_server.mail import Mail, mailer
from llmlab_server.models import RefreshToken, User, utcnow
from llmlab_server.schemas import UserOut
from llmlab_server.security import (
    hash_password,
    issue_purpose_token,
    password_problem,
    user_of_purpose_token,
)
from llmlab_server.services.access import (
    forget_account_failures,
    record_failure,
    refuse_if_throttled,
)

__all__ = ["confirm_reset", "request_reset", "require_verified", "send_invitation_mail",
           "send_verification", "spend_mail_allowance", "verify_email"]


def _send(to: str, subject: str, body: str) -> None:
    mailer(current_app).send(Mail(to, subject, body))


def spend_mail_allowance(email: str, *, client: bool = True) -> None:
    """Count one mail to ``email`` (429 past its allowance)."""
    # Mails spend the mailbox's allowance (and the client's, unless an admin sends
    # invitations), so nobody floods a mailbox.
    refuse_if_throttled(account=f"mail:{email}")
    record_failure(account=f"mail:{email}", client=client)


def _user(user_id: int) -> User | None:
    return db.session().get(User, user_id)


def require_verified(user: User) -> None:
    """403 ``email_unverified`` unless ``user`` verified their email address."""
    if user.email_verified_at is None:
        raise Forbidden("Verify your email address first (POST /api/auth/verify-email with "
                        "the token mailed to you; /api/auth/verify-email/resend sends another).",
                        code="email_unverified")


def send_verification(user: User, *, throttled: bool = True) -> None:
    """Mail ``user`` a verification token (nothing when already verified)."""
    if user.email_verified_at is not None:
        return
    if throttled:
        spend_mail_allowance(user.email)
    token = issue_purpose_token("verify_email", user)
    _send(user.email, "Verify your llmlab email address",
          "Confirm that this address is yours by sending this token to the server:\n\n"
          f"POST /api/auth/verify-email {{\"token\": \"{token}\"}}\n\ntoken: {token}\n\n"
          "It is valid for 2 days. If you did not sign up, ignore this mail.")


def verify_email(token: str) -> UserOut:
    """Mark the token's user verified; 400 ``invalid_verification_token`` otherwise."""
    refuse_if_throttled()
    try:
        user = user_of_purpose_token(token, "verify_email", _user)
    except jwt.InvalidTokenError:
        record_failure()
        raise BadRequest("This verification token is invalid, expired or outdated.",
                         code="invalid_verification_token", param="token") from None
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        db.session().commit()
    return UserOut.model_validate(user)


def request_reset(email: str) -> None:
    """Mail a reset token when ``email`` is a verified account; the same answer otherwise."""
    spend_mail_allowance(email)
    user = db.session().scalar(select(User).where(User.email == email))
    if user is None or user.email_verified_at is None:
        return
    token = issue_purpose_token("password_reset", user)
    _send(user.email, "Reset your llmlab password",
          "Someone (hopefully you) asked to reset your password. To choose a new one:\n\n"
          f"POST /api/auth/password-reset/confirm {{\"token\": \"{token}\", "
          "\"password\": \"…\"}\n\n"
          f"token: {token}\n\nIt is valid for 1 hour and works once. Otherwise ignore this mail.")


def confirm_reset(token: str, password: str) -> None:
    """Set a new password from a reset token and end every session of the user."""
    refuse_if_throttled()
    try:
        user = user_of_purpose_token(token, "password_reset", _user)
    except jwt.InvalidTokenError:
        record_failure()
        raise BadRequest("This reset token is invalid, expired or already used.",
                         code="invalid_reset_token", param="token") from None
    problem = password_problem(password, user.email)
    if problem is not None:
        raise BadRequest(f"password: {problem}.", code="weak_password", param="password")
    session = db.session()
    user.password_hash = hash_password(password)
    # Whoever knew the old password may hold a session: end them all.
    session.execute(update(RefreshToken).where(
        RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)
    ).values(revoked_at=utcnow()))
    session.commit()
    forget_account_failures(user.email)


def send_invitation_mail(email: str, project_name: str, role: str, inviter: str) -> None:
    """Tell ``email`` about an invitation (sent whether or not it has an account; the
    caller spent the mail allowance first)."""
    _send(email, f"You are invited to {project_name} on llmlab",
          f"{inviter} invites you to the project {project_name!r} as {role}.\n\n"
          "Sign up or log in with this address, verify it, then see GET /api/invitations to "
          "accept or decline. Nothing of the project is shared with you until you accept.")
