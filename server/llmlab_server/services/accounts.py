"""Users and login sessions: signup, login, rotating refresh tokens, logout.

A login opens a session (``family_id``) holding one live refresh token at a time. Each refresh
rotates it: the presented token is marked rotated and a new one is issued. Presenting a rotated
token again means it was stolen (or replayed), so the whole family is revoked and both parties
must log in again. Logout revokes the family; access tokens carry the family id (``sid``) and
stop working with it.

Failed logins count against the client address and the account (`access.record_failure`); so
do unknown refresh tokens and signups of a taken email (the one answer that tells an email is
registered). New passwords must pass `security.password_problem`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from llmlab_server import db
from llmlab_server.errors import BadRequest, Conflict, Unauthorized
from llmlab_server.models import ApiKey, Project, ProjectMember, RefreshToken, User, utcnow
from llmlab_server.schemas import (
    ApiKeyOut,
    LoginRequest,
    Me,
    ProjectOut,
    Session,
    SignupRequest,
    UserOut,
)
from llmlab_server.security import (
    Principal,
    hash_password,
    hash_secret,
    issue_access_token,
    new_refresh_token,
    password_problem,
    verify_password,
)
from llmlab_server.services.access import (
    forget_account_failures,
    record_failure,
    refuse_if_throttled,
)
from llmlab_server.services.verification import send_verification

__all__ = ["key_out", "login", "logout", "me", "refresh", "revoke_family", "signup"]


def _check_password(password: str, email: str) -> None:
    problem = password_problem(password, email)
    if problem is not None:
        raise BadRequest(f"password: {problem}.", code="weak_password", param="password")


def signup(body: SignupRequest) -> Session:
    """Create a user and open their first session; 409 when the email is taken."""
    refuse_if_throttled()
    _check_password(body.password, body.email)
    session = db.session()
    user = User(email=body.email, name=body.name, password_hash=hash_password(body.password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        record_failure()  # probing for registered emails costs the same as guessing passwords
        raise Conflict("An account with this email exists already.", code="email_taken",
                       param="email") from None
    result = _open_session(user)
    session.commit()
    send_verification(user, throttled=False)  # signup itself is limited per address
    return result


def login(body: LoginRequest) -> Session:
    """Open a session for valid credentials; 401 otherwise (same answer for unknown emails)."""
    # Unknown emails are counted like known ones, so the throttle tells nothing either.
    refuse_if_throttled(account=body.email)
    session = db.session()
    user = session.scalar(select(User).where(User.email == body.email))
    if not verify_password(body.password, user.password_hash if user else None) or user is None:
        record_failure(account=body.email)
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    forget_account_failures(body.email)
    result = _open_session(user)
    session.commit()
    return result


def refresh(token: str, now: datetime | None = None) -> Session:
    """Rotate a refresh token; reuse of a rotated one revokes its whole session."""
    refuse_if_throttled()
    session = db.session()
    now = now or utcnow()
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_secret(token)))
    if row is None:
        record_failure()
        raise Unauthorized("Invalid refresh token.", code="invalid_refresh_token")
    if row.revoked_at is not None:
        raise Unauthorized("This session has ended; log in again.", code="session_revoked")
    if row.rotated_at is not None:
        revoke_family(row.family_id, now)
        session.commit()
        raise Unauthorized("This refresh token was already used; the session is revoked. "
                           "Log in again.", code="refresh_token_reused")
    if row.expires_at <= now:
        raise Unauthorized("The refresh token has expired; log in again.",
                           code="refresh_token_expired")
    # Conditional update: of two concurrent refreshes with one token, exactly one wins.
    won = session.execute(update(RefreshToken).where(
        RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None)).values(rotated_at=now))
    if won.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(row.family_id, now)
        session.commit()
        raise Unauthorized("This refresh token was already used; the session is revoked.",
                           code="refresh_token_reused")
    user = session.get(User, row.user_id)
    assert user is not None  # cascade deletes tokens with their user
    result = _open_session(user, row.family_id, now)
    session.commit()
    return result


def logout(principal: Principal | None, token: str | None) -> None:
    """End the session named by the refresh token, or the caller's current session."""
    session = db.session()
    family: str | None = None
    if token is not None:
        refuse_if_throttled()
        family = session.scalar(select(RefreshToken.family_id).where(
            RefreshToken.token_hash == hash_secret(token)))
        if family is None:
            record_failure()
            raise Unauthorized("Invalid refresh token.", code="invalid_refresh_token")
    elif principal is not None and principal.session_id is not None:
        family = principal.session_id
    if family is None:
        raise BadRequest("Send the refresh_token to end, or an access token.",
                         code="refresh_token_required", param="refresh_token")
    revoke_family(family)
    session.commit()


def revoke_family(family_id: str, now: datetime | None = None) -> None:
    """Revoke every refresh token of a session (and so its access tokens)."""
    db.session().execute(update(RefreshToken).where(
        RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)
    ).values(revoked_at=now or utcnow()))


def _open_session(user: User, family_id: str | None = None, now: datetime | None = None
                  ) -> Session:
    now = now or utcnow()
    family = family_id or str(uuid.uuid4())
    token, token_hash = new_refresh_token()
    ttl = timedelta(seconds=int(current_app.config["REFRESH_TOKEN_TTL"]))
    db.session().add(RefreshToken(user_id=user.id, family_id=family, token_hash=token_hash,
                                  created_at=now, expires_at=now + ttl))
    db.session().flush()
    return Session(user=UserOut.model_validate(user),
                   access_token=issue_access_token(user.id, family, now),
                   refresh_token=token, expires_in=int(current_app.config["ACCESS_TOKEN_TTL"]))


def key_out(key: ApiKey) -> ApiKeyOut:
    """The public view of a key (no secret)."""
    return ApiKeyOut(id=key.id, project_id=key.project_id, name=key.name, prefix=key.prefix,
                     scopes=key.scopes.split(), created_at=key.created_at,  # type: ignore[arg-type]
                     last_used_at=key.last_used_at, revoked_at=key.revoked_at)


def me(principal: Principal) -> Me:
    """The caller and the projects they can see."""
    session = db.session()
    if principal.key is not None:
        project = session.get(Project, principal.key.project_id)
        projects = [ProjectOut.model_validate(project)] if project else []
        return Me(kind="api_key", user=None, api_key=key_out(principal.key), projects=projects)
    assert principal.user is not None
    rows = session.execute(select(Project, ProjectMember.role).join(
        ProjectMember, ProjectMember.project_id == Project.id).where(
        ProjectMember.user_id == principal.user.id).order_by(Project.id)).all()
    projects = [ProjectOut(id=p.id, name=p.name, slug=p.slug, timezone=p.timezone,
                           created_at=p.created_at, role=role) for p, role in rows]  # type: ignore[arg-type]
    return Me(kind="user", user=UserOut.model_validate(principal.user), api_key=None,
              projects=projects)
