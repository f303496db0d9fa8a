"""Wire schemas of ``POST /api/events/track``: the batch, the project it goes to, and the
per-event results (HTTP 207)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from llmlab.schema import CostEvent
from llmlab_server.common_schemas import Id, _In

__all__ = ["EventError", "EventResult", "TrackBatch", "TrackBody", "TrackQuery", "TrackResult"]


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


class TrackBatch(_In):
    """A batch of events; each one is validated on its own (see the per-event results)."""

    events: list[CostEvent]


#: The body of ``POST /api/events/track`` (documentation: events are validated one by one).
TrackBody = CostEvent | TrackBatch
