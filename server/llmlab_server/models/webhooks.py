"""Alert webhooks (issue #6) and their durable deliveries and attempts (issue #19)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmlab_server.models.base import Base, BigId, utcnow

__all__ = ["Webhook", "WebhookDelivery", "WebhookDeliveryAttempt"]


class Webhook(Base):
    """A project's alert receiver; its signing secret is derived, never stored."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    #: Random salt; the secret is HMAC(SECRET_KEY, salt), shown once at creation.
    secret_salt: Mapped[str] = mapped_column(String(64))
    secret_prefix: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_delivery_at: Mapped[datetime | None]
    #: ``delivered``, ``failed`` or ``refused`` (address screened out at send time).
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(512))


class WebhookDelivery(Base):
    """One payload owed to one webhook row (the outbox): claimed, retried and logged until it
    is ``delivered`` or ``dead``; bound to the row by id, project and secret salt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The ``X-LLMLab-Delivery`` header: the same on every attempt, for receivers to dedup on.
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    #: The webhook's salt when the delivery was queued: a re-keyed or reused row gets nothing.
    webhook_salt: Mapped[str] = mapped_column(String(64))
    #: The alert delivered (None for a test ping).
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("budget_alerts.id", ondelete="SET NULL"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    #: The exact JSON bytes signed and sent.
    body: Mapped[str] = mapped_column(Text)
    #: ``pending``, ``delivering`` (claimed under a lease), ``delivered``, ``failed`` (not
    #: retried: the row is gone or the address refused) or ``dead`` (out of tries).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    #: A claimed delivery belongs to its claimer until then (a crashed claimer's is re-claimed).
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(512))
    last_latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookDeliveryAttempt(Base):
    """One attempt of a `WebhookDelivery`: answer code, latency, error."""

    __tablename__ = "webhook_delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(512))
