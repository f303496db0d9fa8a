"""Ingest quota counters (`llmlab_server.services.quotas`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from llmlab_server.models.base import Base

__all__ = ["IngestQuotaUsage"]


class IngestQuotaUsage(Base):
    """A project's event count for one quota period (`llmlab_server.services.quotas`).

    ``day`` and ``minute`` count the events stored in the current UTC window and restart when
    a new window starts; ``stored`` counts the events the project keeps (prune subtracts what
    it deletes, and it is recounted from the events now and then). So the table stays at most
    three rows per project.
    """

    __tablename__ = "ingest_quota_usage"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: The window's start (for ``stored``, when the events were last counted; 0: never), in
    #: Unix seconds (an integer compares alike on both databases).
    started: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)
