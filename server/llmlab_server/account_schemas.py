"""Wire schemas of account flows: project invitations, email verification, password reset.
Sessions are in `llmlab_server.auth_schemas`, members and projects in
`llmlab_server.project_schemas`, the shared types in `llmlab_server.common_schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from llmlab_server.common_schemas import Email, Password, Role, _In
from llmlab_server.project_schemas import ProjectOut

__all__ = ["Invitation", "InvitationSent", "PasswordReset", "PasswordResetRequest",
           "VerifyEmail"]

MailedToken = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class InvitationSent(BaseModel):
    """An invitation as its project's admins see it. The answer is the same whether or not
    the email has an account, so inviting cannot be used to find out."""

    id: int
    project_id: int
    email: str
    role: Role
    created_at: datetime


class Invitation(BaseModel):
    """An invitation as the invitee sees it: which project, which role, from whom."""

    id: int
    project: ProjectOut
    role: Role
    invited_by: str | None
    created_at: datetime


class VerifyEmail(_In):
    """The token mailed to the address being verified."""

    token: MailedToken


class PasswordResetRequest(_In):
    """Ask for a password-reset mail."""

    email: Email


class PasswordReset(_In):
    """A new password, with the token the reset mail carried."""

    token: MailedToken
    password: Password
