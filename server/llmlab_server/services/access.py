"""Who the caller is, and which projects they may see: every query is scoped through here.

Naming a project the caller cannot see answers 404 (never 403), so one tenant cannot learn
whether another tenant's project, key or event exists. 403 is kept for a visible project where
the caller's role or the key's scope is too low.

Failed authentication is throttled here too (`refuse_if_throttled`, `record_failure`): a client
address past its allowance of failures gets 429 *before* its credentials are checked, whatever
they are, so a guess cannot be confirmed by a different answer while it is locked out.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Literal

import jwt
from flask import current_app, request
from sqlalchemy import bindparam, select, update

from llmlab_server import db
from llmlab_server.errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from llmlab_server.models import ApiKey, Project, ProjectMember, RefreshToken, User, utcnow
from llmlab_server.ratelimit import FailureThrottle, client_bucket
from llmlab_server.security import KEY_PREFIX, Principal, decode_access_token, hash_secret

__all__ = ["ROLE_RANK", "AuthMode", "authenticate", "forget_account_failures", "ingest_project",
           "project_for", "project_ids_for", "record_failure", "refuse_if_throttled",
           "require_user", "role_in"]

AuthMode = Literal["none", "optional", "user", "any"]
ROLE_RANK = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}
_TOUCH_EVERY = timedelta(seconds=60)
#: A key and its project (so that `project_for` needs no second query), by the key's hash.
#: Built once: building and hashing the statement cost more than running it.
_KEY_AND_PROJECT = (select(ApiKey, Project).join(Project, Project.id == ApiKey.project_id)
                    .where(ApiKey.key_hash == bindparam("key_hash")))


_THROTTLE_LOCK = threading.Lock()


def _throttle() -> FailureThrottle:
    # Built on first use, not in create_app: after gunicorn forks, with the worker's threads.
    throttle: FailureThrottle | None = current_app.extensions.get("llmlab_auth_throttle")
    if throttle is None:
        with _THROTTLE_LOCK:
            throttle = current_app.extensions.get("llmlab_auth_throttle")
            if throttle is None:
                config = current_app.config
                throttle = FailureThrottle(config["AUTH_THROTTLE_PER_CLIENT"],
                                           config["AUTH_THROTTLE_PER_ACCOUNT"],
                                           config["AUTH_THROTTLE_STORAGE"])
                current_app.extensions["llmlab_auth_throttle"] = throttle
    return throttle


def refuse_if_throttled(account: str | None = None) -> None:
    """429 (with ``Retry-After``) when this client, or ``account``, failed too often lately."""
    wait = _throttle().wait(client_bucket(request.remote_addr), account)
    if wait:
        raise RateLimited(f"Too many failed sign-in attempts; retry in {wait} s.",
                          code="too_many_failures", headers={"Retry-After": str(wait)})


def record_failure(account: str | None = None, *, client: bool = True) -> None:
    """Count a failed authentication against this client (unless ``client`` is False) and
    ``account``."""
    _throttle().failed(client_bucket(request.remote_addr) if client else None, account)


def forget_account_failures(account: str) -> None:
    """Clear ``account``'s failures after it logged in."""
    _throttle().forget_account(account)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <access token or API key>'.",
                           code="missing_credentials")
    return token.strip()


def authenticate(mode: AuthMode, scope: str | None = None) -> Principal:
    """The caller of the current request; raises 401 (bad credentials) or 403 (wrong kind)."""
    token = _bearer()
    refuse_if_throttled()
    if token.startswith(KEY_PREFIX):
        if mode == "user":
            raise Forbidden("This endpoint needs a user login, not an API key.",
                            code="user_required")
        return _api_key(token, scope)
    return _user(token)


def _api_key(token: str, scope: str | None) -> Principal:
    session = db.session()
    found = session.execute(_KEY_AND_PROJECT, {"key_hash": hash_secret(token)}).first()
    key, project = found if found is not None else (None, None)
    if key is None:
        # Only a key we never issued is a guess: a revoked one left in some deployment must
        # not lock out the other applications on its host.
        record_failure()
    if key is None or key.revoked_at is not None:
        raise Unauthorized("Invalid or revoked API key.", code="invalid_api_key")
    if scope is not None and scope not in key.scope_set:
        raise Forbidden(f"This API key lacks the '{scope}' scope.", code="insufficient_scope")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
        # Throttled: a write per request would double the cost of every ingest.
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        session.commit()
    return Principal(key=key, key_project=project)


def _user(token: str) -> Principal:
    try:
        claims = decode_access_token(token)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The access token has expired; refresh it.",
                           code="token_expired") from None
    except jwt.InvalidTokenError:
        # A bad signature is a guess; expired or revoked tokens are ours, and cost nothing.
        record_failure()
        raise Unauthorized("Invalid access token.", code="invalid_token") from None
    session = db.session()
    try:
        user = session.get(User, int(claims["sub"]))
    except (TypeError, ValueError):
        user = None
    # The session must be this user's: a token naming another user's session is refused.
    live = user is not None and session.scalar(select(RefreshToken.id).where(
        RefreshToken.family_id == str(claims["sid"]), RefreshToken.user_id == user.id,
        RefreshToken.revoked_at.is_(None)).limit(1)) is not None
    if user is None or not live:
        raise Unauthorized("This session has ended; log in again.", code="session_revoked")
    return Principal(user=user, session_id=str(claims["sid"]))


def require_user(principal: Principal) -> User:
    """The principal's user; API keys get 403."""
    if principal.user is None:
        raise Forbidden("This endpoint needs a user login, not an API key.", code="user_required")
    return principal.user


def role_in(principal: Principal, project_id: int) -> str | None:
    """The user's role in the project (None when not a member or not a user)."""
    if principal.user is None:
        return None
    return db.session().scalar(select(ProjectMember.role).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == principal.user.id))


def project_for(principal: Principal, project_id: int, *, role: str = "viewer",
                scope: str = "read") -> Project:
    """The project if the caller may see it (else 404) with at least ``role``/``scope`` (403)."""
    session = db.session()
    if principal.key is not None:
        if principal.key.project_id != project_id:
            raise NotFound("No such project.", param="project")
        if scope not in principal.key.scope_set:
            raise Forbidden(f"This API key lacks the '{scope}' scope.",
                            code="insufficient_scope")
        project = principal.key_project or session.get(Project, project_id)
    else:
        current = role_in(principal, project_id)
        if current is None:
            raise NotFound("No such project.", param="project")
        if ROLE_RANK[current] < ROLE_RANK[role]:
            raise Forbidden(f"This needs the '{role}' role in the project; you are '{current}'.",
                            code="insufficient_role")
        project = session.get(Project, project_id)
    if project is None:
        raise NotFound("No such project.", param="project")
    return project


def project_ids_for(principal: Principal, project_id: int | None = None,
                    scope: str = "read") -> list[int]:
    """The projects a read covers: the one named (checked) or every visible one."""
    if project_id is not None:
        return [project_for(principal, project_id, scope=scope).id]
    if principal.key is not None:
        if scope not in principal.key.scope_set:
            raise Forbidden(f"This API key lacks the '{scope}' scope.",
                            code="insufficient_scope")
        return [principal.key.project_id]
    user = require_user(principal)
    return list(db.session().scalars(
        select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))


def ingest_project(principal: Principal, project_id: int | None) -> Project:
    """Where the caller's events go: the API key's project, or ``project_id`` for a member."""
    if principal.key is not None:
        return project_for(principal, project_id or principal.key.project_id, scope="ingest")
    if project_id is None:
        raise BadRequest("Users ingest with ?project=<id>; API keys imply their project.",
                         code="project_required", param="project")
    return project_for(principal, project_id, role="member")
