"""Wire schemas of budgets, alerts, webhooks and recommendations (issue #6); the shared types
are in `llmlab_server.common_schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from llmlab_server.common_schemas import Filter, Id, MoneyStr, Name, _In

__all__ = [
    "AlertOut", "AlertsQuery", "BudgetCreate", "BudgetError", "BudgetOut", "BudgetScope",
    "BudgetScopeIn", "BudgetStatus", "BudgetStatusList", "BudgetStatusQuery", "BudgetUpdate",
    "BudgetsQuery", "Evidence", "Recommendation", "Recommendations", "RecommendationsQuery",
    "TokenMix", "WebhookCreate", "WebhookCreated", "WebhookOut", "WebhookTest", "WebhookUpdate",
    "WebhooksQuery",
]

#: A positive USD amount as a decimal string (at most nine decimals: nano-USD).
AmountStr = Annotated[str, StringConstraints(
    strip_whitespace=True, pattern=r"^\d{1,9}(\.\d{1,9})?$")]
TimeZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TagScope = Annotated[str, StringConstraints(
    min_length=1, max_length=330, pattern=r"^[A-Za-z0-9_.:-]{1,64}(=[^\x00-\x1f]{0,256})?$")]
BudgetPeriod = Literal["daily", "weekly", "monthly", "total"]
BudgetAction = Literal["alert", "block"]
Threshold = Annotated[int, Field(ge=1, le=1000)]
ProjectRef = Annotated[Id | Annotated[str, StringConstraints(min_length=1, max_length=64)],
                       Field(description="Project id or slug")]


class BudgetScopeIn(_In):
    """What a budget counts, inside its project: every field narrows it further."""

    job: Filter | None = None
    user: Filter | None = None
    tag: TagScope | None = Field(None, description="'key' (tag present) or 'key=value'")
    model: Filter | None = None


class BudgetScope(BaseModel):
    """A budget's scope; ``project`` is the project's slug."""

    project: str
    job: str | None
    user: str | None
    tag: str | None
    model: str | None


class BudgetCreate(_In):
    """A new budget."""

    project_id: Id
    name: Name = "budget"
    amount: AmountStr = Field(description="USD per period, decimal string", examples=["100"])
    period: BudgetPeriod = "monthly"
    timezone: TimeZoneName = Field("UTC", description="IANA zone the period is aligned to")
    thresholds: Annotated[list[Threshold], Field(min_length=1, max_length=10)] = [50, 80, 100]
    action: BudgetAction = "alert"
    scope: BudgetScopeIn = Field(default_factory=lambda: BudgetScopeIn.model_validate({}))


class BudgetUpdate(_In):
    """Fields of a budget to change (scope replaces the whole scope)."""

    name: Name | None = None
    amount: AmountStr | None = None
    period: BudgetPeriod | None = None
    timezone: TimeZoneName | None = None
    thresholds: Annotated[list[Threshold], Field(min_length=1, max_length=10)] | None = None
    action: BudgetAction | None = None
    scope: BudgetScopeIn | None = None


class BudgetsQuery(_In):
    """Filter budgets by project."""

    project: Id | None = None


class BudgetOut(BaseModel):
    """A budget."""

    id: int
    project_id: int
    name: str
    amount: MoneyStr
    period: BudgetPeriod
    timezone: str
    thresholds: list[int]
    action: BudgetAction
    scope: BudgetScope
    created_at: datetime
    updated_at: datetime


class BudgetStatusQuery(_In):
    """Which project's budgets (id or slug); default every visible project."""

    project: ProjectRef | None = None


class BudgetError(BaseModel):
    """Why a budget's status could not be computed."""

    code: str
    message: str


class BudgetStatus(BaseModel):
    """Where one budget stands in its current period (the SDK guard's contract)."""

    id: int
    project_id: int
    name: str
    action: BudgetAction
    scope: BudgetScope
    amount: MoneyStr
    spent: MoneyStr
    remaining: MoneyStr
    percent: float
    #: Spend projected to the period's end at the period's run rate so far (None for total).
    forecast: MoneyStr | None
    thresholds: list[int]
    period: BudgetPeriod
    timezone: str
    period_start: datetime | None
    resets_at: datetime | None
    as_of: datetime
    #: Where spend was read (``unavailable`` with ``error``).
    source: Literal["rollups", "events", "unavailable"]
    #: Set when this budget could not be evaluated: it is then reported as fully spent
    #: (remaining 0), so the SDK guard refuses calls under a ``block`` budget.
    error: BudgetError | None = None


class BudgetStatusList(BaseModel):
    """Status of every budget asked for."""

    budgets: list[BudgetStatus]
    as_of: datetime


class AlertsQuery(_In):
    """Filters of the alert list (newest first)."""

    project: Id | None = None
    budget: Id | None = None
    kind: Literal["threshold", "forecast"] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class AlertOut(BaseModel):
    """A recorded budget alert."""

    id: int
    project_id: int
    budget_id: int
    budget_name: str
    kind: Literal["threshold", "forecast"]
    threshold: int
    period_start: datetime | None
    spent: MoneyStr
    amount: MoneyStr
    forecast: MoneyStr | None
    message: str
    created_at: datetime


class WebhookCreate(_In):
    """A new webhook: alerts of the project are POSTed to ``url``, signed."""

    project_id: Id
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2048,
                                          pattern=r"^https?://")]
    name: Name = "webhook"


class WebhookUpdate(_In):
    """Fields of a webhook to change."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2048,
                                          pattern=r"^https?://")] | None = None
    name: Name | None = None
    active: bool | None = None


class WebhooksQuery(_In):
    """Filter webhooks by project."""

    project: Id | None = None


class WebhookOut(BaseModel):
    """A webhook, without its secret (``secret_prefix`` identifies it)."""

    id: int
    project_id: int
    name: str
    url: str
    active: bool
    secret_prefix: str
    created_at: datetime
    last_delivery_at: datetime | None
    last_status: str | None
    last_error: str | None


class WebhookCreated(WebhookOut):
    """A new webhook; ``secret`` (the HMAC key of its signatures) is shown this once."""

    secret: str


class WebhookTest(BaseModel):
    """A test delivery was queued."""

    queued: bool


class RecommendationsQuery(_In):
    """Which project, and how many days of history to learn from."""

    project: Id | None = None
    days: Annotated[int, Field(ge=1, le=366)] = Field(30, description="Window, days")


class TokenMix(BaseModel):
    """Token sums of the evidence."""

    input: int
    output: int
    cache_read: int
    cache_write: int


class Evidence(BaseModel):
    """What a recommendation is based on."""

    model: str | None
    provider: str | None
    calls: int
    cost: MoneyStr
    tokens: TokenMix
    period: dict[str, Any]
    details: dict[str, Any] = Field(default_factory=dict)


class Recommendation(BaseModel):
    """One way to spend less, with its monthly saving."""

    kind: Literal["cheaper_model", "prompt_caching", "batch_api", "failed_calls", "output_cap"]
    project_id: int
    title: str
    detail: str
    #: USD per 30-day month, extrapolated from the window.
    monthly_savings: MoneyStr
    confidence: Literal["high", "medium", "low"]
    evidence: Evidence


class Recommendations(BaseModel):
    """Recommendations, largest saving first, and notes on what was not checked."""

    start: datetime
    end: datetime
    days: int
    recommendations: list[Recommendation]
    notes: list[str]
