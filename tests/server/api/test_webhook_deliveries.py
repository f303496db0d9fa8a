"""The webhook delivery log (``GET /api/webhooks/<id>/deliveries``) and the outbox behind it:
alerts queued with their deliveries, every try logged, dead letters, tenancy, paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from llmlab_server.models import WebhookDelivery, WebhookDeliveryAttempt
from llmlab_server.services import webhook_outbox as outbox
from llmlab_server.services import webhooks

from ..helpers import Api, Receiver, make_event
from .test_webhooks import hook

FIELDS = {"id", "alert_id", "type", "status", "attempts", "next_attempt_at", "last_status_code",
          "last_error", "last_latency_ms", "created_at", "delivered_at"}


@pytest.fixture
def app_config() -> dict[str, object]:
    """Loopback allowed; fast retries; three tries before a delivery is dead."""
    return {"WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8,::1/128", "WEBHOOK_RETRY_BASE": 0.05,
            "WEBHOOK_MAX_ATTEMPTS": 3}


def deliveries(api: Api, token: str, webhook_id: int, query: str = "") -> Any:
    """One page of a webhook's delivery log."""
    return api.data("GET", f"/api/webhooks/{webhook_id}/deliveries{query}", token)


class TestLog:
    """Each delivery and each of its tries is recorded."""

    def test_retried_ping_is_logged_with_every_try(self, app: Flask, api: Api,
                                                   receiver: Receiver) -> None:
        """500, 503, 200: one delivery, three tries logged (code, latency), delivered."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        receiver.statuses = [500, 503]
        api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        assert webhooks.wait_idle(app)
        page = deliveries(api, t.token, h["id"])
        (row,) = page["deliveries"]
        assert set(row) == FIELDS and page["next_cursor"] is None
        assert row["id"] == receiver.requests[0][0]["X-LLMLab-Delivery"]
        assert (row["status"], row["attempts"], row["alert_id"], row["type"]) == (
            "delivered", 3, None, "ping")
        assert row["last_status_code"] == 200 and row["last_error"] is None
        assert row["last_latency_ms"] > 0 and row["delivered_at"] is not None
        assert row["next_attempt_at"] is None
        with app.extensions["llmlab_db"][1]() as session:
            tries = session.execute(
                select(WebhookDeliveryAttempt.attempt, WebhookDeliveryAttempt.status_code,
                       WebhookDeliveryAttempt.error, WebhookDeliveryAttempt.latency_ms)
                .order_by(WebhookDeliveryAttempt.attempt)).all()
        assert [(a, c, e) for a, c, e, _ in tries] == [
            (1, 500, "HTTP 500"), (2, 503, "HTTP 503"), (3, 200, None)]
        assert all(latency is not None and latency > 0 for *_, latency in tries)

    def test_dead_after_max_attempts_then_retried(self, app: Flask, api: Api,
                                                  receiver: Receiver) -> None:
        """Three 500s make the delivery dead; a retry of dead deliveries sends it again with
        the same delivery id, and it is delivered."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        receiver.statuses = [500] * 3
        api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        assert webhooks.wait_idle(app)
        (row,) = deliveries(api, t.token, h["id"])["deliveries"]
        assert (row["status"], row["attempts"], row["last_status_code"]) == ("dead", 3, 500)
        assert row["last_error"] == "HTTP 500" and row["next_attempt_at"] is None
        assert deliveries(api, t.token, h["id"], "?status=dead")["deliveries"]
        with app.extensions["llmlab_db"][1]() as session:
            assert outbox.retry_dead(session) == 1
        assert webhooks.wait_idle(app)
        (row,) = deliveries(api, t.token, h["id"])["deliveries"]
        assert row["status"] == "delivered"
        assert {r[0]["X-LLMLab-Delivery"] for r in receiver.requests} == {row["id"]}
        assert len(receiver.requests) == 4

    def test_alert_is_queued_with_its_delivery(self, app: Flask, api: Api,
                                               receiver: Receiver) -> None:
        """The alert and its outbox row are written together: the row names the alert, and
        exists before any dispatcher ran."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        api.data("POST", "/api/budgets", t.token, {"project_id": t.project_id,
                                                   "amount": "0.001", "thresholds": [100]},
                 status=201)
        api.track(t.key, [make_event(timestamp=datetime.now(UTC).isoformat())])
        (alert,) = api.data("GET", f"/api/alerts?project={t.project_id}", t.token)
        with app.extensions["llmlab_db"][1]() as session:
            (row,) = session.scalars(select(WebhookDelivery)).all()
        assert (row.alert_id, row.webhook_id, row.event_type) == (
            alert["id"], h["id"], "budget.threshold")
        assert webhooks.wait_idle(app)
        (out,) = deliveries(api, t.token, h["id"])["deliveries"]
        assert (out["alert_id"], out["status"]) == (alert["id"], "delivered")
        assert receiver.requests[0][0]["X-LLMLab-Delivery"] == out["id"]


class TestRoute:
    """Scoped like every webhook route; newest first; cursor paging."""

    def test_newest_first_and_paged(self, app: Flask, api: Api, receiver: Receiver) -> None:
        """Five pings, pages of two: newest first, every delivery once, then no cursor."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        for _ in range(5):
            api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        assert webhooks.wait_idle(app)
        seen: list[str] = []
        query = "?limit=2"
        while True:
            page = deliveries(api, t.token, h["id"], query)
            seen += [d["id"] for d in page["deliveries"]]
            if page["next_cursor"] is None:
                break
            query = f"?limit=2&cursor={page['next_cursor']}"
        sent = [r[0]["X-LLMLab-Delivery"] for r in receiver.requests]
        assert sorted(seen) == sorted(sent) and len(seen) == 5
        with app.extensions["llmlab_db"][1]() as session:
            order = list(session.scalars(select(WebhookDelivery.delivery_id)
                                         .order_by(WebhookDelivery.id.desc())))
        assert seen == order

    def test_other_tenants_and_bad_input(self, api: Api, receiver: Receiver) -> None:
        """Another tenant gets 404 (user or key); a viewer-level key may read; a bad cursor
        or status is a 400 with the error envelope."""
        t, intruder = api.tenant(), api.tenant()
        h = hook(api, t, receiver.url)
        path = f"/api/webhooks/{h['id']}/deliveries"
        for token in (intruder.token, intruder.key):
            assert api.call("GET", path, token).status_code == 404
        assert api.data("GET", path, t.key)["deliveries"] == []
        assert api.call("GET", "/api/webhooks/999999/deliveries", t.token).status_code == 404
        for query in ("?cursor=nope", "?status=lost", "?limit=0"):
            response = api.call("GET", path + query, t.token)
            assert response.status_code == 400, query
            assert response.get_json()["success"] is False

    def test_in_the_openapi_document(self, api: Api) -> None:
        """The route and its page schema are documented."""
        spec = api.client.get("/api/openapi.json").get_json()
        op = spec["paths"]["/api/webhooks/{webhook_id}/deliveries"]["get"]
        assert {p["name"] for p in op["parameters"]} >= {"webhook_id", "cursor", "limit"}
        assert "DeliveryPage" in str(op["responses"]["200"])
