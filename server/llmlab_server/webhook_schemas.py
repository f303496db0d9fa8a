"""Wire schemas of the webhook delivery log (``GET /api/webhooks/<id>/deliveries``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from llmlab_server.common_schemas import _In

__all__ = ["DeliveriesQuery", "DeliveryOut", "DeliveryPage", "DeliveryStatus"]

DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "dead"]


class DeliveriesQuery(_In):
    """Paging and filter of a webhook's deliveries (newest first)."""

    status: DeliveryStatus | None = None
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class DeliveryOut(BaseModel):
    """One delivery to a webhook and where it stands.

    ``id`` is the ``X-LLMLab-Delivery`` header the receiver got (the same on every try);
    ``status`` is ``pending`` (not tried yet), ``delivering`` (a try is under way),
    ``delivered``, ``failed`` (the last try failed; retried at ``next_attempt_at``) or ``dead``
    (no more tries). ``alert_id`` is None for a test ping.
    """

    id: str
    alert_id: int | None
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    """A page of deliveries; pass ``next_cursor`` as ``cursor`` for the next one."""

    deliveries: list[DeliveryOut]
    next_cursor: str | None
