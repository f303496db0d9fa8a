"""Projects and their members: ``/api/projects``."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server.account_schemas import InvitationSent
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.schemas import (
    MemberCreate,
    MemberOut,
    MemberUpdate,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
)
from llmlab_server.services import invitations, projects

bp = Blueprint("projects", __name__, url_prefix="/api/projects")


@bp.post("")
@operation(tag="projects", auth="user", body=ProjectCreate, response=ProjectOut, status=201,
           errors=(409,))
def create_project(body: ProjectCreate) -> Response:
    """Create a project; the caller becomes its owner. ``timezone`` (IANA, default ``UTC``)
    is the zone the dashboard's ranges and day buckets use; 400 ``invalid_timezone`` when
    unknown."""
    return ok(projects.create_project(principal(), body), 201)


@bp.get("")
@operation(tag="projects", response=list[ProjectOut])
def list_projects() -> Response:
    """Projects the caller can see, with the caller's role."""
    return ok(projects.list_projects(principal()))


@bp.get("/<int:project_id>")
@operation(tag="projects", response=ProjectOut)
def get_project(project_id: int) -> Response:
    """One project."""
    return ok(projects.get_project(principal(), project_id))


@bp.patch("/<int:project_id>")
@operation(tag="projects", auth="user", body=ProjectUpdate, response=ProjectOut)
def update_project(project_id: int, body: ProjectUpdate) -> Response:
    """Rename a project or change its time zone (admin or owner)."""
    return ok(projects.update_project(principal(), project_id, body))


@bp.delete("/<int:project_id>")
@operation(tag="projects", auth="user", response=None)
def delete_project(project_id: int) -> Response:
    """Delete a project and everything in it (owner only)."""
    projects.delete_project(principal(), project_id)
    return ok(None)


@bp.get("/<int:project_id>/members")
@operation(tag="projects", auth="user", response=list[MemberOut])
def list_members(project_id: int) -> Response:
    """Members of a project and their roles."""
    return ok(projects.list_members(principal(), project_id))


@bp.post("/<int:project_id>/members")
@operation(tag="projects", auth="user", body=MemberCreate, response=InvitationSent, status=202,
           errors=(409,))
def add_member(project_id: int, body: MemberCreate) -> Response:
    """Invite someone by email (admin+; only owners offer owner); they join when they accept.

    The answer is the same whether or not the email has an account."""
    return ok(invitations.invite(principal(), project_id, body), 202)


@bp.get("/<int:project_id>/invitations")
@operation(tag="projects", auth="user", response=list[InvitationSent])
def list_invitations(project_id: int) -> Response:
    """Pending invitations of a project (admin+)."""
    return ok(invitations.list_sent(principal(), project_id))


@bp.delete("/<int:project_id>/invitations/<int:invitation_id>")
@operation(tag="projects", auth="user", response=None)
def cancel_invitation(project_id: int, invitation_id: int) -> Response:
    """Withdraw a pending invitation (admin+)."""
    invitations.cancel(principal(), project_id, invitation_id)
    return ok(None)


@bp.patch("/<int:project_id>/members/<int:user_id>")
@operation(tag="projects", auth="user", body=MemberUpdate, response=MemberOut, errors=(409,))
def update_member(project_id: int, user_id: int, body: MemberUpdate) -> Response:
    """Change a member's role; a project always keeps one owner."""
    return ok(projects.update_member(principal(), project_id, user_id, body))


@bp.delete("/<int:project_id>/members/<int:user_id>")
@operation(tag="projects", auth="user", response=None, errors=(409,))
def remove_member(project_id: int, user_id: int) -> Response:
    """Remove a member (admin+), or leave a project yourself."""
    projects.remove_member(principal(), project_id, user_id)
    return ok(None)
