"""`llmlab.otel`: events exported as GenAI spans and metrics through the real OpenTelemetry SDK,
from real openai and anthropic clients talking to the fake provider."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmlab
import llmlab.otel
from llmlab.errors import ConfigurationError
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

MESSAGES = [{"role": "user", "content": "hello"}]
OPENAI_USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000,
                         reasoning_tokens=120)
GPT_4O_COST = "0.00475"  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5
HAIKU = "claude-haiku-4-5"
#: Anthropic's input excludes the cache: normalised input 1000 + 300 + 100 + 50 = 1450.
ANTHROPIC_USAGE = FakeUsage(input_tokens=1000, output_tokens=200, cached_tokens=300,
                            cache_creation_5m_tokens=100, cache_creation_1h_tokens=50,
                            reasoning_tokens=40)
HAIKU_COST = "0.002255"


@dataclass
class Otel:
    """The app's OpenTelemetry set-up and what llmlab recorded."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    events: list[CostEvent]

    def metric(self, name: str) -> list[Any]:
        """The data points of one metric."""
        data = self.reader.get_metrics_data()
        return [point for rm in (data.resource_metrics if data else [])
                for sm in rm.scope_metrics for m in sm.metrics if m.name == name
                for point in m.data.data_points]


@pytest.fixture
def otel(tmp_path: Path) -> Iterator[Otel]:
    """llmlab initialised with a user ``on_event`` callback and `llmlab.otel.export()` to an
    in-memory span exporter and metric reader."""
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    events: list[CostEvent] = []
    llmlab.init(ledger=False, on_event=events.append, home=tmp_path,
                auto_instrument=["openai", "anthropic"])
    exporter = llmlab.otel.export(tracer_provider, meter_provider)
    try:
        yield Otel(spans, reader, tracer_provider, events)
    finally:
        exporter.stop()
        llmlab.shutdown()
        llmlab.uninstrument()


def openai_client(fake: FakeProvider) -> Any:
    return openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)


def anthropic_client(fake: FakeProvider) -> Any:
    return anthropic.Anthropic(api_key="k", base_url=fake.anthropic_base_url, max_retries=0)


def ns(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def only_span(otel: Otel) -> ReadableSpan:
    [span] = otel.spans.get_finished_spans()
    return span


def llmlab_attributes(event: CostEvent, cost: str, **extra: Any) -> dict[str, Any]:
    """The ``llmlab.*`` attributes every exported call carries."""
    return {"llmlab.event_id": event.id, "llmlab.provider": event.provider,
            "llmlab.operation": event.operation, "llmlab.status": "ok",
            "llmlab.cost.total": cost, "llmlab.cost.total_usd": float(cost),
            "llmlab.priced": True, **extra}


def assert_timed(span: ReadableSpan, event: CostEvent) -> None:
    """The span ends at the event's timestamp and lasts its latency."""
    assert event.latency_ms is not None
    assert span.end_time == ns(event.timestamp)
    assert span.start_time == ns(event.timestamp) - round(event.latency_ms * 1_000_000)


class TestOpenAI:
    def test_chat_completion_is_one_exact_span(self, fake: FakeProvider, otel: Otel) -> None:
        """A chat completion becomes one CLIENT span with the conventions' and llmlab's
        attributes, timed by the call, under the span current at call time."""
        fake.configure("openai", usage=OPENAI_USAGE)
        tracer = otel.tracer_provider.get_tracer("app")
        with llmlab.track(project="bot", job="ticket-1", user="u-42", tags={"feature": "triage"}), \
                tracer.start_as_current_span("handle request") as parent:
            openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        [event] = otel.events
        span = next(s for s in otel.spans.get_finished_spans() if s.name != "handle request")
        assert span.name == "chat gpt-4o" and span.kind is trace.SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert dict(span.attributes or {}) == {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.reasoning.output_tokens": 120,
            **llmlab_attributes(event, GPT_4O_COST, **{
                "llmlab.service_tier": "default", "llmlab.project": "bot",
                "llmlab.job_id": "ticket-1", "llmlab.user_id": "u-42",
                "llmlab.tags.feature": "triage"})}
        assert span.status.status_code is trace.StatusCode.UNSET
        assert_timed(span, event)

    def test_chat_completion_metrics(self, fake: FakeProvider, otel: Otel) -> None:
        """The call adds its cost to ``llmlab.cost`` and its tokens and duration to the
        conventions' histograms, by operation, provider, model and project."""
        fake.configure("openai", usage=OPENAI_USAGE)
        with llmlab.track(project="bot"):
            openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        [event] = otel.events
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o",
                 "llmlab.project": "bot"}
        [cost] = otel.metric("llmlab.cost")
        assert (dict(cost.attributes), cost.value) == (attrs, float(GPT_4O_COST))
        tokens = {p.attributes["gen_ai.token.type"]: p for p in otel.metric(
            "gen_ai.client.token.usage")}
        assert {k: (dict(p.attributes), p.count, p.sum) for k, p in tokens.items()} == {
            "input": ({**attrs, "gen_ai.token.type": "input"}, 1, 1200),
            "output": ({**attrs, "gen_ai.token.type": "output"}, 1, 300)}
        [duration] = otel.metric("gen_ai.client.operation.duration")
        assert event.latency_ms is not None
        assert (dict(duration.attributes), duration.count) == (attrs, 1)
        assert duration.sum == pytest.approx(event.latency_ms / 1000)

    def test_stream_span_carries_stream_and_first_chunk(self, fake: FakeProvider,
                                                        otel: Otel) -> None:
        """A streamed completion is exported when the stream ends, marked as a stream with
        its time to the first chunk."""
        fake.configure("openai", usage=OPENAI_USAGE, stream_chunks=3)
        stream = openai_client(fake).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True)
        assert not otel.spans.get_finished_spans()
        list(stream)
        [event] = otel.events
        span = only_span(otel)
        assert event.ttfb_ms is not None
        assert dict(span.attributes or {}) == {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.reasoning.output_tokens": 120, "gen_ai.request.stream": True,
            "gen_ai.response.time_to_first_chunk": event.ttfb_ms / 1000,
            **llmlab_attributes(event, GPT_4O_COST)}
        assert_timed(span, event)
        [cost] = otel.metric("llmlab.cost")
        assert cost.value == float(GPT_4O_COST)


class TestAnthropic:
    EXPECTED = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic", "gen_ai.request.model": HAIKU,
        "gen_ai.response.model": HAIKU, "gen_ai.usage.input_tokens": 1450,
        "gen_ai.usage.output_tokens": 200, "gen_ai.usage.cache_read.input_tokens": 300,
        "gen_ai.usage.cache_creation.input_tokens": 150,
        "gen_ai.usage.reasoning.output_tokens": 40}

    def test_message_is_one_exact_span(self, fake: FakeProvider, otel: Otel) -> None:
        """A message becomes a ``chat`` span whose input tokens include the cache reads and
        both cache-write durations, as the conventions count them."""
        fake.configure("anthropic", usage=ANTHROPIC_USAGE)
        anthropic_client(fake).messages.create(model=HAIKU, max_tokens=64, messages=MESSAGES)
        [event] = otel.events
        span = only_span(otel)
        assert span.name == f"chat {HAIKU}"
        assert dict(span.attributes or {}) == {**self.EXPECTED, **llmlab_attributes(
            event, HAIKU_COST, **{"llmlab.service_tier": "standard"})}
        assert_timed(span, event)
        tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in otel.metric(
            "gen_ai.client.token.usage")}
        assert tokens == {"input": 1450, "output": 200}
        [cost] = otel.metric("llmlab.cost")
        assert cost.value == float(HAIKU_COST)
        assert cost.attributes["gen_ai.provider.name"] == "anthropic"

    def test_stream_is_one_exact_span(self, fake: FakeProvider, otel: Otel) -> None:
        """A ``stream=True`` message is exported once, when the stream is exhausted."""
        fake.configure("anthropic", usage=ANTHROPIC_USAGE)
        for _ in anthropic_client(fake).messages.create(model=HAIKU, max_tokens=64,
                                                        messages=MESSAGES, stream=True):
            pass
        [event] = otel.events
        span = only_span(otel)
        assert event.ttfb_ms is not None
        assert dict(span.attributes or {}) == {
            **self.EXPECTED, "gen_ai.request.stream": True,
            "gen_ai.response.time_to_first_chunk": event.ttfb_ms / 1000,
            **llmlab_attributes(event, HAIKU_COST, **{"llmlab.service_tier": "standard"})}
        assert_timed(span, event)


class TestComposition:
    def test_the_users_callback_is_kept_and_stop_detaches(self, fake: FakeProvider,
                                                          otel: Otel) -> None:
        """export() adds to the user's ``on_event`` callback; stop() ends the export only."""
        [exporter] = [c for c in llmlab._tracker.get_tracker().options.on_event
                      if isinstance(c, llmlab.otel.Exporter)]
        exporter.stop()
        exporter.stop()
        openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(otel.events) == 1
        assert not otel.spans.get_finished_spans()
        assert llmlab._tracker.get_tracker().options.on_event == [otel.events.append]

    def test_an_exporter_passed_to_init_exports(self, tmp_path: Path) -> None:
        """An `Exporter` given to ``init(on_event=...)`` exports without `export()`."""
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        llmlab.init(ledger=False, auto_instrument=False, home=tmp_path,
                    on_event=llmlab.otel.Exporter(provider, MeterProvider()))
        try:
            llmlab.record("anthropic", HAIKU, {"input_tokens": 10, "output_tokens": 2})
        finally:
            llmlab.shutdown()
        assert [s.name for s in spans.get_finished_spans()] == [f"manual {HAIKU}"]

    def test_an_instrumentors_span_of_the_call_is_enriched_not_duplicated(
            self, fake: FakeProvider, otel: Otel) -> None:
        """When the current span is another instrumentor's GenAI span of the same call,
        llmlab adds its attributes to it, makes no span of its own and leaves the token
        metrics to that instrumentor."""
        fake.configure("openai", usage=OPENAI_USAGE)
        tracer = otel.tracer_provider.get_tracer("opentelemetry.instrumentation.openai_v2")
        with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}):
            openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        [event] = otel.events
        span = only_span(otel)
        assert dict(span.attributes or {}) == {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            **llmlab_attributes(event, GPT_4O_COST, **{"llmlab.service_tier": "default"})}
        assert not otel.metric("gen_ai.client.token.usage")
        assert [p.value for p in otel.metric("llmlab.cost")] == [float(GPT_4O_COST)]

    def test_a_generic_current_span_gets_a_child(self, fake: FakeProvider, otel: Otel) -> None:
        """An enclosing GenAI span of another operation (an agent) is not taken for the call."""
        tracer = otel.tracer_provider.get_tracer("agent")
        with tracer.start_as_current_span("invoke_agent", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o"}):
            openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        names = sorted(s.name for s in otel.spans.get_finished_spans())
        assert names == ["chat gpt-4o", "invoke_agent"]

    def test_metrics_only(self, fake: FakeProvider, otel: Otel) -> None:
        """``spans=False`` exports the metrics and no span."""
        reader = InMemoryMetricReader()
        extra = llmlab.otel.export(otel.tracer_provider, MeterProvider(metric_readers=[reader]),
                                   spans=False)
        openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        extra.stop()
        assert len(otel.spans.get_finished_spans()) == 1  # the fixture's exporter's only
        data = reader.get_metrics_data()
        assert data is not None
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics}
        assert names == {"llmlab.cost", "gen_ai.client.token.usage",
                         "gen_ai.client.operation.duration"}

    def test_failed_provider_call_is_an_error_span(self, fake: FakeProvider, otel: Otel) -> None:
        """A call the provider refuses is an ERROR span named by the exception, the exception
        reaches the caller, and its duration is counted with ``error.type`` but no tokens."""
        fake.fail_next(429, provider="anthropic")
        with pytest.raises(anthropic.RateLimitError):
            anthropic_client(fake).messages.create(model=HAIKU, max_tokens=64, messages=MESSAGES)
        span = only_span(otel)
        assert span.status.status_code is trace.StatusCode.ERROR
        assert span.status.description == "RateLimitError"
        assert span.attributes is not None
        assert (span.attributes["error.type"], span.attributes["llmlab.status"]) == (
            "RateLimitError", "error")
        assert not otel.metric("gen_ai.client.token.usage")
        [duration] = otel.metric("gen_ai.client.operation.duration")
        assert duration.attributes["error.type"] == "RateLimitError"

    def test_failed_call_span_has_error_status(self, otel: Otel) -> None:
        """A manual error record's span has ERROR status and ``error.type`` ``_OTHER``, and
        is placed at the record's own (past) time."""
        when = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
        llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10}, status="error",
                      latency_ms=250.5, timestamp=when)
        span = only_span(otel)
        assert span.status.status_code is trace.StatusCode.ERROR
        assert span.attributes is not None and span.attributes["error.type"] == "_OTHER"
        assert span.attributes["gen_ai.operation.name"] == "manual"
        assert (span.start_time, span.end_time) == (ns(when) - 250_500_000, ns(when))


class TestNeverBreaksTheHost:
    def test_a_raising_exporter_does_not_break_the_call(self, fake: FakeProvider,
                                                        otel: Otel) -> None:
        """A span exporter that raises leaves the call's result and its event intact."""

        class Broken(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                raise RuntimeError("collector down")

        otel.tracer_provider.add_span_processor(SimpleSpanProcessor(Broken()))
        response = openai_client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert response.choices and len(otel.events) == 1

    def test_a_raising_processor_is_logged_and_swallowed(
            self, fake: FakeProvider, otel: Otel, caplog: pytest.LogCaptureFixture) -> None:
        """A span processor raising inside llmlab's export is logged on the ``llmlab``
        logger; the call, the user's callback and the metrics go on."""

        class Raising(SpanProcessor):
            def on_end(self, span: ReadableSpan) -> None:
                raise RuntimeError("processor bug")

        otel.tracer_provider.add_span_processor(Raising())
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            response = openai_client(fake).chat.completions.create(model="gpt-4o",
                                                                   messages=MESSAGES)
        assert response.choices and len(otel.events) == 1
        assert any("llmlab.otel: exporting event" in r.getMessage() for r in caplog.records)

    def test_export_before_init_is_refused(self) -> None:
        """export() explains that llmlab must be initialised first."""
        with pytest.raises(ConfigurationError, match=r"llmlab\.init\(\) first"):
            llmlab.otel.export()


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_import_llmlab_does_not_import_opentelemetry() -> None:
    """``import llmlab`` (and init and a record) loads no opentelemetry module."""
    out = run("import sys, llmlab; llmlab.init(ledger=False, auto_instrument=False); "
              "llmlab.record('openai', 'gpt-4o', {'prompt_tokens': 1}); llmlab.shutdown(); "
              "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    assert out.strip() == "[]"


def test_global_providers_are_the_default() -> None:
    """Without providers, export() uses the global TracerProvider set by the app."""
    out = run(
        "import llmlab, llmlab.otel\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "spans = InMemorySpanExporter(); provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(spans))\n"
        "llmlab.init(ledger=False, auto_instrument=False)\n"
        "llmlab.otel.export()\n"
        "trace.set_tracer_provider(provider)  # set after export: the proxy follows it\n"
        "llmlab.record('openai', 'gpt-4o', {'prompt_tokens': 1}); llmlab.shutdown()\n"
        "print([s.name for s in spans.get_finished_spans()])")
    assert out.strip() == "['manual gpt-4o']"


def test_without_opentelemetry_the_exporter_says_which_extra() -> None:
    """Without OpenTelemetry installed, ``llmlab.otel`` imports and the exporter names the
    extra to install."""
    out = run("import sys; sys.modules['opentelemetry'] = None\n"
              "import llmlab.otel\n"
              "try:\n    llmlab.otel.Exporter()\nexcept ImportError as e:\n    print(e)")
    assert out.strip() == "llmlab.otel needs OpenTelemetry: pip install 'llmlab[otel]'"
