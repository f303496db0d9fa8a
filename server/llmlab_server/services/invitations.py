"""Invitations: the only way into someone else's project is to accept an invitation.

Adding a member (``POST /api/projects/<id>/members``) records an invitation for an email and
nothing else: until its owner accepts, the project is not among their projects, reads or
totals. Invitations are by email, registered or not, and the answer is the same either way, so
inviting cannot tell whether an email has an account. The invitee lists, accepts or declines
them under ``/api/invitations`` once they verified their email (the invitation is addressed
to whoever reads its mail); an invitation for someone else answers 404.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from llmlab_server import db
from llmlab_server.account_schemas import Invitation, InvitationSent
from llmlab_server.errors import Conflict, NotFound
from llmlab_server.models import Project, ProjectInvitation, ProjectMember, User, utcnow
from llmlab_server.schemas import MemberCreate, ProjectOut
from llmlab_server.security import Principal
from llmlab_server.services.access import project_for, require_user
from llmlab_server.services.projects import check_grantable
from llmlab_server.services.verification import (
    require_verified,
    send_invitation_mail,
    spend_mail_allowance,
)

__all__ = ["accept", "cancel", "decline", "invite", "list_mine", "list_sent"]


def _sent(invitation: ProjectInvitation) -> InvitationSent:
    return InvitationSent(id=invitation.id, project_id=invitation.project_id,
                          email=invitation.email, role=invitation.role,  # type: ignore[arg-type]
                          created_at=invitation.created_at)


def invite(principal: Principal, project_id: int, body: MemberCreate) -> InvitationSent:
    """Invite ``body.email`` as ``body.role`` (admin+; only owners offer owner); inviting again
    replaces the role. 409 only for a current member, whom the caller can list anyway."""
    inviter = require_user(principal)
    project = project_for(principal, project_id, role="admin")
    check_grantable(principal, project_id, body.role)
    session = db.session()
    member = session.scalar(select(ProjectMember.user_id).join(
        User, User.id == ProjectMember.user_id).where(
        ProjectMember.project_id == project_id, User.email == body.email))
    if member is not None:
        raise Conflict("This user is a member already.", code="already_member", param="email")
    spend_mail_allowance(body.email, client=False)  # inviting a team of 40 is no attack
    for _attempt in range(2):  # a concurrent identical invitation wins the insert: update it
        invitation = session.scalar(select(ProjectInvitation).where(
            ProjectInvitation.project_id == project_id, ProjectInvitation.email == body.email))
        if invitation is None:
            invitation = ProjectInvitation(project_id=project_id, email=body.email)
            session.add(invitation)
        invitation.role, invitation.invited_by = body.role, inviter.id
        invitation.created_at = utcnow()
        try:
            session.commit()
            break
        except IntegrityError:
            session.rollback()
    else:
        raise Conflict("This invitation changed meanwhile; send it again.",
                       code="invitation_conflict", param="email")
    sent = _sent(invitation)
    send_invitation_mail(body.email, project.name, body.role, inviter.email)
    return sent


def list_sent(principal: Principal, project_id: int) -> list[InvitationSent]:
    """Pending invitations of a project (admin+)."""
    require_user(principal)
    project_for(principal, project_id, role="admin")
    rows = db.session().scalars(select(ProjectInvitation).where(
        ProjectInvitation.project_id == project_id).order_by(ProjectInvitation.id))
    return [_sent(row) for row in rows]


def cancel(principal: Principal, project_id: int, invitation_id: int) -> None:
    """Withdraw a pending invitation (admin+)."""
    require_user(principal)
    project_for(principal, project_id, role="admin")
    session = db.session()
    done = session.execute(delete(ProjectInvitation).where(
        ProjectInvitation.id == invitation_id, ProjectInvitation.project_id == project_id))
    session.commit()
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound("No such invitation.", param="invitation_id")


def list_mine(principal: Principal) -> list[Invitation]:
    """The caller's pending invitations (once their email is verified)."""
    user = require_user(principal)
    require_verified(user)
    rows = db.session().execute(
        select(ProjectInvitation, Project, User.email)
        .join(Project, Project.id == ProjectInvitation.project_id)
        .outerjoin(User, User.id == ProjectInvitation.invited_by)
        .where(ProjectInvitation.email == user.email).order_by(ProjectInvitation.id)).all()
    return [Invitation(id=inv.id, role=inv.role, invited_by=inviter,  # type: ignore[arg-type]
                       created_at=inv.created_at,
                       project=ProjectOut(id=p.id, name=p.name, slug=p.slug,
                                          timezone=p.timezone, created_at=p.created_at))
            for inv, p, inviter in rows]


def _mine(user: User, invitation_id: int) -> ProjectInvitation:
    # Addressed to an email: only someone who proved they read its mail may answer.
    require_verified(user)
    invitation = db.session().get(ProjectInvitation, invitation_id)
    if invitation is None or invitation.email != user.email:
        raise NotFound("No such invitation.", param="invitation_id")
    return invitation


def accept(principal: Principal, invitation_id: int) -> ProjectOut:
    """Join the invitation's project with its role; the invitation is used up."""
    user = require_user(principal)
    session = db.session()
    invitation = _mine(user, invitation_id)
    project_id, role = invitation.project_id, invitation.role
    session.delete(invitation)
    if session.get(ProjectMember, (project_id, user.id)) is None:
        session.add(ProjectMember(project_id=project_id, user_id=user.id, role=role))
    try:
        session.commit()
    except IntegrityError:  # accepted twice at once: the other acceptance joined
        session.rollback()
    member = session.get(ProjectMember, (project_id, user.id))
    project = session.get(Project, project_id)
    if member is None or project is None:  # the project was deleted meanwhile
        raise NotFound("No such invitation.", param="invitation_id")
    return ProjectOut(id=project.id, name=project.name, slug=project.slug,
                      timezone=project.timezone, created_at=project.created_at,
                      role=member.role)  # type: ignore[arg-type]


def decline(principal: Principal, invitation_id: int) -> None:
    """Refuse an invitation; the project may invite again, and may again be declined."""
    user = require_user(principal)
    db.session().delete(_mine(user, invitation_id))
    db.session().commit()
