"""Two server instances (gunicorn, the shipped config) on different ports sharing one
PostgreSQL schema and one Redis, with the real SDK sending to both (issue #19, item 7).

Asserted: the per-key rate limit holds across the instances; an alert fires once and its
webhook is delivered once; a kill -9 of an instance mid-stream loses nothing (the SDK's retries
and spool deliver every event, stored once); both instances report the same summary; and a
webhook delivery pending a retry when its server is killed arrives after the restart, once,
with the same delivery id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmlab.testing import FakeProvider, FakeUsage
from webhook_receiver import Receiver

from ._cluster import Instance, Schema, cluster_env, finish_sdk, run_sdk
from .conftest import Tenant, make_tenant


@pytest.fixture
def schema() -> Iterator[Schema]:
    """A fresh migrated PostgreSQL schema shared by the instances."""
    made = Schema()
    yield made
    made.drop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local webhook receiver."""
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[list[Instance]]:
    """Started instances are stopped after the test."""
    started: list[Instance] = []
    yield started
    for instance in started:
        instance.terminate()


def start(instances: list[Instance], env: dict[str, str], tmp_path: Path, count: int
          ) -> list[Instance]:
    """``count`` more instances on ``env``."""
    new = [Instance(env, tmp_path / f"gunicorn-{len(instances) + n}.log").start()
           for n in range(count)]
    instances.extend(new)
    return new


def call(instance: Instance, method: str, path: str, token: str, **kwargs: Any
         ) -> httpx.Response:
    """One API request to ``instance`` with a bearer token."""
    return httpx.request(method, instance.url + path, timeout=10,
                         headers={"Authorization": f"Bearer {token}"}, **kwargs)


def data(instance: Instance, method: str, path: str, token: str, **kwargs: Any) -> Any:
    """The ``data`` of a successful request."""
    response = call(instance, method, path, token, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()["data"]


def add_webhook(instance: Instance, tenant: Tenant, url: str) -> dict[str, Any]:
    hook: dict[str, Any] = data(instance, "POST", "/api/webhooks", tenant.token,
                                json={"project_id": tenant.project_id, "url": url})
    return hook


def test_rate_limit_holds_across_instances(instances: list[Instance], schema: Schema,
                                           tmp_path: Path) -> None:
    """A key with a burst of 10 (0.5/s after) sends 40 ingests alternating between the two
    instances: at most the burst plus the refill gets through (each instance limiting alone
    would let 20 through)."""
    env = cluster_env(schema, tmp_path / "home", RATE_LIMIT_PER_SECOND="0.5",
                      RATE_LIMIT_BURST="10")
    a, b = start(instances, env, tmp_path, 2)
    tenant = make_tenant(a.url)
    started = time.monotonic()
    codes = []
    for n in range(40):
        target = (a, b)[n % 2]
        event = {"id": f"rl-{n}", "timestamp": "2026-11-02T10:15:00Z", "provider": "openai",
                 "model": "gpt-4o", "usage": {"input_tokens": 10, "output_tokens": 1},
                 "status": "ok"}
        codes.append(call(target, "POST", "/api/events/track", tenant.key,
                          json={"events": [event]}).status_code)
    elapsed = time.monotonic() - started
    passed = codes.count(207)
    assert set(codes) <= {207, 429}, codes
    assert 10 <= passed <= 10 + int(elapsed * 0.5) + 1, (passed, elapsed, codes)
    assert 207 in codes[1::2] and 429 in codes[0::2] + codes[1::2]


def test_alert_once_webhook_once_kill9_loses_nothing_summaries_agree(
        instances: list[Instance], schema: Schema, receiver: Receiver, tmp_path: Path) -> None:
    """Two SDK apps send 60 calls each, one to each instance, while a budget crosses 100 %;
    instance A is killed with SIGKILL mid-stream and restarted on its port. Every event is
    stored exactly once, the alert is recorded and delivered once, and both instances answer
    the same summary."""
    env = cluster_env(schema, tmp_path / "home", WEBHOOK_RETRY_BASE="0.5")
    a, b = start(instances, env, tmp_path, 2)
    tenant = make_tenant(a.url)
    add_webhook(b, tenant, receiver.url)
    data(b, "POST", "/api/budgets", tenant.token, json={
        "project_id": tenant.project_id, "name": "cap", "amount": "0.05", "period": "total",
        "action": "alert", "thresholds": [100]})
    calls = 60
    with FakeProvider(usage=FakeUsage(input_tokens=1000, output_tokens=100)) as fp:
        apps = [run_sdk(tenant.key, inst.url, fp.openai_base_url, tmp_path / f"sdk-{n}", calls,
                        pause=0.05) for n, inst in enumerate((a, b))]
        deadline = time.monotonic() + 60
        while (stored_before := schema.scalar("SELECT count(*) FROM cost_events")) < 20:
            assert time.monotonic() < deadline, "the SDK apps sent nothing"
            time.sleep(0.05)  # both streams are under way
        a.kill9()
        time.sleep(1.0)
        a.start()  # same port: the SDK's retries find it again
        results = [finish_sdk(app) for app in apps]
        # What an SDK spooled while A was down is sent by the next process using its spool.
        for n, inst in enumerate((a, b)):
            if results[n]["stats"].get("spool_size") or not results[n]["flushed"]:
                finish_sdk(run_sdk(tenant.key, inst.url, fp.openai_base_url,
                                   tmp_path / f"sdk-{n}", 0))
        assert len(fp.requests) == 2 * calls
    assert 0 < stored_before < 2 * calls  # the kill was mid-stream
    assert schema.scalar("SELECT count(*) FROM cost_events") == 2 * calls
    assert schema.scalar("SELECT count(DISTINCT event_id) FROM cost_events") == 2 * calls
    summaries = [data(inst, "GET", f"/api/costs/summary?project={tenant.project_id}"
                      "&group_by=model", tenant.token) for inst in (a, b)]
    assert summaries[0]["totals"] == summaries[1]["totals"]
    assert summaries[0]["groups"] == summaries[1]["groups"]
    assert summaries[0]["totals"]["calls"] == 2 * calls
    alerts = [data(inst, "GET", f"/api/alerts?project={tenant.project_id}", tenant.token)
              for inst in (a, b)]
    assert len(alerts[0]) == 1 and alerts[0] == alerts[1]
    assert receiver.wait_for(1, 15)
    time.sleep(2.0)  # time for a duplicate to show up, if any were sent
    (headers, body), = receiver.requests
    payload = json.loads(body)
    assert payload["type"] == "budget.threshold" and payload["alert"]["id"] == alerts[0][0]["id"]
    hook_id = data(a, "GET", "/api/webhooks", tenant.token)[0]["id"]
    (delivery,) = data(a, "GET", f"/api/webhooks/{hook_id}/deliveries", tenant.token)[
        "deliveries"]
    assert (delivery["id"], delivery["status"], delivery["alert_id"]) == (
        headers["X-LLMLab-Delivery"], "delivered", alerts[0][0]["id"])


def test_delivery_pending_a_retry_survives_kill9(instances: list[Instance], schema: Schema,
                                                 receiver: Receiver, tmp_path: Path) -> None:
    """The receiver fails the first try; the server is killed with the retry pending; the
    retry falls due while nothing runs; after the restart it arrives once, same delivery id.
    A graceful stop with a retry pending takes well under the old 30 s hang."""
    env = cluster_env(schema, tmp_path / "home", WEBHOOK_RETRY_BASE="2")
    (server,) = start(instances, env, tmp_path, 1)
    tenant = make_tenant(server.url)
    hook = add_webhook(server, tenant, receiver.url)
    receiver.statuses = [500]
    data(server, "POST", f"/api/webhooks/{hook['id']}/test", tenant.token)
    assert receiver.wait_for(1, 10)
    time.sleep(0.3)  # the failed try is recorded
    server.kill9()
    time.sleep(3.0)  # the retry is due; no process is running
    assert len(receiver.requests) == 1
    server.start()
    assert receiver.wait_for(2, 15)
    time.sleep(2.0)
    assert len(receiver.requests) == 2
    ids = {headers["X-LLMLab-Delivery"] for headers, _ in receiver.requests}
    assert len(ids) == 1
    assert [h["X-LLMLab-Attempt"] for h, _ in receiver.requests] == ["1", "2"]
    (delivery,) = data(server, "GET", f"/api/webhooks/{hook['id']}/deliveries",
                       tenant.token)["deliveries"]
    assert (delivery["id"], delivery["status"], delivery["attempts"]) == (
        ids.pop(), "delivered", 2)
    receiver.statuses = [500]  # the next ping's retry is pending when the server stops
    data(server, "POST", f"/api/webhooks/{hook['id']}/test", tenant.token)
    assert receiver.wait_for(3, 10)
    assert server.terminate() < 10
