"""Wire schemas of event reads: the filters and pages of ``GET /api/events`` (tags
included) and of CSV exports, a stored event, and the query of ``GET /api/events/<event id>``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from llmlab_server.common_schemas import Filter, Id, MoneyStr, _In, _Range

__all__ = ["EVENT_ID_PATTERN", "MAX_TAG_FILTERS", "EventOut", "EventPage", "EventQuery",
           "EventsQuery", "ExportQuery", "TaggedEventsQuery"]

#: The event ids the SDK schema accepts; any other id names no stored event.
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
#: Most ``tag`` filters in one query.
MAX_TAG_FILTERS = 8
#: ``key:value``: the key as events store it (no ``:``), the value after the first ``:``.
TagFilter = Annotated[str, StringConstraints(
    min_length=2, max_length=321, pattern=r"^[A-Za-z0-9_.-]{1,64}:[^\x00]{0,256}$")]


class _TagFilters(_In):
    tag: list[TagFilter] = Field(
        default_factory=list, max_length=MAX_TAG_FILTERS,
        description="key:value; repeat for events that have every one of these tags")

    @property
    def tag_pairs(self) -> list[tuple[str, str]]:
        """The ``tag`` filters as ``(key, value)``."""
        return [(key, value) for key, _, value in (t.partition(":") for t in self.tag)]


class EventsQuery(_Range):
    """Filters and paging of the event list (newest first)."""

    model: Filter | None = None
    provider: Filter | None = None
    job: Filter | None = None
    user: Filter | None = None
    status: Literal["ok", "error", "cancelled"] | None = None
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class ExportQuery(_TagFilters, _Range):
    """Filters of a CSV export (oldest first); ``tag=key:value`` (repeatable) keeps the events
    that have every one of those tags."""

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


class TaggedEventsQuery(_TagFilters, EventsQuery):
    """Filters and paging of the event list (newest first), tags included."""


class EventQuery(_In):
    """Which project an event id is looked up in (default: every visible project)."""

    project: Id | None = Field(None, description="Project id; needed only when the same event "
                                                  "id is stored in two of your projects")
