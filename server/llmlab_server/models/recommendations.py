"""Recommendation dismissals and snoozes (issue #17)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmlab_server.models.base import Base, BigId, utcnow

__all__ = ["RecommendationState"]


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
