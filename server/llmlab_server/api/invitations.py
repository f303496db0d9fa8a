"""The caller's invitations to projects: ``/api/invitations``."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server.account_schemas import Invitation
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.schemas import ProjectOut
from llmlab_server.services import invitations

bp = Blueprint("invitations", __name__, url_prefix="/api/invitations")


@bp.get("")
@operation(tag="projects", auth="user", response=list[Invitation])
def list_invitations() -> Response:
    """Invitations waiting for the caller's answer."""
    return ok(invitations.list_mine(principal()))


@bp.post("/<int:invitation_id>/accept")
@operation(tag="projects", auth="user", response=ProjectOut)
def accept(invitation_id: int) -> Response:
    """Join the project with the offered role."""
    return ok(invitations.accept(principal(), invitation_id))


@bp.post("/<int:invitation_id>/decline")
@operation(tag="projects", auth="user", response=None)
def decline(invitation_id: int) -> Response:
    """Refuse the invitation."""
    invitations.decline(principal(), invitation_id)
    return ok(None)
