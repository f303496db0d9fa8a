"""OpenLIT instrumenting an openai client, its OTLP spans sent to the llmlab server's OTLP
route: end to end, each call stored once with its exact cost and attribution. OpenLIT is set
up by docs/integrations.md's example, run as written.

The team here runs OpenLIT, not the llmlab SDK: the server alone prices what the spans say.
The server is real (a migrated PostgreSQL schema, served over HTTP for OpenLIT's exporter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import openai
import pytest
from opentelemetry import trace
from stack_docs import blocks_for, doc_blocks
from stack_helpers import GPT_4O_COST, assert_each_call_once

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider

# gpt-4o without the cache discount: 1200 x 2.5e-6 + 300 x 1e-5.
OPENLIT_STREAM_COST = Decimal("0.006")
Stored = Callable[[datetime, datetime], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def instrumented(live_url: str, tenant: dict[str, Any]) -> Iterator[None]:
    """OpenLIT set up by docs/integrations.md's example, run as written, exporting to llmlab's
    OTLP route with the tenant's ingest key. (llmlab prices the spans' token counts with its
    own catalogue; OpenLIT's cost attribute is not read.)"""
    [block] = [block for block in blocks_for("openai2") if "openlit" in block.code]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLMLAB_URL", live_url)
        env.setenv("LLMLAB_API_KEY", tenant["key"])
        run = doc_blocks().run_block(block)
    assert not run.false_claims(block)
    yield
    trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]


@pytest.mark.usefixtures("instrumented")
def test_openlit_spans_become_priced_events(fake: FakeProvider, stored: Stored) -> None:
    """A plain and a streamed chat call: two spans, two stored events, each exactly priced,
    attributed from OpenLIT's resource (service, environment) and its custom attributes."""
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    stream = client.chat.completions.create(model="gpt-4o", messages=messages,  # type: ignore[arg-type]
                                            stream=True, stream_options={"include_usage": True})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    stored_events = stored(now - timedelta(hours=1), now + timedelta(minutes=1))
    events = {e["stream"]: e for e in stored_events}
    assert len(fake.requests) == 2
    assert len(stored_events) == 2 and len(events) == 2, stored_events
    for event in events.values():
        assert (event["provider"], event["model"], event["operation"]) == ("openai", "gpt-4o",
                                                                          "chat")
        assert (event["usage"]["input_tokens"], event["usage"]["output_tokens"]) == (1200, 300)
        assert event["job_id"] == "nightly-report"
        assert event["environment"] == "production"
        assert event["tags"] == {"team": "growth", "service": "checkout"}
    assert events[False]["usage"]["cache_read_tokens"] == 1000
    assert Decimal(events[False]["cost"]) == GPT_4O_COST
    # OpenLIT's streamed chat spans carry no cached-token count: the server can only price
    # what a span says, so the 1000 cached tokens are billed at the full input price.
    assert events[True]["usage"]["cache_read_tokens"] == 0
    assert Decimal(events[True]["cost"]) == OPENLIT_STREAM_COST


@pytest.mark.usefixtures("instrumented")
def test_llmlab_beside_openlit_counts_each_call_once(fake: FakeProvider,
                                                     events: list[CostEvent]) -> None:
    """Both instrument openai (llmlab, initialised after OpenLIT, wraps OpenLIT's wrapper): the
    SDK still records one exact event per request, streams included."""
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    with llmlab.track(job="both"):
        client.chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
        for _ in client.chat.completions.create(model="gpt-4o", messages=messages,  # type: ignore[arg-type]
                                                stream=True):
            pass
    assert_each_call_once(fake, events)
    assert [e.stream for e in events] == [False, True]
    for event in events:
        assert event.job_id == "both" and event.cost is not None
        assert event.cost.total == GPT_4O_COST
