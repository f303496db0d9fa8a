"""Wire schemas of cost summaries and time series (``/api/costs/summary``, ``/timeseries``);
the shared types are in `llmlab_server.common_schemas`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from llmlab_server.common_schemas import MoneyStr, _Range

__all__ = ["MAX_SUMMARY_LIMIT", "Summary", "SummaryQuery", "SummaryRow", "Timeseries",
           "TimeseriesPoint", "TimeseriesQuery", "Usage"]

#: The largest ``limit`` of a summary.
MAX_SUMMARY_LIMIT = 10_000


class SummaryQuery(_Range):
    """Parameters of a cost summary."""

    group_by: Annotated[str, StringConstraints(
        pattern=r"^(model|provider|project|day|hour|job|user|tag:[A-Za-z0-9_.:-]{1,64})$")] | None = (
        Field(None, description="model | provider | project | day | hour | job | user | tag:<key>"))
    limit: Annotated[int, Field(ge=1, le=MAX_SUMMARY_LIMIT)] | None = Field(
        None, description="At most this many groups, the costliest first; the rest are summed "
        "into `other`. Not with day or hour (or no) grouping. Default: every group.")

    @model_validator(mode="after")
    def _limit_needs_a_grouping(self) -> SummaryQuery:
        if self.limit is not None and self.group_by in (None, "day", "hour"):
            raise ValueError("limit needs group_by model, provider, project, job, user or "
                             "tag:<key>")
        return self


class Usage(BaseModel):
    """Token sums."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    total_tokens: int


class SummaryRow(BaseModel):
    """Totals of one group (or of everything)."""

    key: str | None = None
    cost: MoneyStr
    #: The part of ``cost`` that is built-in tool fees (web search, file search, containers …).
    tools_cost: MoneyStr = "0"
    calls: int
    errors: int
    error_rate: float
    avg_latency_ms: float | None
    tokens: Usage


class Summary(BaseModel):
    """Cost summary of a time range, optionally grouped."""

    start: datetime
    end: datetime
    tz: str
    group_by: str | None
    #: ``rollups``: the whole UTC hours of the range from the rollups, a partial hour at
    #: either end from the events; ``events``: everything from the events. Both exact.
    source: Literal["rollups", "events"]
    totals: SummaryRow
    #: The groups, costliest first (by time for day and hour); at most ``limit`` of them.
    groups: list[SummaryRow]
    #: How many groups there are in all (``limit`` may have left some out of ``groups``).
    group_count: int = 0
    #: The groups ``limit`` left out, summed into one row (key null); null when none were.
    other: SummaryRow | None = None


class TimeseriesQuery(_Range):
    """Parameters of a cost time series."""

    interval: Literal["hour", "day"] = "day"


class TimeseriesPoint(BaseModel):
    """One bucket of a time series (local time in ``tz``)."""

    start: datetime
    cost: MoneyStr
    calls: int
    errors: int
    tokens: int


class Timeseries(BaseModel):
    """Cost per hour or day."""

    start: datetime
    end: datetime
    tz: str
    interval: Literal["hour", "day"]
    source: Literal["rollups", "events"]
    points: list[TimeseriesPoint]
