"""Stored cost events and the rollups summaries read: hourly per model, hourly and daily per
job, user or tag."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from llmlab_server.models.base import Base, BigId

__all__ = ["CostEventRow", "CostRollupGroupDaily", "CostRollupGroupHourly", "CostRollupHourly"]


class CostEventRow(Base):
    """One stored `llmlab.schema.CostEvent`; unique per (project, event id).

    On PostgreSQL the table is partitioned by month of ``timestamp`` with the primary key
    (id, timestamp), and the unique (project, event id) key is ``cost_event_ids``'s
    (migration 0012, `llmlab_server.services.partitions`); ``db.compare_options`` leaves
    that layout out of model comparisons.
    """

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


class _RollupSums:
    """The sums every rollup row keeps (exact integers; latency as a sum and a count)."""

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


class CostRollupHourly(_RollupSums, Base):
    """Sums of newly stored events per (project, UTC hour, provider, model)."""

    __tablename__ = "cost_rollups_hourly"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(256), primary_key=True)


class _GroupRollup(_RollupSums):
    """A group rollup row: its project and dimension, and the sums of `_RollupSums`."""

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    #: ``job``, ``user`` or ``tag:<key>``.
    dimension: Mapped[str] = mapped_column(String(72))


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
