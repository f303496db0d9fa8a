"""Alert webhooks: ``/api/webhooks`` (the secret is shown once, at creation)."""

from __future__ import annotations

from flask import Blueprint, Response

from llmlab_server.budget_schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhooksQuery,
    WebhookTest,
    WebhookUpdate,
)
from llmlab_server.openapi import ok, operation, principal
from llmlab_server.services import webhooks
from llmlab_server.webhook_schemas import DeliveriesQuery, DeliveryPage

bp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks")


@bp.post("")
@operation(tag="webhooks", body=WebhookCreate, response=WebhookCreated, status=201)
def create_webhook(body: WebhookCreate) -> Response:
    """Create a webhook (admin or owner); internal addresses are refused.

    Deliveries are signed: ``X-LLMLab-Signature: sha256=HMAC(secret, timestamp + "." + body)``
    with ``X-LLMLab-Timestamp``; ``X-LLMLab-Delivery`` is the same on every retry (dedup on
    it). The ``secret`` is in this response only.
    """
    return ok(webhooks.create(principal(), body), 201)


@bp.get("")
@operation(tag="webhooks", scope="read", query=WebhooksQuery, response=list[WebhookOut])
def list_webhooks(query: WebhooksQuery) -> Response:
    """Webhooks of the projects the caller can see (no secrets)."""
    return ok(webhooks.list_webhooks(principal(), query.project))


@bp.get("/<int:webhook_id>")
@operation(tag="webhooks", scope="read", response=WebhookOut)
def get_webhook(webhook_id: int) -> Response:
    """One webhook, with the outcome of its last delivery."""
    return ok(webhooks.get(principal(), webhook_id))


@bp.patch("/<int:webhook_id>")
@operation(tag="webhooks", body=WebhookUpdate, response=WebhookOut)
def update_webhook(webhook_id: int, body: WebhookUpdate) -> Response:
    """Change a webhook's URL, name or active flag (admin or owner)."""
    return ok(webhooks.update_webhook(principal(), webhook_id, body))


@bp.delete("/<int:webhook_id>")
@operation(tag="webhooks", response=None)
def delete_webhook(webhook_id: int) -> Response:
    """Delete a webhook (admin or owner)."""
    webhooks.delete(principal(), webhook_id)
    return ok(None)


@bp.post("/<int:webhook_id>/test")
@operation(tag="webhooks", response=WebhookTest, status=202)
def test_webhook(webhook_id: int) -> Response:
    """Send a signed ``ping`` to the webhook (delivered in the background, logged in its
    deliveries like an alert)."""
    webhooks.send_test(principal(), webhook_id)
    return ok(WebhookTest(queued=True), 202)


@bp.get("/<int:webhook_id>/deliveries")
@operation(tag="webhooks", scope="read", query=DeliveriesQuery, response=DeliveryPage)
def list_deliveries(webhook_id: int, query: DeliveriesQuery) -> Response:
    """The webhook's deliveries (alerts and test pings), newest first, with how each stands:
    ``pending``, ``delivering``, ``delivered``, ``failed`` (retried at ``next_attempt_at``) or
    ``dead`` (no more tries). Pass ``next_cursor`` as ``cursor`` for the next page."""
    return ok(webhooks.deliveries(principal(), webhook_id, query))
