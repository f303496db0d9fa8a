"""Wire schemas of projects, their members and API keys, and of ``/api/auth/me``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from llmlab_server.auth_schemas import UserOut
from llmlab_server.common_schemas import Email, Id, Name, Role, Scope, Slug, _In, _Out

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyOut", "ApiKeysQuery", "Me", "MemberCreate",
           "MemberOut", "MemberUpdate", "ProjectCreate", "ProjectOut", "ProjectUpdate"]


#: An IANA time zone name; the service checks it names a zone (400 ``invalid_timezone``).
ProjectTimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64)]
_TZ_DOC = ("IANA time zone (`Europe/Paris`) of the dashboard's date ranges and day buckets")


class ProjectCreate(_In):
    """A new project; ``slug`` defaults to one made from the name."""

    name: Name
    slug: Slug | None = None
    timezone: ProjectTimeZone = Field("UTC", description=_TZ_DOC)


class ProjectUpdate(_In):
    """Fields of a project to change."""

    name: Name | None = None
    timezone: ProjectTimeZone | None = Field(None, description=_TZ_DOC)


class ProjectOut(_Out):
    """A project, with the caller's role in it (None for an API key)."""

    id: int
    name: str
    slug: str
    #: The IANA time zone the dashboard shows the project in.
    timezone: str = "UTC"
    created_at: datetime
    role: Role | None = None


class MemberCreate(_In):
    """Add an existing user to a project."""

    email: Email
    role: Role = "member"


class MemberUpdate(_In):
    """Change a member's role."""

    role: Role


class MemberOut(BaseModel):
    """A user's membership of a project."""

    user_id: int
    email: str
    name: str | None
    role: Role
    created_at: datetime


class ApiKeyCreate(_In):
    """A new API key for a project."""

    project_id: Id
    name: Name = "default"
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)] = ["ingest"]


class ApiKeysQuery(_In):
    """Filter API keys by project."""

    project: Id | None = None


class ApiKeyOut(_Out):
    """An API key, without its secret (``prefix`` identifies it)."""

    id: int
    project_id: int
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A new API key; ``key`` is shown this once and never again."""

    key: str


class Me(BaseModel):
    """The caller: a user with their projects, or an API key with its project."""

    kind: Literal["user", "api_key"]
    user: UserOut | None
    api_key: ApiKeyOut | None
    projects: list[ProjectOut]
