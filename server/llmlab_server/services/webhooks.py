"""Webhooks: CRUD, test pings and the delivery log; the rest of the machinery, re-exported
here, is in `webhook_urls` (address screening), `webhook_signing` (secrets and signatures),
`webhook_outbox` (durable deliveries) and `webhook_delivery` (bound, fair delivery with
retries off the request thread).
"""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import select

from llmlab_server import db
from llmlab_server.budget_schemas import WebhookCreate, WebhookCreated, WebhookOut, WebhookUpdate
from llmlab_server.errors import BadRequest, NotFound
from llmlab_server.models import Webhook, WebhookDelivery
from llmlab_server.security import Principal
from llmlab_server.services import webhook_outbox as outbox
from llmlab_server.services.access import project_for, project_ids_for
from llmlab_server.services.webhook_delivery import project_webhooks, wait_idle, wake
from llmlab_server.services.webhook_outbox import HookRef
from llmlab_server.services.webhook_signing import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
    webhook_secret,
)
from llmlab_server.services.webhook_urls import Target, UnsafeURL, check_url
from llmlab_server.webhook_schemas import DeliveriesQuery, DeliveryOut, DeliveryPage

__all__ = ["ATTEMPT_HEADER", "DELIVERY_HEADER", "MAX_PER_PROJECT", "SIGNATURE_HEADER",
           "TIMESTAMP_HEADER", "HookRef", "Target", "UnsafeURL", "check_url", "create", "delete",
           "deliveries", "get", "list_webhooks", "project_webhooks", "send_test", "sign",
           "update_webhook", "verify", "wait_idle", "webhook_secret"]

MAX_PER_PROJECT = 20


def _refuse(exc: UnsafeURL) -> BadRequest:
    return BadRequest(f"This webhook URL is refused: {exc}.", code="webhook_url_refused",
                      param="url")


# -- CRUD --------------------------------------------------------------------------------------

def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, project_id=hook.project_id, name=hook.name, url=hook.url,
                      active=hook.active, secret_prefix=hook.secret_prefix,
                      created_at=hook.created_at, last_delivery_at=hook.last_delivery_at,
                      last_status=hook.last_status, last_error=hook.last_error)


def _load(principal: Principal, webhook_id: int, *, write: bool) -> Webhook:
    hook = db.session().get(Webhook, webhook_id)
    if hook is None:
        raise NotFound("No such webhook.", param="webhook_id")
    try:
        project_for(principal, hook.project_id, role="admin" if write else "viewer",
                    scope="admin" if write else "read")
    except NotFound:
        raise NotFound("No such webhook.", param="webhook_id") from None
    return hook


def create(principal: Principal, body: WebhookCreate) -> WebhookCreated:
    """Create a webhook (admin or owner); the secret is in this answer only."""
    project = project_for(principal, body.project_id, role="admin", scope="admin")
    try:
        check_url(body.url, current_app.config.get("WEBHOOK_ALLOW_PRIVATE", False))
    except UnsafeURL as exc:
        raise _refuse(exc) from None
    session = db.session()
    count = len(session.scalars(select(Webhook.id).where(Webhook.project_id == project.id)).all())
    if count >= MAX_PER_PROJECT:
        raise BadRequest(f"A project has at most {MAX_PER_PROJECT} webhooks.",
                         code="too_many_webhooks")
    salt = secrets.token_urlsafe(24)
    secret = webhook_secret(current_app.config["SECRET_KEY"], salt)
    hook = Webhook(project_id=project.id, name=body.name, url=body.url, secret_salt=salt,
                   secret_prefix=secret[:12], active=True,
                   created_by=principal.user.id if principal.user else None)
    session.add(hook)
    session.commit()
    return WebhookCreated(**_out(hook).model_dump(), secret=secret)


def list_webhooks(principal: Principal, project_id: int | None) -> list[WebhookOut]:
    """Webhooks of the visible projects (or of one)."""
    ids = project_ids_for(principal, project_id)
    hooks = db.session().scalars(select(Webhook).where(Webhook.project_id.in_(ids))
                                 .order_by(Webhook.id))
    return [_out(h) for h in hooks]


def get(principal: Principal, webhook_id: int) -> WebhookOut:
    """One webhook (without its secret)."""
    return _out(_load(principal, webhook_id, write=False))


def update_webhook(principal: Principal, webhook_id: int, body: WebhookUpdate) -> WebhookOut:
    """Change a webhook's URL, name or active flag (admin or owner)."""
    hook = _load(principal, webhook_id, write=True)
    if body.url is not None:
        try:
            check_url(body.url, current_app.config.get("WEBHOOK_ALLOW_PRIVATE", False))
        except UnsafeURL as exc:
            raise _refuse(exc) from None
        hook.url = body.url
    if body.name is not None:
        hook.name = body.name
    if body.active is not None:
        hook.active = body.active
    db.session().commit()
    return _out(hook)


def delete(principal: Principal, webhook_id: int) -> None:
    """Delete a webhook (admin or owner)."""
    hook = _load(principal, webhook_id, write=True)
    session = db.session()
    session.delete(hook)
    session.commit()


def send_test(principal: Principal, webhook_id: int) -> str:
    """Queue a signed ``ping`` delivery to a webhook (admin or owner), through the outbox like
    an alert; its delivery id."""
    hook = _load(principal, webhook_id, write=True)
    session = db.session()
    (delivery,) = outbox.enqueue(
        session, [HookRef(hook.id, hook.project_id, hook.secret_salt)],
        {"type": "ping", "webhook_id": hook.id, "project_id": hook.project_id})
    session.commit()
    wake(current_app._get_current_object())  # type: ignore[attr-defined]
    return delivery


def _delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(id=row.delivery_id, alert_id=row.alert_id, type=row.event_type,
                       status=row.status,  # type: ignore[arg-type]
                       attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                       last_status_code=row.last_status_code, last_error=row.last_error,
                       last_latency_ms=row.last_latency_ms, created_at=row.created_at,
                       delivered_at=row.delivered_at)


def deliveries(principal: Principal, webhook_id: int, query: DeliveriesQuery) -> DeliveryPage:
    """A webhook's deliveries, newest first, a page at a time (who may read the webhook)."""
    hook = _load(principal, webhook_id, write=False)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id,
                                         WebhookDelivery.webhook_salt == hook.secret_salt)
    if query.status is not None:
        stmt = stmt.where(WebhookDelivery.status == query.status)
    if query.cursor:
        stmt = stmt.where(WebhookDelivery.id < outbox.decode_cursor(query.cursor))
    rows = list(db.session().scalars(stmt.order_by(WebhookDelivery.id.desc())
                                     .limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return DeliveryPage(deliveries=[_delivery_out(r) for r in rows],
                        next_cursor=outbox.encode_cursor(rows[-1].id) if more else None)
