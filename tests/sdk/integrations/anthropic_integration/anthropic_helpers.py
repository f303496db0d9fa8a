"""Shared constants, clients and checks of the anthropic integration tests.

Shapes the fake cannot produce (``inference_geo``, ``speed``, cumulative input counts in
``message_delta``, Vertex URLs) come from `mock_client`: an ``httpx2.MockTransport`` behind a
real client.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider
from llmlab.testing._fake_wire import FakeUsage
from llmlab.usage import Usage

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")


HAIKU = "claude-haiku-4-5"
OPUS = "claude-opus-5-5"
TEXT = "Hello from FakeProvider!"
#: Anthropic's own fields: input excludes the 300 cache reads and 150 cache writes.
USAGE = FakeUsage(input_tokens=1000, output_tokens=200, cached_tokens=300,
                  cache_creation_5m_tokens=100, cache_creation_1h_tokens=50, reasoning_tokens=40)
#: claude-haiku-4-5 by hand: 1000 * $1/M + 300 * $0.10/M + 100 * $1.25/M + 50 * $2/M
#: + 200 * $5/M = 0.001 + 0.00003 + 0.000125 + 0.0001 + 0.001.
HAIKU_COST = Decimal("0.002255")
NORMALISED = Usage(input_tokens=1450, output_tokens=200, cache_read_tokens=300,
                   cache_write_tokens=100, cache_write_1h_tokens=50, reasoning_tokens=40)
KW: dict[str, Any] = {"model": HAIKU, "max_tokens": 256,
                      "messages": [{"role": "user", "content": "Say hello"}]}
BETA = "context-management-2025-06-27"
BETA_KW: dict[str, Any] = {**KW, "betas": [BETA]}
STREAM_TYPES = ["message_start", "content_block_start", "content_block_delta",
                "content_block_delta", "content_block_delta", "content_block_stop",
                "message_delta", "message_stop"]


class Answer(BaseModel):
    """A structured output."""

    city: str
    population: int


_CLIENTS: dict[str, Any] = {}


def client(fp: FakeProvider, *, fresh: bool = False) -> Any:
    """A sync client of the fake; shared between tests unless ``fresh`` (they are costly)."""
    if fresh or fp.anthropic_base_url not in _CLIENTS:
        made = anthropic.Anthropic(api_key="k", base_url=fp.anthropic_base_url, max_retries=0)
        if fresh:
            return made
        _CLIENTS[fp.anthropic_base_url] = made
    return _CLIENTS[fp.anthropic_base_url]


def aclient(fp: FakeProvider) -> Any:
    return anthropic.AsyncAnthropic(api_key="k", base_url=fp.anthropic_base_url, max_retries=0)


@contextlib.contextmanager
def uninstrumented() -> Iterator[None]:
    """Run the block with llmlab's anthropic patches removed."""
    llmlab.uninstrument("anthropic")
    try:
        yield
    finally:
        llmlab.instrument("anthropic")


def dump(message: Any) -> dict[str, Any]:
    """A response without its per-call id."""
    data: dict[str, Any] = message.model_dump()
    data.pop("id")
    return data


def only(events: list[CostEvent]) -> CostEvent:
    """The single event recorded."""
    assert len(events) == 1, events
    return events[0]


def assert_full(event: CostEvent, *, operation: str, stream: bool) -> None:
    """The event of a completed call reporting USAGE on claude-haiku-4-5."""
    assert (event.provider, event.model, event.requested_model) == ("anthropic", HAIKU, HAIKU)
    assert event.operation == operation
    assert event.status == "ok" and event.error_type is None and not event.estimated
    assert event.stream is stream
    assert event.usage.model_dump() == NORMALISED.to_dict()
    assert event.cost is not None and event.cost.total == HAIKU_COST
    assert event.cost.cache_write == Decimal("0.000225")
    assert event.service_tier == "standard"
    assert event.latency_ms is not None and event.latency_ms > 0
    if stream:
        assert event.ttfb_ms is not None and 0 < event.ttfb_ms <= event.latency_ms
    else:
        assert event.ttfb_ms is None


def message_json(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage}


def message_start(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_start",
            "message": {**message_json(model, usage), "content": [], "stop_reason": None}}


def sse_body(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def mock_client(body: dict[str, Any] | list[dict[str, Any]], *, cls: Any = None,
                **kwargs: Any) -> Any:
    """A real client whose HTTP layer answers every request with ``body`` (JSON or SSE)."""

    def handler(request: Any) -> Any:
        if isinstance(body, list):
            return httpx2.Response(200, content=sse_body(body),
                                   headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=body)

    factory = cls or anthropic.Anthropic
    is_async = factory.__name__.startswith("Async")
    http = (httpx2.AsyncClient if is_async else httpx2.Client)(
        transport=httpx2.MockTransport(handler))
    defaults = {"api_key": "k", "base_url": "http://mock.test"} if cls is None else {}
    return factory(http_client=http, max_retries=0, **{**defaults, **kwargs})
