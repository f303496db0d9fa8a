"""ORM models (SQLAlchemy 2.0 typed mappings); the wire schemas live in `llmlab_server.schemas`.

Times are stored as naive UTC (`UTCDateTime` converts on the way in and out), money as integer
nano-USD (1e-9 USD), so sums are exact integers on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ROLES",
    "SCOPES",
    "ApiKey",
    "Base",
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
    "User",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "utcnow",
]

#: Project roles, most powerful first.
ROLES = ("owner", "admin", "member", "viewer")
#: API key scopes; ``admin`` implies the other two.
SCOPES = ("ingest", "read", "admin")

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: The largest id a `BigId` column holds (a signed 64-bit integer, on both databases).
MAX_ID = 2**63 - 1

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC; read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention Alembic can reproduce."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


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


class CostEventRow(Base):
    """One stored `llmlab.schema.CostEvent`; unique per (project, event id)."""

    __tablename__ = "cost_events"
    __table_args__ = (
        UniqueConstraint("project_id", "event_id", name="uq_cost_events_project_event"),
        Index("ix_cost_events_project_time", "project_id", "timestamp"),
        Index("ix_cost_events_project_job_time", "project_id", "job_id", "timestamp"),
        Index("ix_cost_events_project_user_time", "project_id", "user_id", "timestamp"),
        Index("ix_cost_events_project_model_time", "project_id", "model", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: No foreign key (a trigger query per inserted row): an ingest checks the project once
    #: per batch under the same lock, and a delete trigger on ``projects`` deletes its events
    #: (migration 0003).
    project_id: Mapped[int] = mapped_column(BigId)
    #: Compared bytewise on PostgreSQL (ids are opaque): cheaper unique-index inserts.
    event_id: Mapped[str] = mapped_column(
        String(128).with_variant(String(128, collation="C"), "postgresql"))
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(256))
    requested_model: Mapped[str | None] = mapped_column(String(256))
    operation: Mapped[str] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_1h_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    audio_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    audio_output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    image_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    image_output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The cost counted in summaries: the client's when it sent one, else the server's.
    cost_nanos: Mapped[int] = mapped_column(BigInteger)
    cost_input_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_cache_read_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_cache_write_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_output_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_reasoning_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Built-in tool fees (web search, file search, containers …), part of ``cost_nanos``.
    cost_tools_nanos: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: Built-in tool uses by kind (``{"web_search": 5}``), None when the call used none.
    tools: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: What the provider itself reported the call cost (OpenRouter), None when it did not.
    provider_cost_nanos: Mapped[int | None] = mapped_column(BigInteger)
    #: The provider's figure and ``cost_nanos`` disagree (more than 1 % or $0.000001).
    provider_cost_mismatch: Mapped[bool] = mapped_column(Boolean, default=False,
                                                         server_default=false())
    #: What the server's catalogue says the call cost (None when it cannot price the model).
    server_cost_nanos: Mapped[int | None] = mapped_column(BigInteger)
    priced: Mapped[bool] = mapped_column(Boolean)
    server_priced: Mapped[bool] = mapped_column(Boolean)
    cost_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    pricing_version: Mapped[str | None] = mapped_column(String(128))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    ttfb_ms: Mapped[float | None] = mapped_column(Float)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(String(128))
    service_tier: Mapped[str | None] = mapped_column(String(128))
    job_id: Mapped[str | None] = mapped_column(String(256))
    user_id: Mapped[str | None] = mapped_column(String(256))
    function: Mapped[str | None] = mapped_column(String(256))
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    environment: Mapped[str | None] = mapped_column(String(128))
    sdk_name: Mapped[str | None] = mapped_column(String(128))
    sdk_version: Mapped[str | None] = mapped_column(String(128))


class CostRollupHourly(Base):
    """Sums of newly stored events per (project, UTC hour, provider, model)."""

    __tablename__ = "cost_rollups_hourly"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_tools_nanos: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class _GroupRollup:
    """The sums of a group rollup row (the same as `CostRollupHourly`'s)."""

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: ``job``, ``user`` or ``tag:<key>``.
    dimension: Mapped[str] = mapped_column(String(72))
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_tools_nanos: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class CostRollupGroupHourly(_GroupRollup, Base):
    """Sums of newly stored events per (project, job|user|tag:<key>, UTC hour, value).

    Only events that have the value are counted (no row for a missing job, user or tag):
    a summary's "none" group is the total less the groups.
    """

    __tablename__ = "cost_rollups_group_hourly"
    __table_args__ = (PrimaryKeyConstraint("project_id", "dimension", "hour", "key"),)

    hour: Mapped[datetime]
    key: Mapped[str] = mapped_column(String(256))


class CostRollupGroupDaily(_GroupRollup, Base):
    """`CostRollupGroupHourly` per UTC day: long ranges read one row per day and value."""

    __tablename__ = "cost_rollups_group_daily"
    __table_args__ = (PrimaryKeyConstraint("project_id", "dimension", "day", "key"),)

    #: The UTC midnight the day starts at.
    day: Mapped[datetime]
    key: Mapped[str] = mapped_column(String(256))


class IngestQuotaUsage(Base):
    """Events a project stored in its current quota window (``day`` or ``minute``, UTC).

    One row per project and period, reset when a new window starts, so the table stays two
    rows per project (`llmlab_server.services.quotas`).
    """

    __tablename__ = "ingest_quota_usage"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: The window's start, in Unix seconds (an integer compares alike on both databases).
    started: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)


# -- budgets, alerts, webhooks (issue #6) --------------------------------------------------------

class Budget(Base):
    """A spending limit on a project (optionally narrowed to a job, user, tag or model)."""

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    amount_nanos: Mapped[int] = mapped_column(BigInteger)
    #: ``daily``, ``weekly`` (from Monday), ``monthly`` or ``total``.
    period: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    #: ``alert`` or ``block`` (the SDK refuses calls that would pass a block budget).
    action: Mapped[str] = mapped_column(String(16))
    #: Percentages of ``amount`` that raise an alert, ascending (``[50, 80, 100]``).
    thresholds: Mapped[list[int]] = mapped_column(JSON)
    scope_job: Mapped[str | None] = mapped_column(String(256))
    scope_user: Mapped[str | None] = mapped_column(String(256))
    #: ``key`` (the tag is present) or ``key=value``.
    scope_tag: Mapped[str | None] = mapped_column(String(330))
    scope_model: Mapped[str | None] = mapped_column(String(256))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BudgetAlert(Base):
    """A threshold (or forecast) crossing of a budget: at most one per kind, threshold, period."""

    __tablename__ = "budget_alerts"
    __table_args__ = (
        UniqueConstraint("budget_id", "kind", "threshold", "period_key",
                         name="uq_budget_alerts_once"),
        Index("ix_budget_alerts_project_created", "project_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"),
                                           index=True)
    #: ``threshold`` (spend crossed it) or ``forecast`` (projected to exceed the amount).
    kind: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[int] = mapped_column(Integer)
    #: The period's start as ISO UTC, or ``total``: the once-per-period key.
    period_key: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime | None]
    spent_nanos: Mapped[int] = mapped_column(BigInteger)
    amount_nanos: Mapped[int] = mapped_column(BigInteger)
    forecast_nanos: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    """A project's alert receiver; its signing secret is derived, never stored."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    #: Random salt; the secret is HMAC(SECRET_KEY, salt), shown once at creation.
    secret_salt: Mapped[str] = mapped_column(String(64))
    secret_prefix: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_delivery_at: Mapped[datetime | None]
    #: ``delivered``, ``failed`` or ``refused`` (address screened out at send time).
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(512))


# -- durable webhook deliveries (issue #19) ------------------------------------------------------

class WebhookDelivery(Base):
    """One payload owed to one webhook row (the outbox): claimed, retried and logged until it
    is ``delivered`` or ``dead``; bound to the row by id, project and secret salt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The ``X-LLMLab-Delivery`` header: the same on every attempt, for receivers to dedup on.
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    #: The webhook's salt when the delivery was queued: a re-keyed or reused row gets nothing.
    webhook_salt: Mapped[str] = mapped_column(String(64))
    #: The alert delivered (None for a test ping).
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("budget_alerts.id", ondelete="SET NULL"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    #: The exact JSON bytes signed and sent.
    body: Mapped[str] = mapped_column(Text)
    #: ``pending``, ``delivering`` (claimed under a lease), ``delivered``, ``failed`` (not
    #: retried: the row is gone or the address refused) or ``dead`` (out of tries).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    #: A claimed delivery belongs to its claimer until then (a crashed claimer's is re-claimed).
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(512))
    last_latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookDeliveryAttempt(Base):
    """One attempt of a `WebhookDelivery`: answer code, latency, error."""

    __tablename__ = "webhook_delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(512))


# -- recommendation dismissals (issue #17) -------------------------------------------------------

class RecommendationState(Base):
    """A project's decision about one recommendation: ``dismissed``, or ``snoozed`` until a time.

    Keyed by the recommendation's stable id (`llmlab_server.services.recommendation_states`);
    no row means active. Shared by the whole project team.
    """

    __tablename__ = "recommendation_states"
    __table_args__ = (UniqueConstraint("project_id", "recommendation_id",
                                       name="uq_recommendation_states_project_rec"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    recommendation_id: Mapped[str] = mapped_column(String(32))
    #: ``dismissed`` or ``snoozed``.
    state: Mapped[str] = mapped_column(String(16))
    #: A snooze ends then (None when dismissed).
    snoozed_until: Mapped[datetime | None]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
