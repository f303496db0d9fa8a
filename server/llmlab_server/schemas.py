"""Wire schemas (pydantic) of request and response bodies; ORM models are in `models`.

Each resource's schemas are in their own module: `common_schemas` (shared field types, bases,
envelopes), `auth_schemas`, `project_schemas` (projects, members, API keys), `ingest_schemas`,
`event_schemas`, `pricing_schemas`, `summary_schemas`, `budget_schemas`, `webhook_schemas`,
`recommendation_schemas` and `account_schemas`. This module re-exports the names it used to
define, so ``from llmlab_server.schemas import X`` keeps working. These classes are the single
source of `/api/openapi.json`: routes declare them with `llmlab_server.openapi.operation`,
which validates requests against them and documents them.
"""

from __future__ import annotations

from llmlab_server.auth_schemas import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    Session,
    SignupRequest,
    UserOut,
)
from llmlab_server.common_schemas import (
    Email,
    Envelope,
    ErrorEnvelope,
    ErrorInfo,
    Filter,
    Health,
    Id,
    MoneyStr,
    Name,
    Password,
    Role,
    Scope,
    Slug,
    TimeParam,
)
from llmlab_server.common_schemas import _In as _In
from llmlab_server.common_schemas import _Out as _Out
from llmlab_server.common_schemas import _Range as _Range
from llmlab_server.event_schemas import EventOut, EventPage, EventsQuery, ExportQuery
from llmlab_server.ingest_schemas import (
    EventError,
    EventResult,
    TrackBatch,
    TrackBody,
    TrackQuery,
    TrackResult,
)
from llmlab_server.pricing_schemas import ModelPricing, PricingList, PricingQuery
from llmlab_server.project_schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeysQuery,
    Me,
    MemberCreate,
    MemberOut,
    MemberUpdate,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
)

__all__ = [
    "ApiKeyCreate", "ApiKeyCreated", "ApiKeyOut", "ApiKeysQuery", "Email", "Envelope",
    "ErrorEnvelope", "ErrorInfo", "EventError", "EventOut", "EventPage", "EventResult",
    "EventsQuery", "ExportQuery", "Filter", "Health", "Id", "LoginRequest", "LogoutRequest", "Me",
    "MemberCreate", "MemberOut", "MemberUpdate", "ModelPricing", "MoneyStr", "Name", "Password",
    "PricingList", "PricingQuery", "ProjectCreate", "ProjectOut", "ProjectUpdate",
    "RefreshRequest", "Role", "Scope", "Session", "SignupRequest", "Slug", "TimeParam",
    "TrackBatch", "TrackBody", "TrackQuery", "TrackResult", "UserOut",
]
