"""Two PostgreSQL-only job/user/tag rollup tables (SQLite keeps them empty):

``cost_rollups_group_deltas``: increments appended by ingest, not yet merged into
``cost_rollups_group_hourly``/``_daily``/``_weekly`` (`services.rollup_compaction`).

A plain heap, no key, no index, no foreign key: a batch appends its increments with one plain
``INSERT`` (no ``ON CONFLICT``), the cheapest write PostgreSQL has, and the compaction deletes
what it merged, so the table holds about a second of ingest. Several rows may share a
(project, dimension, hour, key): reads sum them with the rollups (`services.summary_sources`).
Rows of a deleted project are dropped by the next compaction.

``cost_rollups_group_weekly``: the daily rollup per ISO week (from Monday 00:00 UTC), kept by
the compaction, so a 30-day summary reads about 4 weekly and up to 12 daily rows per value
instead of 29 daily ones.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    PrimaryKeyConstraint,
    String,
    Table,
)

from llmlab_server.models.base import Base, BigId, UTCDateTime

__all__ = ["GROUP_DELTAS", "GROUP_WEEKLY"]

_SUMS = ("cost_nanos", "calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_tokens", "reasoning_tokens", "latency_ms_sum", "latency_count",
         "cost_tools_nanos")

GROUP_DELTAS = Table(
    "cost_rollups_group_deltas", Base.metadata,
    Column("project_id", BigId, nullable=False),
    Column("dimension", String(72), nullable=False),
    Column("hour", UTCDateTime(), nullable=False),
    Column("key", String(256), nullable=False),
    *(Column(name, Float() if name == "latency_ms_sum" else BigInteger(), nullable=False)
      for name in _SUMS),
)

GROUP_WEEKLY = Table(
    "cost_rollups_group_weekly", Base.metadata,
    Column("project_id", BigId, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("dimension", String(72), nullable=False),
    #: The Monday (00:00 UTC) the week starts at.
    Column("week", UTCDateTime(), nullable=False),
    Column("key", String(256), nullable=False),
    *(Column(name, Float() if name == "latency_ms_sum" else BigInteger(), nullable=False)
      for name in _SUMS),
    PrimaryKeyConstraint("project_id", "dimension", "week", "key"),
)
