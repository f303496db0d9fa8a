"""An SDK upgraded before its server: events with wire fields the server does not know yet.

The previous release's server validated events with ``extra="forbid"`` and rejected
(``invalid_event``, never retried) an event with ``usage.tools``, ``cost.tools`` or
``provider_cost``. The release-1 server below is that server's ingest contract over HTTP: the
wire schema without the fields added since (strict), the 207 rows of its ``_rejected``, and
its error text (`llmlab_server.errors.validation_message`, unchanged since). The SDK must
deliver such events (without the unknown fields) instead of losing them.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from werkzeug.serving import make_server

from llmlab._worker import Worker
from llmlab.schema import CostEvent, EventCost, EventUsage
from llmlab.testing._capture_server import make_event
from llmlab.transport import HTTPTransport
from llmlab_server.errors import validation_message

FAST: dict[str, Any] = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.02,
                        "max_retries": 3, "atexit": False, "handle_sigterm": False}


def _without(model: type[BaseModel], drop: set[str], **types: Any) -> type[BaseModel]:
    """``model``'s fields but ``drop`` (strict: extra fields forbidden), ``types`` replaced."""
    fields: dict[str, Any] = {name: (types.get(name, info.annotation), info)
                              for name, info in model.model_fields.items() if name not in drop}
    return create_model(f"Release1{model.__name__}",
                        __config__=ConfigDict(extra="forbid"), **fields)


Release1Usage = _without(EventUsage, {"tools"})
Release1Cost = _without(EventCost, {"tools"})
Release1Event = _without(CostEvent, {"provider_cost"}, usage=Release1Usage,
                         cost=Release1Cost | None)


@pytest.fixture
def release1_server() -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """The previous release's ingest route: (its URL, the events it stored by id)."""
    stored: dict[str, dict[str, Any]] = {}
    app = Flask("release1")

    @app.post("/api/events/track")
    def track() -> Any:
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        items = json.loads(body)["events"]
        rows = []
        for index, item in enumerate(items):
            try:
                Release1Event.model_validate(item)
            except ValidationError as exc:
                message, _ = validation_message(exc)
                rows.append({"index": index, "id": item.get("id"), "status": "rejected",
                             "error": {"code": "invalid_event", "message": message}})
                continue
            status = "duplicate" if item["id"] in stored else "accepted"
            stored.setdefault(item["id"], item)
            rows.append({"index": index, "id": item["id"], "status": status})
        return {"data": {"results": rows}}, 207

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", stored
    server.shutdown()
    server.server_close()


def _worker(url: str, **options: Any) -> Worker:
    return Worker(HTTPTransport(url, "llmlab_test_key"), **{**FAST, **options})


def test_an_event_with_tool_fees_reaches_an_older_server_without_the_new_fields(
        release1_server: tuple[str, dict[str, dict[str, Any]]]) -> None:
    url, stored = release1_server
    with_tools = make_event(
        "with-tools", usage={"input_tokens": 10, "output_tokens": 5, "tools": {"web_search": 2}},
        cost={"input": "0.001", "output": "0.002", "tools": "0.02", "total": "0.023",
              "currency": "USD", "priced": True},
        provider_cost="0.023")
    plain = make_event("plain")
    worker = _worker(url, max_retries=0)  # resent in the same attempt: no retry needed
    try:
        worker.submit(with_tools)
        worker.submit(plain)
        assert worker.flush(timeout=10)
        stats = worker.stats()
    finally:
        worker.shutdown(timeout=5)
    assert set(stored) == {"with-tools", "plain"}
    assert stats["rejected"] == 0 and stats["sent"] == 2
    assert stats["retried"] == 0 and stats["spooled"] == 0
    sent = stored["with-tools"]
    assert "tools" not in sent["usage"] and "tools" not in sent["cost"]
    assert "provider_cost" not in sent
    assert sent["cost"]["total"] == "0.023"  # the spend is the same: the fees stay in the total


def test_an_event_invalid_for_another_reason_is_still_rejected_once(
        release1_server: tuple[str, dict[str, dict[str, Any]]]) -> None:
    url, stored = release1_server
    # Unknown to every server (not a field added since release 1): final, never resent.
    bad = make_event("bad", usage={"input_tokens": 10, "tools": {"web_search": 1}},
                     surprise="field")
    worker = _worker(url)
    try:
        worker.submit(bad)
        worker.flush(timeout=10)
        stats = worker.stats()
    finally:
        worker.shutdown(timeout=5)
    assert stored == {}
    assert stats["rejected"] == 1 and stats["retried"] == 0
