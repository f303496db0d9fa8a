"""The OTLP/HTTP traces endpoint, fed by the real OpenTelemetry SDK and its OTLP exporter."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

import llmlab
from llmlab_server.services.otlp import provider_id, to_event
from llmlab_server.services.otlp_wire import Span

from ..helpers import Api, Tenant, make_event

PATH = "/api/otlp/v1/traces"
PROTOBUF = "application/x-protobuf"
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1000}
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """``app`` served over HTTP on a free loopback port (the exporter speaks real HTTP)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def make_spans(*attribute_sets: dict[str, Any], resource: dict[str, Any] | None = None,
               error: bool = False) -> Sequence[ReadableSpan]:
    """Finished SDK spans, one per attribute set, under a resource."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.otlp")
    for attributes in attribute_sets:
        with tracer.start_as_current_span("chat gpt-4o", attributes=attributes) as span:
            if error:
                span.set_status(Status(StatusCode.ERROR, "rate limited"))
    provider.shutdown()
    return memory.get_finished_spans()


def export(url: str, key: str, spans: Sequence[ReadableSpan],
           compression: Compression = Compression.NoCompression) -> SpanExportResult:
    """Export ``spans`` with the real OTLP/HTTP (protobuf) exporter, authenticated by ``key``."""
    exporter = OTLPSpanExporter(endpoint=f"{url}{PATH}", compression=compression, timeout=10,
                                headers={"Authorization": f"Bearer {key}"})
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def post_protobuf(api: Api, key: str, spans: Sequence[ReadableSpan]) -> TestResponse:
    """POST ``spans`` encoded by the SDK's own OTLP encoder."""
    return api.client.post(PATH, data=encode_spans(spans).SerializeToString(), headers={
        "Authorization": f"Bearer {key}", "Content-Type": PROTOBUF})


def post_json(api: Api, key: str, body: Any, **headers: str) -> TestResponse:
    """POST an OTLP/JSON body."""
    return api.client.post(PATH, data=json.dumps(body).encode(), headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers})


def events(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    """The events stored in ``tenant``'s project."""
    page = api.data("GET", f"/api/events?project={tenant.project_id}&start=2026-10-01T00:00:00Z",
                    tenant.token)
    return list(page["events"])


def otlp_json(attributes: dict[str, Any], *, resource: dict[str, Any] | None = None,
              status_code: int = 0) -> dict[str, Any]:
    """An OTLP/JSON export of one span, as a JavaScript exporter writes it (hex ids)."""
    def kv(items: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for key, value in items.items():
            if isinstance(value, bool):
                typed = {"boolValue": value}
            elif isinstance(value, int):
                typed = {"intValue": str(value)}
            elif isinstance(value, float):
                typed = {"doubleValue": value}
            else:
                typed = {"stringValue": value}
            out.append({"key": key, "value": typed})
        return out

    return {"resourceSpans": [{
        "resource": {"attributes": kv(resource or {"service.name": "web"})},
        "scopeSpans": [{"scope": {"name": "ai"}, "spans": [{
            "traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "ai.generateText.doGenerate",
            "kind": 3, "startTimeUnixNano": "1793700000000000000",
            "endTimeUnixNano": "1793700000812500000", "attributes": kv(attributes),
            "status": {"code": status_code}}]}]}]}


class TestExporter:
    """The real OTLPSpanExporter (http/protobuf) against the server."""

    def test_genai_span_becomes_a_priced_event(self, api: Api, live_url: str) -> None:
        """An exported chat span is stored with its model, provider, usage and exact cost."""
        t = api.tenant()
        assert export(live_url, t.key, make_spans(CHAT)) is SpanExportResult.SUCCESS
        [event] = events(api, t)
        assert (event["provider"], event["model"], event["requested_model"]) == (
            "openai", "gpt-4o-2024-08-06", "gpt-4o")
        assert event["usage"]["input_tokens"] == 1200
        assert event["usage"]["cache_read_tokens"] == 1000
        assert event["operation"] == "chat" and event["status"] == "ok"
        assert event["tags"] == {"service": "checkout"}
        expected = llmlab.cost("gpt-4o-2024-08-06", {
            "input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1000},
            provider="openai", at=event["timestamp"])
        assert expected.priced and Decimal(event["cost"]) == expected.total

    def test_gzip_export_is_accepted(self, api: Api, live_url: str) -> None:
        """A gzip-compressed export is decompressed and stored."""
        t = api.tenant()
        result = export(live_url, t.key, make_spans(CHAT), compression=Compression.Gzip)
        assert result is SpanExportResult.SUCCESS
        assert len(events(api, t)) == 1

    def test_re_export_stores_nothing_twice(self, api: Api, live_url: str) -> None:
        """The same spans exported twice (an exporter's retry) are stored once."""
        t = api.tenant()
        spans = make_spans(CHAT, {**CHAT, "gen_ai.usage.output_tokens": 5})
        assert export(live_url, t.key, spans) is SpanExportResult.SUCCESS
        assert export(live_url, t.key, spans) is SpanExportResult.SUCCESS
        assert len(events(api, t)) == 2
        summary = api.data("GET", f"/api/costs/summary?project={t.project_id}", t.token)
        assert summary["totals"]["calls"] == 2

    def test_spans_that_are_not_model_calls_are_ignored(self, api: Api, live_url: str) -> None:
        """HTTP spans and agent spans store nothing and are not counted as rejected."""
        t = api.tenant()
        agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                 "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5}
        spans = make_spans({"http.request.method": "GET"}, agent)
        assert export(live_url, t.key, spans) is SpanExportResult.SUCCESS
        response = post_protobuf(api, t.key, spans)
        assert response.status_code == 200 and response.content_type == PROTOBUF
        assert not ExportTraceServiceResponse.FromString(response.data).HasField(
            "partial_success")
        assert events(api, t) == []

    def test_a_wrong_key_fails_the_export(self, api: Api, live_url: str) -> None:
        """The exporter's export fails with an unknown key, and nothing is stored."""
        t = api.tenant()
        assert export(live_url, "llm_wrong", make_spans(CHAT)) is SpanExportResult.FAILURE
        assert events(api, t) == []


class TestResponses:
    """Per-span results in ExportTraceServiceResponse, and request errors in the envelope."""

    def test_invalid_span_is_rejected_and_counted(self, api: Api) -> None:
        """A span that cannot be an event is counted in partial_success; the others are stored."""
        t = api.tenant()
        bad = {**CHAT, "gen_ai.usage.output_tokens": -3}
        response = post_protobuf(api, t.key, make_spans(CHAT, bad))
        assert response.status_code == 200
        partial = ExportTraceServiceResponse.FromString(response.data).partial_success
        assert partial.rejected_spans == 1
        assert "1 of 2 GenAI spans rejected" in partial.error_message
        assert "output_tokens" in partial.error_message
        assert len(events(api, t)) == 1

    def test_bad_counts_with_an_unknown_system_are_rejected(self, api: Api) -> None:
        """A negative count on a span of an unmapped system is a rejection, not a 500."""
        t = api.tenant()
        spans = make_spans({"gen_ai.system": "my-proxy", "gen_ai.request.model": "gpt-4o",
                            "gen_ai.usage.input_tokens": -1})
        response = post_protobuf(api, t.key, spans)
        assert response.status_code == 200
        assert ExportTraceServiceResponse.FromString(
            response.data).partial_success.rejected_spans == 1

    def test_span_without_model_is_rejected(self, api: Api) -> None:
        """A chat span naming no model is rejected with a message saying so."""
        t = api.tenant()
        spans = make_spans({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3})
        partial = ExportTraceServiceResponse.FromString(
            post_protobuf(api, t.key, spans).data).partial_success
        assert partial.rejected_spans == 1 and "names no model" in partial.error_message

    def test_key_of_project_a_cannot_write_into_project_b(self, api: Api) -> None:
        """A span naming another tenant's project is rejected; neither project stores it."""
        a, b = api.tenant(), api.tenant()
        spans = make_spans({**CHAT, "llmlab.project": b.project["slug"]})
        partial = ExportTraceServiceResponse.FromString(
            post_protobuf(api, a.key, spans).data).partial_success
        assert partial.rejected_spans == 1 and "not this key's project" in partial.error_message
        assert events(api, a) == [] and events(api, b) == []

    def test_read_only_key_is_forbidden(self, api: Api) -> None:
        """A key without the ingest scope gets 403 in the error envelope."""
        t = api.tenant()
        reader = api.key(t.token, t.project_id, scopes=("read",))
        response = post_protobuf(api, reader, make_spans(CHAT))
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "insufficient_scope"

    def test_missing_credentials_are_unauthorized(self, api: Api) -> None:
        """No Authorization header gets 401 in the error envelope."""
        response = api.client.post(PATH, data=b"", headers={"Content-Type": PROTOBUF})
        assert response.status_code == 401
        assert response.get_json()["success"] is False

    @pytest.mark.parametrize(("content_type", "body", "code"), [
        (PROTOBUF, b"\xff\xff\xff\xff", "invalid_protobuf"),
        ("application/json", b"{not json", "invalid_json"),
        ("application/json", b"[1, 2]", "invalid_otlp"),
        ("application/json", b'{"resourceSpans": 7}', "invalid_otlp"),
        ("application/json", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "not-hex", "spanId": SPAN_HEX}]}]}]}).encode(), "invalid_otlp"),
    ])
    def test_malformed_body_is_a_400_envelope(self, api: Api, content_type: str, body: bytes,
                                              code: str) -> None:
        """A body that is not an OTLP export is a 400 in the error envelope, never a 500."""
        t = api.tenant()
        response = api.client.post(PATH, data=body, headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": content_type})
        assert response.status_code == 400, response.data
        assert response.get_json()["error"]["code"] == code

    def test_other_media_types_are_415(self, api: Api) -> None:
        """A body that is neither protobuf nor JSON is refused with 415."""
        t = api.tenant()
        response = api.client.post(PATH, data=b"x", headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": "text/plain"})
        assert response.status_code == 415

    def test_too_many_genai_spans_are_422(self, api: Api, app: Flask) -> None:
        """More GenAI spans than MAX_BATCH in one export are refused whole."""
        app.config["MAX_BATCH"] = 2
        t = api.tenant()
        response = post_protobuf(api, t.key, make_spans(CHAT, CHAT, CHAT))
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "batch_too_large"

    def test_oversized_body_is_413(self, api: Api, app: Flask) -> None:
        """A body over MAX_BODY_BYTES is refused with 413, gzip-inflated ones too."""
        t = api.tenant()
        app.config["MAX_BODY_BYTES"] = 2000
        body = json.dumps(otlp_json({**CHAT, "padding": "x" * 5000})).encode()
        big = api.client.post(PATH, data=gzip.compress(body), headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": "application/json",
            "Content-Encoding": "gzip"})
        assert big.status_code == 413
        assert big.get_json()["error"]["code"] == "decompressed_too_large"


class TestJson:
    """OTLP/JSON bodies, as JavaScript exporters and the Vercel AI SDK send them."""

    def test_json_span_with_attribution(self, api: Api) -> None:
        """Attribution attributes of resource and span land on the event; the answer is JSON."""
        t = api.tenant()
        attributes = {"gen_ai.system": "anthropic.messages",
                      "gen_ai.request.model": "claude-sonnet-4-5",
                      "gen_ai.usage.prompt_tokens": 900, "gen_ai.usage.completion_tokens": 50,
                      "llmlab.job_id": "ticket-7", "enduser.id": "cust-42",
                      "llmlab.tags.feature": "triage", "ai.response.msToFirstChunk": 190.5}
        body = otlp_json(attributes, resource={"service.name": "web",
                                               "deployment.environment.name": "prod"},
                         status_code=2)
        response = post_json(api, t.key, body)
        assert response.status_code == 200 and response.get_json() == {}
        [event] = events(api, t)
        assert event["provider"] == "anthropic" and event["model"] == "claude-sonnet-4-5"
        assert (event["job_id"], event["user_id"], event["environment"]) == (
            "ticket-7", "cust-42", "prod")
        assert event["tags"] == {"feature": "triage", "service": "web"}
        assert event["status"] == "error" and event["latency_ms"] == 812.5
        assert event["ttfb_ms"] == 190.5
        assert event["timestamp"].startswith("2026-11-03T")

    def test_gzip_json_re_sent_is_stored_once(self, api: Api) -> None:
        """A gzip OTLP/JSON export sent twice stores one event (ids from trace and span id)."""
        t = api.tenant()
        body = gzip.compress(json.dumps(otlp_json(CHAT)).encode())
        for _ in range(2):
            response = api.client.post(PATH, data=body, headers={
                "Authorization": f"Bearer {t.key}", "Content-Type": "application/json",
                "Content-Encoding": "gzip"})
            assert response.status_code == 200 and response.get_json() == {}
        assert len(events(api, t)) == 1

    def test_a_span_of_an_sdk_event_stores_once_beside_it(self, api: Api) -> None:
        """A span exported by `llmlab.otel` carries the SDK's event id (``llmlab.event_id``):
        sending it here after the SDK delivered the event stores nothing twice."""
        t = api.tenant()
        sdk_id = str(uuid.uuid4())
        assert api.track(t.key, [make_event(id=sdk_id)]).status_code == 207
        response = post_json(api, t.key, otlp_json({**CHAT, "llmlab.event_id": sdk_id}))
        assert response.status_code == 200
        assert [e["id"] for e in events(api, t)] == [sdk_id]

    def test_json_rejection_is_reported_in_partial_success(self, api: Api) -> None:
        """A rejected span in OTLP/JSON is answered as partialSuccess in JSON."""
        t = api.tenant()
        body = otlp_json({**CHAT, "gen_ai.usage.input_tokens": "many"})
        partial = post_json(api, t.key, body).get_json()["partialSuccess"]
        assert int(partial["rejectedSpans"]) == 1
        assert "gen_ai.usage.input_tokens" in partial["errorMessage"]


class TestMapping:
    """How span attributes map to the event (pure functions, no server)."""

    @pytest.mark.parametrize(("system", "provider"), [
        ("openai", "openai"), ("Anthropic", "anthropic"), ("aws.bedrock", "bedrock"),
        ("gcp.vertex_ai", "vertex"), ("google.vertex.chat", "vertex"),
        ("gcp.gemini", "google"), ("az.ai.openai", "azure"), ("mistral_ai", "mistral"),
        ("x_ai", "xai"), ("openai.responses", "openai"), ("something", None), (None, None)])
    def test_provider_ids(self, system: str | None, provider: str | None) -> None:
        """gen_ai.system values of the conventions and popular instrumentors map to ids."""
        assert provider_id(system) == provider

    def test_exclusive_cache_counts_are_added_to_input(self) -> None:
        """Cache tokens above input_tokens (an exclusive count) are added, as llmlab counts."""
        span = Span(bytes(range(1, 17)), bytes(range(1, 9)), "chat", 1793700000000000000,
                    1793700001000000000, False, {
                        "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
                        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5,
                        "gen_ai.usage.cache_read_input_tokens": 400,
                        "gen_ai.usage.cache_creation_input_tokens": 100,
                        "gen_ai.usage.reasoning.output_tokens": 3})
        usage = to_event(span)["usage"]
        assert (usage["input_tokens"], usage["cache_read_tokens"],
                usage["cache_write_tokens"]) == (510, 400, 100)
        assert (usage["output_tokens"], usage["reasoning_tokens"]) == (5, 3)

    def test_unknown_system_takes_the_catalogue_provider(self) -> None:
        """An unmapped gen_ai.system prices the model by the catalogue's own provider."""
        span = Span(bytes(range(1, 17)), bytes(range(1, 9)), "chat", 1793700000000000000,
                    1793700001000000000, False, {"gen_ai.system": "my-proxy",
                                                 "gen_ai.request.model": "gpt-4o"})
        assert to_event(span)["provider"] == "openai"


def test_openapi_documents_both_encodings(api: Api) -> None:
    """The OpenAPI document lists the route with protobuf and JSON bodies and answers."""
    spec = api.client.get("/api/openapi.json").get_json()
    entry = spec["paths"][PATH]["post"]
    assert set(entry["requestBody"]["content"]) == {"application/json", PROTOBUF}
    assert set(entry["responses"]["200"]["content"]) == {"application/json", PROTOBUF}
