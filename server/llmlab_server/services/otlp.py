"""OpenTelemetry in: GenAI spans of an OTLP trace export become priced cost events.

A span is a model call when its ``gen_ai.operation.name`` is one (``chat``,
``text_completion``, ``generate_content``, ``embeddings``), or, with no operation name, when
it names a model (``gen_ai.request.model`` or ``gen_ai.response.model``). Every other span,
agent and tool spans included (their usage repeats their model calls'), is ignored, not
rejected. The mapping, attribute by attribute, is in docs/integrations.md.

Each span's event id is a UUIDv5 of its trace id and span id, so an export sent twice (an
exporter's retry) is stored once: idempotency and storage are `ingest`'s, which also prices
every event with the server's catalogue and refuses an event naming another project than the
key's (``llmlab.project``). A span is rejected (counted in the OTLP response's
``partial_success``) when it cannot become a valid event.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from llmlab.pricing import cost as price
from llmlab_server.errors import Unprocessable
from llmlab_server.models import Project
from llmlab_server.schemas import TrackResult
from llmlab_server.services import ingest
from llmlab_server.services.otlp_wire import Span

__all__ = ["MODEL_CALLS", "OtlpResult", "SpanError", "event_id", "ingest_spans", "is_model_call",
           "provider_id", "to_event"]

MODEL_CALLS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
#: The ids ``event_id`` derives from (a fixed, arbitrary namespace: never change it).
_NAMESPACE = uuid.UUID("6f0e2b1c-5d3a-4e8f-9b7a-1c2d3e4f5a6b")
#: ``gen_ai.system`` / ``gen_ai.provider.name`` values (semantic conventions, OpenLLMetry,
#: the Vercel AI SDK, lower-cased) → llmlab provider ids. Dotted values are also looked up
#: by their prefixes: ``openai.chat`` → ``openai``, ``google.vertex.chat`` → ``vertex``.
_PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "cohere": "cohere", "deepseek": "deepseek",
    "groq": "groq", "openrouter": "openrouter",
    "aws.bedrock": "bedrock", "bedrock": "bedrock", "amazon-bedrock": "bedrock", "aws": "bedrock",
    "az.ai.openai": "azure", "azure.ai.openai": "azure", "az.ai.inference": "azure",
    "azure.ai.inference": "azure", "azure": "azure", "azure-openai": "azure",
    "gcp.gemini": "google", "gcp.gen_ai": "google", "gemini": "google", "google": "google",
    "google.generative-ai": "google", "google_genai": "google", "google-genai": "google",
    "gcp.vertex_ai": "vertex", "vertex_ai": "vertex", "vertexai": "vertex",
    "google.vertex": "vertex", "vertex": "vertex",
    "mistral_ai": "mistral", "mistralai": "mistral", "mistral": "mistral",
    "x_ai": "xai", "xai": "xai", "together": "together", "together_ai": "together",
    "togetherai": "together", "fireworks": "fireworks", "fireworks_ai": "fireworks",
}
_PROVIDER_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Each usage field's attribute names, first found wins: current conventions, then older or
# instrumentor-specific spellings (OpenLLMetry, Sentry).
_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
           "llm.usage.completion_tokens")
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
               "gen_ai.usage.input_tokens.cached")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens", "gen_ai.usage.input_tokens.cache_write")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
              "gen_ai.usage.output_tokens.reasoning")
_USER = ("llmlab.user_id", "user.id", "enduser.id")
_ENVIRONMENT = ("llmlab.environment", "deployment.environment.name", "deployment.environment")
_SERVICE_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier",
                 "openai.request.service_tier", "gen_ai.openai.request.service_tier")
_PRICED_TIERS = frozenset({"flex", "priority", "batch"})  # "default"/"auto": standard prices
_TAG_PREFIX = "llmlab.tags."
_MAX_MESSAGES = 3  # rejections described in the response's error message


class SpanError(ValueError):
    """A GenAI span that cannot become an event."""


@dataclass(frozen=True)
class OtlpResult:
    """What an export came to: the ingest's result, and the rejected spans' count and why."""

    track: TrackResult
    rejected: int
    message: str


def event_id(span: Span) -> str:
    """The span's event id: the llmlab SDK's own id when the span carries one
    (``llmlab.event_id``, set by `llmlab.otel`: the SDK delivers that event too, and the two
    must store once), else a UUIDv5 of its trace and span ids (the same on every export)."""
    own = span.attributes.get("llmlab.event_id")
    if isinstance(own, str):
        try:
            return str(uuid.UUID(own))
        except ValueError:
            pass  # not an SDK id: fall back to the span's own identity
    return str(uuid.uuid5(_NAMESPACE, f"{span.trace_id.hex()}-{span.span_id.hex()}"))


def provider_id(system: str | None) -> str | None:
    """The llmlab provider id of a ``gen_ai.system`` / ``gen_ai.provider.name`` value."""
    name = (system or "").strip().lower()
    while name:
        if name in _PROVIDERS:
            return _PROVIDERS[name]
        name = name.rpartition(".")[0]
    return None


def _text(attributes: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            if text:
                return text
    return None


def _tokens(attributes: dict[str, Any], names: Sequence[str]) -> int:
    for name in names:
        value = attributes.get(name)
        if value is None:
            continue
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
            return int(value)  # some instrumentors write counts as text
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # JavaScript numbers
            return int(value)
        raise SpanError(f"{name} is not a token count: {value!r}")
    return 0


def is_model_call(span: Span) -> bool:
    """Whether ``span`` is a GenAI model call (see the module docstring)."""
    attributes = span.attributes
    operation = attributes.get("gen_ai.operation.name")
    if operation is not None:
        return operation in MODEL_CALLS
    return "gen_ai.request.model" in attributes or "gen_ai.response.model" in attributes


def _usage(attributes: dict[str, Any]) -> dict[str, int]:
    usage = {"input_tokens": _tokens(attributes, _INPUT),
             "output_tokens": _tokens(attributes, _OUTPUT),
             "cache_read_tokens": _tokens(attributes, _CACHE_READ),
             "cache_write_tokens": _tokens(attributes, _CACHE_WRITE),
             "reasoning_tokens": _tokens(attributes, _REASONING)}
    # The conventions count cache reads and writes inside input_tokens, reasoning inside
    # output_tokens (llmlab's rule too). A subset larger than its total means an
    # instrumentor that reported a provider's exclusive count (Anthropic's input_tokens):
    # the parts are added back.
    cached = usage["cache_read_tokens"] + usage["cache_write_tokens"]
    if cached > usage["input_tokens"]:
        usage["input_tokens"] += cached
    if usage["reasoning_tokens"] > usage["output_tokens"]:
        usage["output_tokens"] += usage["reasoning_tokens"]
    return usage


def _provider(attributes: dict[str, Any], model: str, usage: dict[str, int]) -> str:
    system = _text(attributes, ("gen_ai.provider.name", "gen_ai.system"))
    known = provider_id(system)
    if known is not None:
        return known
    try:  # an unknown system: the catalogue's provider of the model
        found = price(model, usage)
    except Exception:  # bad counts are the event validation's to report, not a 500
        found = None
    if found is not None and found.priced and found.provider:
        return found.provider
    name = (system or "").lower()
    return name if _PROVIDER_ID.match(name) else "unknown"


def _milliseconds(value: Any) -> float | None:
    # An optional measure: one that is not a plausible duration is dropped, not a rejection.
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 8.64e7:
        return float(value)
    return None


def _timestamp(nanos: int) -> str:
    seconds, rest = divmod(nanos, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    except (OverflowError, OSError, ValueError):
        raise SpanError(f"startTimeUnixNano {nanos} is not a time") from None
    return moment.isoformat()


def to_event(span: Span) -> dict[str, Any]:
    """The wire event (unvalidated: `ingest` validates it) of a GenAI model-call span."""
    a = span.attributes
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        raise SpanError("the span has no valid trace id and span id")
    requested = _text(a, ("gen_ai.request.model",))
    model = _text(a, ("gen_ai.response.model",)) or requested
    if model is None:
        raise SpanError("the span names no model (gen_ai.response.model, gen_ai.request.model)")
    usage = _usage(a)
    tier = (_text(a, _SERVICE_TIER) or "").lower()
    tags = {key.removeprefix(_TAG_PREFIX): str(value) for key, value in a.items()
            if key.startswith(_TAG_PREFIX) and not isinstance(value, tuple)}
    service = _text(a, ("service.name",))
    if service is not None and not service.startswith("unknown_service"):
        tags.setdefault("service", service)
    event: dict[str, Any] = {
        "id": event_id(span), "timestamp": _timestamp(span.start_ns),
        "provider": _provider(a, model, usage), "model": model,
        "requested_model": requested if requested != model else None,
        "operation": _text(a, ("gen_ai.operation.name",)) or "chat", "usage": usage,
        "latency_ms": (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns
        else None,
        "ttfb_ms": _milliseconds(a.get("ai.response.msToFirstChunk")),  # Vercel AI SDK
        "stream": a.get("gen_ai.request.stream") is True or a.get("llm.is_streaming") is True,
        "status": "error" if span.error else "ok",
        "error_type": _text(a, ("error.type",)) if span.error else None,
        "service_tier": tier if tier in _PRICED_TIERS else None,
        "project": _text(a, ("llmlab.project",)), "job_id": _text(a, ("llmlab.job_id",)),
        "user_id": _text(a, _USER), "function": _text(a, ("llmlab.function",)),
        "tags": tags, "environment": _text(a, _ENVIRONMENT),
        "sdk": _sdk(a),
    }
    return {key: value for key, value in event.items() if value is not None}


def _sdk(attributes: dict[str, Any]) -> dict[str, str]:
    """The exporting OpenTelemetry SDK, as the event's ``sdk`` (``otlp-python`` …)."""
    language = _text(attributes, ("telemetry.sdk.language",))
    version = _text(attributes, ("telemetry.sdk.version",)) or "unknown"
    return {"name": f"otlp-{language}"[:128] if language else "otlp", "version": version[:128]}


def _label(span: Span) -> str:
    return f"span {span.trace_id.hex()}/{span.span_id.hex()}"


def ingest_spans(session: Session, project: Project, spans: Sequence[Span], *,
                 max_batch: int) -> OtlpResult:
    """Store the GenAI model calls among ``spans`` in ``project``; rejections counted."""
    calls = [span for span in spans if is_model_call(span)]
    if len(calls) > max_batch:  # the track route's limit: one ingest transaction's work
        raise Unprocessable(f"At most {max_batch} GenAI spans per export; got {len(calls)}.",
                            code="batch_too_large")
    events: list[dict[str, Any]] = []
    sources: list[Span] = []
    messages: list[str] = []
    rejected = 0
    for span in calls:
        try:
            events.append(to_event(span))
            sources.append(span)
        except SpanError as exc:
            rejected += 1
            messages.append(f"{_label(span)}: {exc}")
    track = ingest.ingest(session, project, events)
    for result in track.results:
        if result.status == "rejected" and result.error is not None:
            messages.append(f"{_label(sources[result.index])}: {result.error.message}")
    rejected += track.rejected
    message = ""
    if rejected:
        shown = "; ".join(messages[:_MAX_MESSAGES])
        more = f" (and {rejected - _MAX_MESSAGES} more)" if rejected > _MAX_MESSAGES else ""
        message = f"{rejected} of {len(calls)} GenAI spans rejected: {shown}{more}"
    return OtlpResult(track=track, rejected=rejected, message=message)
