"""Wire schemas of event reads beyond `llmlab_server.schemas`: the tag filter of
``GET /api/events`` and the query of ``GET /api/events/<event id>``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from llmlab_server.schemas import EventsQuery, Id, _In

__all__ = ["EVENT_ID_PATTERN", "MAX_TAG_FILTERS", "EventQuery", "TaggedEventsQuery"]

#: The event ids the SDK schema accepts; any other id names no stored event.
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
#: Most ``tag`` filters in one query.
MAX_TAG_FILTERS = 8
#: ``key:value``: the key as events store it (no ``:``), the value after the first ``:``.
TagFilter = Annotated[str, StringConstraints(
    min_length=2, max_length=321, pattern=r"^[A-Za-z0-9_.-]{1,64}:[^\x00]{0,256}$")]


class TaggedEventsQuery(EventsQuery):
    """Filters and paging of the event list (newest first), tags included."""

    tag: list[TagFilter] = Field(
        default_factory=list, max_length=MAX_TAG_FILTERS,
        description="key:value; repeat for events that have every one of these tags")

    @property
    def tag_pairs(self) -> list[tuple[str, str]]:
        """The ``tag`` filters as ``(key, value)``."""
        return [(key, value) for key, _, value in (t.partition(":") for t in self.tag)]


class EventQuery(_In):
    """Which project an event id is looked up in (default: every visible project)."""

    project: Id | None = Field(None, description="Project id; needed only when the same event "
                                                  "id is stored in two of your projects")
