"""Budgets (spending limits) and the alerts raised when spend crosses their thresholds
(issue #6)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmlab_server.models.base import Base, BigId, utcnow

__all__ = ["Budget", "BudgetAlert"]


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
