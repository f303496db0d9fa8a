"""Webhooks API: secrets shown once, SSRF refused, signed deliveries, retries, tenancy."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError

from llmlab_server.services import webhook_outbox as outbox
from llmlab_server.services import webhooks

from ..helpers import Api, Receiver, Tenant, make_event


@pytest.fixture
def app_config() -> dict[str, object]:
    """Loopback allowed explicitly (the receiver is local); fast retries."""
    return {"WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8,::1/128", "WEBHOOK_RETRY_BASE": 0.05,
            "WEBHOOK_MAX_ATTEMPTS": 3}


def hook(api: Api, t: Tenant, url: str, status: int = 201) -> Any:
    """Create a webhook."""
    return api.data("POST", "/api/webhooks", t.token, {"project_id": t.project_id, "url": url},
                    status=status)


class TestCrud:
    """Create, list, update, delete; the secret appears once."""

    def test_secret_shown_once(self, api: Api, receiver: Receiver) -> None:
        """The create answer carries the secret; reads only its prefix."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        assert h["secret"].startswith("whsec_") and h["secret"][:12] == h["secret_prefix"]
        got = api.data("GET", f"/api/webhooks/{h['id']}", t.token)
        assert "secret" not in got and got["url"] == receiver.url
        assert all("secret" not in w for w in api.data("GET", "/api/webhooks", t.token))
        assert api.data("PATCH", f"/api/webhooks/{h['id']}", t.token,
                        {"active": False})["active"] is False
        api.data("DELETE", f"/api/webhooks/{h['id']}", t.token)
        assert api.data("GET", "/api/webhooks", t.token) == []

    def test_other_tenants_get_404(self, api: Api, receiver: Receiver) -> None:
        """Every webhook route answers 404 to another tenant (user or key)."""
        t, intruder = api.tenant(), api.tenant()
        h = hook(api, t, receiver.url)
        for method, path, body in (
                ("GET", f"/api/webhooks/{h['id']}", None),
                ("PATCH", f"/api/webhooks/{h['id']}", {"active": False}),
                ("DELETE", f"/api/webhooks/{h['id']}", None),
                ("POST", f"/api/webhooks/{h['id']}/test", None),
                ("GET", f"/api/webhooks?project={t.project_id}", None),
                ("POST", "/api/webhooks", {"project_id": t.project_id, "url": receiver.url})):
            for token in (intruder.token, intruder.key):
                assert api.call(method, path, token, body).status_code == 404, (method, path)

    def test_viewer_cannot_create(self, api: Api, receiver: Receiver) -> None:
        """Webhooks are admin-only to write."""
        t = api.tenant()
        other = api.signup()
        api.add_member(t.token, t.project_id, other, "member")
        assert api.call("POST", "/api/webhooks", other["access_token"],
                        {"project_id": t.project_id, "url": receiver.url}).status_code == 403


class TestSSRF:
    """Internal addresses are refused at create and at send time."""

    @pytest.mark.parametrize("url", ["http://10.0.0.1/x", "http://169.254.169.254/",
                                     "http://192.168.1.1/", "http://[fe80::1]/",
                                     "http://224.0.0.1/", "http://0.0.0.0/"])
    def test_internal_urls_refused_at_create(self, api: Api, url: str) -> None:
        """Private, link-local, multicast and unspecified addresses are a 400."""
        t = api.tenant()
        response = api.call("POST", "/api/webhooks", t.token,
                            {"project_id": t.project_id, "url": url})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "webhook_url_refused"

    def test_loopback_refused_by_default(self, app: Flask, api: Api) -> None:
        """Without WEBHOOK_ALLOW_PRIVATE, loopback is refused as well."""
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False
        t = api.tenant()
        response = api.call("POST", "/api/webhooks", t.token,
                            {"project_id": t.project_id, "url": "http://127.0.0.1:1/"})
        assert response.status_code == 400

    def test_refused_at_send_time_after_rebinding(self, app: Flask, api: Api,
                                                  receiver: Receiver) -> None:
        """A webhook whose address stops being allowed is not contacted at delivery."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False  # as if the name now pointed inside
        api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        assert webhooks.wait_idle(app)
        assert receiver.requests == []
        got = api.data("GET", f"/api/webhooks/{h['id']}", t.token)
        assert got["last_status"] == "refused"


class TestDelivery:
    """Alerts are POSTed signed, verifiable, and retried with backoff."""

    def test_alert_delivery_is_signed_and_verifiable(self, app: Flask, api: Api,
                                                     receiver: Receiver) -> None:
        """A threshold alert reaches the receiver with a valid HMAC signature."""
        t = api.tenant()
        secret = hook(api, t, receiver.url)["secret"]
        api.data("POST", "/api/budgets", t.token, {"project_id": t.project_id,
                                                   "amount": "0.001", "thresholds": [100]},
                 status=201)
        api.track(t.key, [make_event(timestamp=datetime.now(UTC).isoformat())])
        assert webhooks.wait_idle(app)
        (headers, body), = receiver.requests
        assert webhooks.verify(secret, headers["X-LLMLab-Timestamp"], body,
                               headers["X-LLMLab-Signature"])
        assert not webhooks.verify(secret, headers["X-LLMLab-Timestamp"], body + b" ",
                                   headers["X-LLMLab-Signature"])
        payload = json.loads(body)
        assert payload["type"] == "budget.threshold"
        assert payload["alert"]["threshold"] == 100 and payload["project"]["id"] == t.project_id

    def test_failures_are_retried_then_delivered(self, app: Flask, api: Api,
                                                 receiver: Receiver) -> None:
        """Two 500s then a 200: three attempts, same delivery id, fresh signatures."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        receiver.statuses = [500, 503]
        api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        assert webhooks.wait_idle(app)
        assert len(receiver.requests) == 3
        assert len({r[0]["X-LLMLab-Delivery"] for r in receiver.requests}) == 1
        assert [r[0]["X-LLMLab-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
        for headers, body in receiver.requests:
            assert webhooks.verify(h["secret"], headers["X-LLMLab-Timestamp"], body,
                                   headers["X-LLMLab-Signature"])
        assert api.data("GET", f"/api/webhooks/{h['id']}", t.token)["last_status"] == "delivered"

    def test_gives_up_after_the_last_retry(self, app: Flask, api: Api,
                                           receiver: Receiver) -> None:
        """Always 500: WEBHOOK_MAX_ATTEMPTS tries, then 'failed' (the delivery is dead)."""
        t = api.tenant()
        h = hook(api, t, receiver.url)
        receiver.statuses = [500] * 10
        api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
        assert webhooks.wait_idle(app)
        assert len(receiver.requests) == 3
        got = api.data("GET", f"/api/webhooks/{h['id']}", t.token)
        assert got["last_status"] == "failed" and got["last_error"] == "HTTP 500"


class Blackhole:
    """A local TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        """Stop accepting and drop every held connection (pending reads fail at once)."""
        self.sock.close()
        for conn in self.held:
            conn.close()


class TestBoundToTheRow:
    """A queued delivery goes to the webhook row it was queued for, or nowhere."""

    def test_reused_id_does_not_receive_another_tenants_alert(
            self, app: Flask, api: Api, backend: str, receiver: Receiver) -> None:
        """Tenant A's delivery queued before A's webhook was deleted never reaches tenant B's
        new webhook, even when SQLite gives B's the same id (it did, signed with B's secret)."""
        a, b = api.tenant(), api.tenant()
        old = hook(api, a, "http://127.0.0.1:9/")
        factory = app.extensions["llmlab_db"][1]
        with factory() as session:  # queued while A's webhook exists (not sent yet)
            queued = webhooks.project_webhooks(session, a.project_id)
            outbox.enqueue(session, queued, {"type": "budget.threshold",
                                             "project": {"slug": "tenant-a-secret"}})
            session.commit()
        api.data("DELETE", f"/api/webhooks/{old['id']}", a.token)
        new = hook(api, b, receiver.url)
        if backend == "sqlite":
            assert new["id"] == old["id"]  # the id was reused: the attack's precondition
        with factory() as session:  # a stale binding written after the delete
            try:
                outbox.enqueue(session, queued, {"type": "budget.threshold",
                                                 "project": {"slug": "tenant-a-secret"}})
                session.commit()
            except IntegrityError:  # PostgreSQL: that id is no row any more
                assert backend == "postgresql"
        assert webhooks.wait_idle(app)
        assert receiver.requests == []
        assert api.data("GET", f"/api/webhooks/{new['id']}", b.token)["last_status"] is None


class TestFairness:
    """One tenant's unresponsive receiver does not delay another tenant's deliveries."""

    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        """Loopback allowed; a 3 s timeout; a retry, so the stuck tenant keeps trying."""
        return {"WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8", "WEBHOOK_RETRY_BASE": 0.05,
                "WEBHOOK_MAX_ATTEMPTS": 2, "WEBHOOK_TIMEOUT": 3.0}

    def test_stuck_tenant_holds_only_its_share(self, app: Flask, api: Api,
                                               receiver: Receiver) -> None:
        """Four pings to a host that never answers: another tenant's alert still arrives in
        well under a second (it waited for all of them, over 45 s in production, before)."""
        hole = Blackhole()
        try:
            slow, fast = api.tenant(), api.tenant()
            stuck = hook(api, slow, hole.url)
            for _ in range(4):
                api.data("POST", f"/api/webhooks/{stuck['id']}/test", slow.token, status=202)
            time.sleep(0.2)  # the pings are connected and waiting
            hook(api, fast, receiver.url)
            api.data("POST", "/api/budgets", fast.token, {
                "project_id": fast.project_id, "amount": "0.001", "thresholds": [100]},
                status=201)
            started = time.monotonic()
            api.track(fast.key, [make_event(timestamp=datetime.now(UTC).isoformat())])
            while not receiver.requests and time.monotonic() - started < 10:
                time.sleep(0.01)
            assert receiver.requests, "the healthy tenant's alert was not delivered"
            assert time.monotonic() - started < 1.0
        finally:
            hole.close()
        assert webhooks.wait_idle(app, 20)
        got = api.data("GET", f"/api/webhooks/{stuck['id']}", slow.token)
        assert got["last_status"] == "failed"

    def test_timeout_bounds_an_unanswered_delivery(self, app: Flask, api: Api) -> None:
        """A receiver that accepts and never answers fails the attempt after WEBHOOK_TIMEOUT."""
        app.config.update(WEBHOOK_TIMEOUT=0.5, WEBHOOK_MAX_ATTEMPTS=1)
        hole = Blackhole()
        try:
            t = api.tenant()
            h = hook(api, t, hole.url)
            started = time.monotonic()
            api.data("POST", f"/api/webhooks/{h['id']}/test", t.token, status=202)
            assert webhooks.wait_idle(app, 5)
            assert time.monotonic() - started < 2.0
        finally:
            hole.close()
        got = api.data("GET", f"/api/webhooks/{h['id']}", t.token)
        assert got["last_status"] == "failed" and "Timeout" in got["last_error"]


class TestMalformedUrl:
    """A URL the parser rejects is a 400, not a 500."""

    @pytest.mark.parametrize("url", ["http://[::1/", "http://[::1/hook", "https://[zz]/"])
    def test_unclosed_ipv6_bracket_is_400(self, api: Api, url: str) -> None:
        """An unclosed or invalid IPv6 literal is refused with webhook_url_refused."""
        t = api.tenant()
        response = api.call("POST", "/api/webhooks", t.token,
                            {"project_id": t.project_id, "url": url})
        assert response.status_code == 400, response.get_json()
        assert response.get_json()["error"]["code"] == "webhook_url_refused"
