"""Wire schemas of recommendation states: dismiss, snooze, restore, and the list that hides
them (the recommendations themselves are in `llmlab_server.budget_schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from llmlab_server.budget_schemas import Recommendation, Recommendations, RecommendationsQuery
from llmlab_server.common_schemas import Id, _In

__all__ = ["REC_ID_PATTERN", "RecommendationList", "RecommendationListQuery",
           "RecommendationOut", "RecommendationStateOut", "SnoozeBody", "StateBody"]

#: A recommendation id: 16 lower-case hex digits.
REC_ID_PATTERN = r"^[0-9a-f]{16}$"


class RecommendationListQuery(RecommendationsQuery):
    """Which project, how many days of history, and whether to list hidden ones."""

    include_dismissed: bool = Field(
        False, description="Also list dismissed and snoozed recommendations (with their state)")


class RecommendationStateOut(BaseModel):
    """A project's decision about one recommendation."""

    id: str
    project_id: int
    state: Literal["active", "dismissed", "snoozed"]
    #: When a snooze ends (None unless snoozed).
    until: datetime | None = None
    updated_at: datetime | None = None


class RecommendationOut(Recommendation):
    """A recommendation, with its stable id and the project's decision about it."""

    #: Stable while the same advice applies (kind, project, provider, model, job).
    id: str
    state: Literal["active", "dismissed", "snoozed"] = "active"
    snoozed_until: datetime | None = None


class RecommendationList(Recommendations):
    """Recommendations, largest saving first; ``hidden`` counts the dismissed and snoozed."""

    recommendations: list[RecommendationOut]  # type: ignore[assignment]
    hidden: int = 0


class StateBody(_In):
    """The project of the recommendation to dismiss or restore."""

    project_id: Id


class SnoozeBody(StateBody):
    """The project, and until when (within a year) the recommendation stays hidden."""

    until: AwareDatetime = Field(description="ISO 8601 with a time zone, in the future")
