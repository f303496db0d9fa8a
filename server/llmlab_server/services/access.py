"""Who the caller is, and which projects they may see: every query is scoped through here.

Naming a project the caller cannot see answers 404 (never 403), so one tenant cannot learn
whether another tenant's project, key or event exists. 403 is kept for a visible project where
the caller's role or the key's scope is too low.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import jwt
from flask import request
from sqlalchemy import bindparam, select, update

from llmlab_server import db
from llmlab_server.errors import BadRequest, Forbidden, NotFound, Unauthorized
from llmlab_server.models import ApiKey, Project, ProjectMember, RefreshToken, User, utcnow
from llmlab_server.security import KEY_PREFIX, Principal, decode_access_token, hash_secret

__all__ = ["ROLE_RANK", "AuthMode", "authenticate", "ingest_project", "project_for", "project_ids_for",
           "require_user", "role_in"]

AuthMode = Literal["none", "optional", "user", "any"]
ROLE_RANK = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}
_TOUCH_EVERY = timedelta(seconds=60)
#: A key and its project (so that `project_for` needs no second query), by the key's hash.
#: Built once: building and hashing the statement cost more than running it.
_KEY_AND_PROJECT = (select(ApiKey, Project).join(Project, Project.id == ApiKey.project_id)
                    .where(ApiKey.key_hash == bindparam("key_hash")))


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
        raise Unauthorized("Invalid access token.", code="invalid_token") from None
    session = db.session()
    try:
        user = session.get(User, int(claims["sub"]))
    except (TypeError, ValueError):
        user = None
    live = session.scalar(select(RefreshToken.id).where(
        RefreshToken.family_id == str(claims["sid"]),
        RefreshToken.revoked_at.is_(None)).limit(1))
    if user is None or live is None:
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
