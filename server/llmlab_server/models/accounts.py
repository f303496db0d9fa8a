"""Accounts and access: users, projects, their members and invitations, API keys, and the
refresh tokens of login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmlab_server.models.base import SCOPES, Base, BigId, utcnow

__all__ = ["ApiKey", "Project", "ProjectInvitation", "ProjectMember", "RefreshToken", "User"]


class User(Base):
    """A person who logs in to the dashboard and API."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the user proved they receive mail at ``email`` (None: not yet); invitations and
    #: password resets need it.
    email_verified_at: Mapped[datetime | None]

    @property
    def email_verified(self) -> bool:
        """Whether the email address is verified."""
        return self.email_verified_at is not None


class Project(Base):
    """A tenant boundary: events, keys and members belong to exactly one project."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    slug: Mapped[str] = mapped_column(String(128), unique=True)
    #: The IANA time zone (``Europe/Paris``) of the dashboard's date ranges and day buckets.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    """A user's role in a project (owner, admin, member or viewer)."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectInvitation(Base):
    """An offer of a role in a project to whoever owns ``email``; nothing of the project
    reaches them until they accept it (then it becomes a `ProjectMember` and is deleted)."""

    __tablename__ = "project_invitations"
    __table_args__ = (UniqueConstraint("project_id", "email",
                                       name="uq_project_invitations_project_email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: Invitations are by email, registered or not, so the answer tells nothing about accounts.
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A project's API key: only an HMAC of it is kept, plus a display prefix."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Space-separated scopes (``ingest read``).
    scopes: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes, ``admin`` expanded to all of them."""
        scopes = frozenset(self.scopes.split())
        return frozenset(SCOPES) if "admin" in scopes else scopes


class RefreshToken(Base):
    """One refresh token of a login session (``family_id``); rotated on every use."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
