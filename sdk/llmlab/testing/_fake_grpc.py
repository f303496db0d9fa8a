"""The fake provider's gRPC frontend, for google-generativeai's async client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from llmlab.testing import _fake_gemini_wire as gemini_wire
from llmlab.testing import _fake_wire as wire
from llmlab.testing._fake_routes import build_reply
from llmlab.testing._fake_settings import FakeSettings, RecordedRequest

if TYPE_CHECKING:
    from llmlab.testing._fake_provider import FakeProvider

__all__ = ["GEMINI_SERVICE", "GrpcFrontend"]


GEMINI_SERVICE = "google.ai.generativelanguage.v1beta.GenerativeService"


class GrpcFrontend:
    """Plaintext gRPC ``GenerativeService`` (v1beta) sharing the fake's settings and log.

    Exists because google-generativeai's async client only speaks gRPC. grpcio and
    google-ai-generativelanguage are imported lazily, here only, so ``llmlab`` (and the HTTP
    fake) import without them.
    """

    def __init__(self, fake: FakeProvider, host: str) -> None:
        import grpc
        from google.ai.generativelanguage_v1beta.types import generative_service as gs

        self._fake, self._grpc = fake, grpc
        self._request_type = gs.GenerateContentRequest
        self._response_type = gs.GenerateContentResponse
        codec = {
            "request_deserializer": self._request_type.deserialize,
            "response_serializer": self._response_type.serialize,
        }
        handlers = {
            "GenerateContent": grpc.unary_unary_rpc_method_handler(self._unary, **codec),
            "StreamGenerateContent": grpc.unary_stream_rpc_method_handler(self._stream, **codec),
        }
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        generic = grpc.method_handlers_generic_handler(GEMINI_SERVICE, handlers)
        self.server.add_generic_rpc_handlers((generic,))
        self.target = f"{host}:{self.server.add_insecure_port(f'{host}:0')}"
        self.server.start()

    def _prepare(self, request: Any, context: Any, stream: bool) -> tuple[FakeSettings, wire.Reply, Any]:
        method = "StreamGenerateContent" if stream else "GenerateContent"
        endpoint = "google.stream_generate_content" if stream else "google.generate_content"
        body = json.loads(self._request_type.to_json(request, use_integers_for_enums=False, indent=None))
        self._fake._record(
            RecordedRequest(
                method="POST",
                path=f"/{GEMINI_SERVICE}/{method}",
                query={},
                headers={str(k).lower(): str(v) for k, v in context.invocation_metadata()},
                body=body,
                raw_body=self._request_type.serialize(request),
                provider="google",
                endpoint=endpoint,
                stream=stream,
            )
        )
        settings, failure = self._fake._begin("google")
        if failure is not None:
            code = self._grpc.StatusCode[gemini_wire.google_status(failure.status)]
            context.abort(code, failure.message or f"FakeProvider injected HTTP {failure.status}")
        reply, call = build_reply(endpoint, body, str(request.model).split("/", 1)[-1], settings)
        return settings, reply, call

    def _to_proto(self, obj: Mapping[str, Any]) -> Any:
        return self._response_type.from_json(json.dumps(obj), ignore_unknown_fields=True)

    def _unary(self, request: Any, context: Any) -> Any:
        _, reply, call = self._prepare(request, context, stream=False)
        return self._to_proto(gemini_wire.gemini_response(reply, call))

    def _stream(self, request: Any, context: Any) -> Iterator[Any]:
        settings, reply, call = self._prepare(request, context, stream=True)
        chunks = gemini_wire.gemini_stream(reply, call)
        brk = self._fake._pop_break("google")
        limit = min(brk.after_chunks, len(chunks) - 1) if brk else len(chunks)
        for index, chunk in enumerate(chunks[:limit]):
            if index and settings.chunk_delay:
                time.sleep(settings.chunk_delay)
            yield self._to_proto(chunk)
        if brk:
            context.abort(self._grpc.StatusCode.UNAVAILABLE, "FakeProvider broke the stream")
