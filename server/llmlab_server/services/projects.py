"""Projects, their members and their API keys — always through `access` checks.

Members join by accepting an invitation (`llmlab_server.services.invitations`), never directly.
"""

from __future__ import annotations

import functools
import re
import secrets
import zoneinfo
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError

from llmlab_server import db
from llmlab_server.errors import BadRequest, Conflict, Forbidden, NotFound
from llmlab_server.models import ApiKey, Project, ProjectMember, User, utcnow
from llmlab_server.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    MemberOut,
    MemberUpdate,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
)
from llmlab_server.security import Principal, new_api_key
from llmlab_server.services.access import (
    ROLE_RANK,
    project_for,
    project_ids_for,
    record_failure,
    require_user,
    role_in,
)
from llmlab_server.services.accounts import key_out

__all__ = [
    "check_grantable", "check_timezone", "create_key", "create_project", "delete_project",
    "get_project", "list_keys", "list_members", "list_projects", "remove_member", "revoke_key",
    "update_member", "update_project",
]


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-")
    return slug or "project"


def _out(project: Project, role: str | None) -> ProjectOut:
    return ProjectOut(id=project.id, name=project.name, slug=project.slug,
                      timezone=project.timezone, created_at=project.created_at,
                      role=role)  # type: ignore[arg-type]


@functools.cache
def _zone_names() -> frozenset[str]:
    # Not the host's own ``localtime`` nor tzdata's placeholder: browsers know neither.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory"}


def check_timezone(name: str) -> str:
    """``name`` when it is an IANA zone the server knows; 400 ``invalid_timezone`` if not."""
    if name not in _zone_names():
        raise BadRequest(f"Unknown time zone {name!r}; use an IANA name such as "
                         "'Europe/Paris'.", code="invalid_timezone", param="timezone")
    return name


def create_project(principal: Principal, body: ProjectCreate) -> ProjectOut:
    """Create a project owned by the calling user; 409 when the slug is taken."""
    user = require_user(principal)
    session = db.session()
    slug = body.slug or f"{_slugify(body.name)}-{secrets.token_hex(3)}"
    project = Project(name=body.name, slug=slug, timezone=check_timezone(body.timezone))
    session.add(project)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        # Slugs are global names (budget reads and the SDK name projects by them), so a taken
        # one cannot be hidden; probing for them is throttled like guessing credentials.
        record_failure()
        raise Conflict("A project with this slug exists already.", code="slug_taken",
                       param="slug") from None
    session.add(ProjectMember(project_id=project.id, user_id=user.id, role="owner"))
    session.commit()
    return _out(project, "owner")


def list_projects(principal: Principal) -> list[ProjectOut]:
    """Every project the caller can see."""
    ids = project_ids_for(principal)
    projects = db.session().scalars(select(Project).where(Project.id.in_(ids))
                                    .order_by(Project.id))
    return [_out(p, role_in(principal, p.id)) for p in projects]


def get_project(principal: Principal, project_id: int) -> ProjectOut:
    """One visible project."""
    return _out(project_for(principal, project_id), role_in(principal, project_id))


def update_project(principal: Principal, project_id: int, body: ProjectUpdate) -> ProjectOut:
    """Rename a project or change its time zone (admin or owner)."""
    require_user(principal)
    project = project_for(principal, project_id, role="admin")
    if body.name is not None:
        project.name = body.name
    if body.timezone is not None:
        project.timezone = check_timezone(body.timezone)
    db.session().commit()
    return _out(project, role_in(principal, project_id))


def delete_project(principal: Principal, project_id: int) -> None:
    """Delete a project with its events, rollups, keys and memberships (owner only)."""
    require_user(principal)
    project_for(principal, project_id, role="owner")
    session = db.session()
    # The database deletes the rest: foreign keys cascade to rollups, keys, members, budgets
    # …, and a trigger deletes the events (migration 0003), after any ingest in flight for
    # the project has committed (it holds the project row's key-share lock until then).
    result = cast(CursorResult[Any], session.execute(
        delete(Project).where(Project.id == project_id)))
    session.commit()
    if not result.rowcount:  # a concurrent deletion came first
        raise NotFound("No such project.", param="project")


# -- members -------------------------------------------------------------------------------

def _member_out(member: ProjectMember, user: User) -> MemberOut:
    return MemberOut(user_id=user.id, email=user.email, name=user.name,
                     role=member.role, created_at=member.created_at)  # type: ignore[arg-type]


def list_members(principal: Principal, project_id: int) -> list[MemberOut]:
    """Members of a visible project."""
    require_user(principal)
    project_for(principal, project_id)
    rows = db.session().execute(select(ProjectMember, User).join(
        User, User.id == ProjectMember.user_id).where(
        ProjectMember.project_id == project_id).order_by(User.id)).all()
    return [_member_out(m, u) for m, u in rows]


def check_grantable(principal: Principal, project_id: int, role: str) -> None:
    """403 unless the caller may give (or take away) ``role``: at most their own, and owner
    only by an owner."""
    mine = role_in(principal, project_id) or "viewer"
    if ROLE_RANK[role] > ROLE_RANK[mine] or (role == "owner" and mine != "owner"):
        raise Forbidden(f"A '{mine}' cannot grant or change the '{role}' role.",
                        code="insufficient_role")


def _member(project_id: int, user_id: int) -> tuple[ProjectMember, User]:
    session = db.session()
    member = session.get(ProjectMember, (project_id, user_id))
    user = session.get(User, user_id)
    if member is None or user is None:
        raise NotFound("No such member.", param="user_id")
    return member, user


def _keep_an_owner(project_id: int, member: ProjectMember) -> None:
    if member.role != "owner":
        return
    # Two owners demoting or removing each other at once would each count two owners and
    # leave none: count under a lock on the project row that such changes take in turn
    # (FOR NO KEY UPDATE: ingests, which key-share lock the row, do not wait for it).
    db.session().execute(select(Project.id).where(Project.id == project_id)
                         .with_for_update(key_share=True))
    owners = db.session().scalar(select(func.count()).where(
        ProjectMember.project_id == project_id, ProjectMember.role == "owner"))
    if (owners or 0) <= 1:
        raise Conflict("A project must keep at least one owner.", code="last_owner")


def update_member(principal: Principal, project_id: int, user_id: int,
                  body: MemberUpdate) -> MemberOut:
    """Change a member's role (admin+; owners are changed by owners only)."""
    require_user(principal)
    project_for(principal, project_id, role="admin")
    member, user = _member(project_id, user_id)
    check_grantable(principal, project_id, member.role)
    check_grantable(principal, project_id, body.role)
    if body.role != "owner":
        _keep_an_owner(project_id, member)
    member.role = body.role
    db.session().commit()
    return _member_out(member, user)


def remove_member(principal: Principal, project_id: int, user_id: int) -> None:
    """Remove a member (admin+, or anyone leaving by themselves); never the last owner."""
    user = require_user(principal)
    project_for(principal, project_id)
    if user.id != user_id:
        project_for(principal, project_id, role="admin")
    member, _ = _member(project_id, user_id)
    if user.id != user_id:
        check_grantable(principal, project_id, member.role)
    _keep_an_owner(project_id, member)
    db.session().delete(member)
    db.session().commit()


# -- API keys --------------------------------------------------------------------------------

def create_key(principal: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key for a project (admin+ or an admin-scoped key); the secret is shown once."""
    project = project_for(principal, body.project_id, role="admin", scope="admin")
    secret, prefix, key_hash = new_api_key()
    key = ApiKey(project_id=project.id, name=body.name, prefix=prefix, key_hash=key_hash,
                 scopes=" ".join(sorted(set(body.scopes))), created_by=principal.user_id)
    db.session().add(key)
    db.session().commit()
    return ApiKeyCreated(**key_out(key).model_dump(), key=secret)


def list_keys(principal: Principal, project_id: int | None) -> list[ApiKeyOut]:
    """Keys of the projects the caller administers (prefixes only, never secrets)."""
    ids = [project_for(principal, pid, role="admin", scope="admin").id
           for pid in project_ids_for(principal, project_id, scope="admin")
           if project_id is not None or principal.key is not None
           or ROLE_RANK.get(role_in(principal, pid) or "", 0) >= ROLE_RANK["admin"]]
    keys = db.session().scalars(select(ApiKey).where(ApiKey.project_id.in_(ids))
                                .order_by(ApiKey.id))
    return [key_out(k) for k in keys]


def revoke_key(principal: Principal, key_id: int) -> ApiKeyOut:
    """Revoke a key of a project the caller administers; 404 for anyone else's."""
    session = db.session()
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("No such API key.", param="key_id")
    try:
        project_for(principal, key.project_id, role="admin", scope="admin")
    except NotFound:
        raise NotFound("No such API key.", param="key_id") from None
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key_out(key)
