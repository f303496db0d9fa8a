"""Wire schemas (pydantic) of request and response bodies; ORM models are in `models`.

Cost summaries' and time series' schemas are in `llmlab_server.summary_schemas`, budgets' and
webhooks' in `llmlab_server.budget_schemas`. These classes are the single source of
`/api/openapi.json`: routes declare them with
`llmlab_server.openapi.operation`, which validates requests against them and documents them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from llmlab.schema import CostEvent
from llmlab_server.models import MAX_ID

__all__ = [
    "ApiKeyCreate", "ApiKeyCreated", "ApiKeyOut", "ApiKeysQuery", "Email", "ErrorEnvelope",
    "ErrorInfo", "EventOut", "EventPage", "EventResult", "EventsQuery", "ExportQuery", "Health",
    "LoginRequest", "LogoutRequest", "Me", "MemberCreate", "MemberOut", "MemberUpdate",
    "ModelPricing", "PricingList", "PricingQuery", "ProjectCreate", "ProjectOut",
    "ProjectUpdate", "RefreshRequest", "Session", "SignupRequest", "TrackBatch", "TrackBody",
    "TrackQuery", "TrackResult", "UserOut",
]

T = TypeVar("T")

#: What no email part and no name may be made of: whitespace by the union of the three regex
#: dialects involved (JSON Schema's ECMA-262 ``\s``, pydantic's Rust ``\s``, Python's
#: ``str.strip``), so the document accepts exactly what the server does.
_SPACE = r"\s\x1c-\x1f\x85\ufeff"
Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=3,
                                         max_length=254,
                                         pattern=rf"^[^@{_SPACE}]+@[^@{_SPACE}]+$")]
#: The policy's length (`llmlab_server.security.password_problem` checks the rest).
Password = Annotated[str, StringConstraints(min_length=10, max_length=72)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                        pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                        pattern=rf"[^{_SPACE}]")]
Role = Literal["owner", "admin", "member", "viewer"]
Scope = Literal["ingest", "read", "admin"]
#: Money as a decimal string in USD ("0.00475").
MoneyStr = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["0.00475"])]
#: An ISO 8601 date or datetime; naive values are read in the query's ``tz``.
TimeParam = Annotated[str, Field(min_length=1, max_length=64,
                                 examples=["2026-11-01", "2026-11-01T00:00:00Z"])]
Filter = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul(self) -> Any:
        # PostgreSQL text cannot hold NUL: a query or body with one answered 500 there.
        for name, value in self:
            if _has_nul(value):
                raise ValueError(f"{name} must not contain NUL (\\u0000) characters")
        return self


def _has_nul(value: Any) -> bool:
    # Nested models check themselves: their own `_In` validator, or (an ingest batch's
    # `CostEvent`s) their string patterns, at C speed; walking them here cost ~18 us an event.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, BaseModel):
        return False
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in value)
    return False


#: A database id named by a caller: a bigger number would overflow the driver (a 500).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Envelope(BaseModel, Generic[T]):
    """Every successful response: ``data`` holds the result."""

    success: Literal[True]
    data: T
    error: None
    timestamp: datetime


class ErrorInfo(BaseModel):
    """What went wrong."""

    type: Literal["invalid_request_error", "authentication_error", "permission_error",
                  "rate_limit_error", "api_error"]
    code: str
    message: str
    param: str | None


class ErrorEnvelope(BaseModel):
    """Every failed response."""

    success: Literal[False]
    data: None
    error: ErrorInfo
    timestamp: datetime


# -- auth ------------------------------------------------------------------------------------

class SignupRequest(_In):
    """A new account."""

    email: Email
    password: Password
    name: Name | None = None


class LoginRequest(_In):
    """Credentials for a new session."""

    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshRequest(_In):
    """A refresh token to exchange for a new pair (the old one stops working)."""

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LogoutRequest(_In):
    """The session to end, named by its refresh token (optional with an access token)."""

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


class UserOut(_Out):
    """A user account."""

    id: int
    email: str
    name: str | None
    created_at: datetime
    email_verified: bool = False


class Session(BaseModel):
    """Tokens of a login session: a short-lived access JWT and a rotating refresh token."""

    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


# -- projects, members, keys ------------------------------------------------------------------

class ProjectCreate(_In):
    """A new project; ``slug`` defaults to one made from the name."""

    name: Name
    slug: Slug | None = None


class ProjectUpdate(_In):
    """Fields of a project to change."""

    name: Name | None = None


class ProjectOut(_Out):
    """A project, with the caller's role in it (None for an API key)."""

    id: int
    name: str
    slug: str
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


# -- ingest ------------------------------------------------------------------------------------

class EventError(BaseModel):
    """Why one event was rejected."""

    code: Literal["invalid_event", "project_mismatch", "cost_too_large"]
    message: str


class EventResult(BaseModel):
    """The outcome of one event of a batch, by its position."""

    index: int
    id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: EventError | None = None


class TrackResult(BaseModel):
    """Per-event results of ``POST /api/events/track`` (HTTP 207)."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class TrackQuery(_In):
    """Which project a user (JWT) ingests into; API keys imply their own."""

    project: Id | None = None


# -- reads -------------------------------------------------------------------------------------

class _Range(_In):
    project: Id | None = Field(None, description="Project id; default: every visible project")
    start: TimeParam | None = Field(None, description="Inclusive; default: 30 days before end")
    end: TimeParam | None = Field(None, description="Exclusive; default: the next full hour")
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        "UTC", description="IANA time zone for naive times and day/hour buckets")


class EventsQuery(_Range):
    """Filters and paging of the event list (newest first)."""

    model: Filter | None = None
    provider: Filter | None = None
    job: Filter | None = None
    user: Filter | None = None
    status: Literal["ok", "error", "cancelled"] | None = None
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class ExportQuery(_Range):
    """Filters of a CSV export (oldest first)."""

    model: Filter | None = None
    provider: Filter | None = None
    job: Filter | None = None
    user: Filter | None = None
    status: Literal["ok", "error", "cancelled"] | None = None


class EventOut(BaseModel):
    """A stored event, with the server's view of its price."""

    id: str
    project_id: int
    timestamp: datetime
    received_at: datetime
    provider: str
    model: str
    requested_model: str | None
    operation: str
    usage: dict[str, int]
    #: Built-in tool uses by kind (``{"web_search": 5}``), empty when none.
    tools: dict[str, int] = {}
    cost: MoneyStr
    #: The part of ``cost`` that is built-in tool fees.
    tools_cost: MoneyStr = "0"
    server_cost: MoneyStr | None
    #: What the provider itself reported the call cost (OpenRouter), None when it did not.
    provider_cost: MoneyStr | None = None
    #: ``provider_cost`` and ``cost`` disagree (more than 1 % and $0.000001 apart).
    provider_cost_mismatch: bool = False
    priced: bool
    server_priced: bool
    cost_mismatch: bool
    pricing_version: str | None
    latency_ms: float | None
    ttfb_ms: float | None
    stream: bool
    estimated: bool
    status: str
    error_type: str | None
    service_tier: str | None
    job_id: str | None
    user_id: str | None
    function: str | None
    tags: dict[str, Any]
    environment: str | None


class EventPage(BaseModel):
    """A page of events; pass ``next_cursor`` as ``cursor`` for the next one."""

    events: list[EventOut]
    next_cursor: str | None


class PricingQuery(_In):
    """Search the pricing catalogue."""

    q: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        None, description="Substring of the model name")
    provider: Filter | None = None
    mode: Filter | None = None
    limit: Annotated[int, Field(ge=1, le=5000)] = 500


class ModelPricing(BaseModel):
    """Current list prices of one model, USD per million tokens."""

    key: str
    provider: str
    name: str
    mode: str
    max_input_tokens: int | None
    max_output_tokens: int | None
    per_million: dict[str, MoneyStr]


class PricingList(BaseModel):
    """Models of the pricing catalogue."""

    pricing_version: str
    count: int
    models: list[ModelPricing]


class Health(BaseModel):
    """Liveness and database reachability."""

    status: Literal["ok"]
    database: Literal["ok"]


class TrackBatch(_In):
    """A batch of events; each one is validated on its own (see the per-event results)."""

    events: list[CostEvent]


#: The body of ``POST /api/events/track`` (documentation: events are validated one by one).
TrackBody = CostEvent | TrackBatch
