"""ORM models (SQLAlchemy 2.0 typed mappings); the wire schemas live in `llmlab_server.schemas`.

One module per area: `base` (the declarative `Base`, the UTC datetime type, ids, roles and
scopes), `accounts`, `events` (cost events and rollups), `rollup_deltas` (PostgreSQL's rollup
increments and weekly rollup, plain tables), `quotas`, `budgets`, `webhooks` and
`recommendations`. Importing this package registers every table on ``Base.metadata`` (Alembic's
``env.py`` and `llmlab_server.db` rely on it); import the models from here.

Times are stored as naive UTC (`UTCDateTime` converts on the way in and out), money as integer
nano-USD (1e-9 USD), so sums are exact integers on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from llmlab_server.models.accounts import (
    ApiKey,
    Project,
    ProjectInvitation,
    ProjectMember,
    RefreshToken,
    User,
)
from llmlab_server.models.base import MAX_ID, NAMING, ROLES, SCOPES, Base, BigId, UTCDateTime, utcnow
from llmlab_server.models.budgets import Budget, BudgetAlert
from llmlab_server.models.events import (
    CostEventRow,
    CostRollupGroupDaily,
    CostRollupGroupHourly,
    CostRollupHourly,
)
from llmlab_server.models.quotas import IngestQuotaUsage
from llmlab_server.models.recommendations import RecommendationState
from llmlab_server.models.rollup_deltas import GROUP_DELTAS, GROUP_WEEKLY
from llmlab_server.models.webhooks import Webhook, WebhookDelivery, WebhookDeliveryAttempt

__all__ = [
    "GROUP_DELTAS",
    "GROUP_WEEKLY",
    "MAX_ID",
    "NAMING",
    "ROLES",
    "SCOPES",
    "ApiKey",
    "Base",
    "BigId",
    "Budget",
    "BudgetAlert",
    "CostEventRow",
    "CostRollupGroupDaily",
    "CostRollupGroupHourly",
    "CostRollupHourly",
    "IngestQuotaUsage",
    "Project",
    "ProjectInvitation",
    "ProjectMember",
    "RecommendationState",
    "RefreshToken",
    "UTCDateTime",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "utcnow",
]
