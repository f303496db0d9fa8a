"""OpenTelemetry out: every llmlab event as a GenAI span and metrics (the ``otel`` extra).

`export()` adds an `Exporter` to the running tracker's ``on_event`` callbacks (next to yours,
never instead of them). Each event then becomes, through the app's TracerProvider and
MeterProvider (the global ones unless passed in):

* a CLIENT span named ``"{gen_ai.operation.name} {gen_ai.request.model}"`` with the GenAI
  semantic-convention attributes and llmlab's cost and attribution (``llmlab.*``), child of
  the span current when the call finished. The event's ``timestamp`` is when the call
  finished, so the span ends then and starts ``latency_ms`` earlier;
* ``llmlab.cost`` (a USD counter by provider, model and project), and the conventions'
  ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` histograms.

Another GenAI instrumentor (``opentelemetry-instrumentation-openai-v2`` …) whose span is still
current when llmlab finishes the call (a plain call, instrumentor applied after
``llmlab.init()``) gets llmlab's attributes added to its span instead of a second span, and
keeps its own token metrics. When its span is no longer current (streams are finished where
they are consumed, after the instrumentor's wrapper returned), pass ``spans=False`` and
``gen_ai_metrics=False``: the cost counter alone is exported, and the trace has no cost.

Exporting runs on the thread that finished the call; any failure is logged and swallowed.

>>> import llmlab, llmlab.otel
>>> llmlab.init(ledger=False, auto_instrument=False)
>>> exporter = llmlab.otel.export()  # the global TracerProvider and MeterProvider
>>> _ = llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 2})
>>> exporter.stop()
>>> llmlab.shutdown()
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from llmlab._consts import SDK_VERSION
from llmlab.errors import ConfigurationError
from llmlab.pricing import money
from llmlab.schema import CostEvent

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.trace import TracerProvider

    from llmlab._tracker import Options

__all__ = ["Exporter", "export"]

logger = logging.getLogger("llmlab")

#: llmlab operations -> ``gen_ai.operation.name``; others (``manual`` …) pass unchanged.
OPERATIONS = {"chat.completions": "chat", "chat.completions.parse": "chat", "responses": "chat",
              "responses.parse": "chat", "messages": "chat", "messages.parse": "chat",
              "messages.stream": "chat", "embeddings": "embeddings",
              "completions": "text_completion", "generate_content": "generate_content"}
#: llmlab provider ids -> ``gen_ai.provider.name``; others pass unchanged.
PROVIDERS = {"google": "gcp.gemini", "vertex": "gcp.vertex_ai", "azure": "azure.ai.openai",
             "bedrock": "aws.bedrock", "mistral": "mistral_ai", "xai": "x_ai"}
#: The deprecated ``gen_ai.system`` spelled xAI without the underscore.
_SYSTEMS = {"xai": "xai"}
#: Bucket boundaries the conventions recommend for the two histograms.
_TOKEN_BUCKETS = [4.0**i for i in range(14)]
_DURATION_BUCKETS = [0.01 * 2.0**i for i in range(14)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Exporter:
    """An ``on_event`` callback exporting each event as an OpenTelemetry span and metrics.

    Usable directly as ``llmlab.init(on_event=Exporter())``; `export` attaches one to an
    already running llmlab. ``spans=False`` exports metrics only; ``gen_ai_metrics=False``
    leaves the ``gen_ai.client.*`` histograms to another instrumentor (``llmlab.cost`` stays).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None, *, spans: bool = True,
                 gen_ai_metrics: bool = True) -> None:
        # Imported here, not with the module: the otel extra is optional, like a provider SDK.
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:
            raise ImportError("llmlab.otel needs OpenTelemetry: pip install 'llmlab[otel]'") \
                from exc
        self._tracer = trace.get_tracer("llmlab", SDK_VERSION, tracer_provider) if spans else None
        meter = metrics.get_meter("llmlab", SDK_VERSION, meter_provider)
        self._cost = meter.create_counter("llmlab.cost", unit="USD",
                                          description="Cost of LLM calls, priced by llmlab.")
        self._tokens: Histogram | None = None
        self._duration: Histogram | None = None
        if gen_ai_metrics:
            self._tokens = meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
            self._duration = meter.create_histogram(
                "gen_ai.client.operation.duration", unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self._attached: Options | None = None  # the tracker's, when `export` added us there
        self._stopped = False

    def __call__(self, event: CostEvent) -> None:
        """Export one event (never raises: a failure is logged on the ``llmlab`` logger)."""
        if self._stopped:
            return
        try:
            self._export(event)
        except Exception:
            logger.warning("llmlab.otel: exporting event %s failed (ignored)", event.id,
                           exc_info=True)

    def stop(self) -> None:
        """Stop exporting and detach from the tracker `export` attached this exporter to."""
        self._stopped = True
        options, self._attached = self._attached, None
        if options is not None:
            # A new list rather than remove(): a thread iterating the old one skips nobody.
            options.on_event = [c for c in options.on_event if c is not self]

    def _export(self, event: CostEvent) -> None:
        base = _gen_ai_attributes(event)
        enriched = False
        if self._tracer is not None:
            enriched = _enrich_current_span(event, base)
            if not enriched:
                self._start_span(event, base)
        metric_attrs = {k: base[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name",
                                             "gen_ai.request.model", "gen_ai.response.model")}
        if event.project:
            metric_attrs["llmlab.project"] = event.project
        if event.cost is not None:
            self._cost.add(float(event.cost.total), metric_attrs)
        # An instrumentor that owns the call's span records these itself: not twice.
        if enriched or self._tokens is None or self._duration is None:
            return
        if event.status == "error":
            metric_attrs["error.type"] = event.error_type or "_OTHER"
        if event.latency_ms is not None:
            self._duration.record(event.latency_ms / 1000, metric_attrs)
        usage = event.usage
        if event.status != "error" or usage.input_tokens or usage.output_tokens:
            self._tokens.record(usage.input_tokens, {**metric_attrs, "gen_ai.token.type": "input"})
            if metric_attrs["gen_ai.operation.name"] != "embeddings":  # they have no output
                self._tokens.record(usage.output_tokens,
                                    {**metric_attrs, "gen_ai.token.type": "output"})

    def _start_span(self, event: CostEvent, base: Mapping[str, Any]) -> None:
        from opentelemetry import trace

        assert self._tracer is not None
        end = (event.timestamp - _EPOCH) // timedelta(microseconds=1) * 1000
        start = end - round((event.latency_ms or 0) * 1_000_000)
        span = self._tracer.start_span(
            f"{base['gen_ai.operation.name']} {base['gen_ai.request.model']}",
            kind=trace.SpanKind.CLIENT, start_time=start,
            attributes={**base, **_llmlab_attributes(event)})
        if event.status == "error":
            span.set_status(trace.StatusCode.ERROR, event.error_type)
        span.end(end_time=end)


def export(tracer_provider: TracerProvider | None = None,
           meter_provider: MeterProvider | None = None, *, spans: bool = True,
           gen_ai_metrics: bool = True) -> Exporter:
    """Export every event of the running llmlab to OpenTelemetry; returns the `Exporter`,
    whose ``stop()`` ends it.

    Call it after `llmlab.init()` (a later ``init()`` starts without it: call it again, or
    pass ``on_event=Exporter(...)`` to ``init``). Providers default to the global ones.
    Raises `ConfigurationError` when llmlab is not initialised.
    """
    from llmlab._tracker import get_tracker

    tracker = get_tracker()
    if not tracker.active:
        raise ConfigurationError("llmlab.otel.export() needs llmlab.init() first "
                                 "(or pass on_event=llmlab.otel.Exporter() to init)")
    exporter = Exporter(tracer_provider, meter_provider, spans=spans,
                        gen_ai_metrics=gen_ai_metrics)
    options = tracker.options
    options.on_event = [*options.on_event, exporter]
    exporter._attached = options
    return exporter


def _gen_ai_attributes(event: CostEvent) -> dict[str, Any]:
    """The semantic-convention attributes of an event."""
    provider = PROVIDERS.get(event.provider, event.provider)
    usage = event.usage
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATIONS.get(event.operation, event.operation),
        "gen_ai.provider.name": provider,
        "gen_ai.system": _SYSTEMS.get(event.provider, provider),
        "gen_ai.request.model": event.requested_model or event.model,
        "gen_ai.response.model": event.model,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    # Conventions and llmlab agree: these are subsets of the input and output counts.
    cache_write = usage.cache_write_tokens + usage.cache_write_1h_tokens
    for key, value in (("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens),
                       ("gen_ai.usage.cache_creation.input_tokens", cache_write),
                       ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens)):
        if value:
            attrs[key] = value
    if event.stream:
        attrs["gen_ai.request.stream"] = True
        if event.ttfb_ms is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = event.ttfb_ms / 1000
    if event.status == "error":
        attrs["error.type"] = event.error_type or "_OTHER"
    return attrs


def _llmlab_attributes(event: CostEvent) -> dict[str, Any]:
    """llmlab's own attributes: the event's id, cost and attribution."""
    attrs: dict[str, Any] = {"llmlab.event_id": event.id, "llmlab.provider": event.provider,
                             "llmlab.operation": event.operation, "llmlab.status": event.status}
    if event.cost is not None:
        attrs["llmlab.cost.total"] = money(event.cost.total)  # exact, as on the wire
        attrs["llmlab.cost.total_usd"] = float(event.cost.total)  # for backends that sum
        attrs["llmlab.priced"] = event.cost.priced
    for key in ("project", "job_id", "user_id", "function", "environment", "service_tier"):
        value = getattr(event, key)
        if value:
            attrs[f"llmlab.{key}"] = value
    if event.estimated:
        attrs["llmlab.estimated"] = True
    for tag, value in event.tags.items():
        attrs[f"llmlab.tags.{tag}"] = value
    return attrs


def _enrich_current_span(event: CostEvent, base: Mapping[str, Any]) -> bool:
    """Add llmlab's attributes to the current span when it is another instrumentor's span of
    this very call (a recording GenAI span of the same operation and model, not yet
    enriched); whether it was."""
    from opentelemetry import trace

    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None)  # SDK spans only: the API has no getter
    if not span.is_recording() or not isinstance(attributes, Mapping):
        return False
    if (attributes.get("gen_ai.operation.name") != base["gen_ai.operation.name"]
            or attributes.get("gen_ai.request.model") not in (event.requested_model, event.model)
            or "llmlab.event_id" in attributes):
        return False
    span.set_attributes(_llmlab_attributes(event))
    return True
