"""A real local HTTP server that impersonates the OpenAI, Anthropic and Gemini APIs.

``FakeProvider`` runs a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port, daemon
thread, HTTP/1.1 keep-alive, TCP_NODELAY) and answers with bodies and SSE streams shaped so
the *real* SDK clients parse them. Tests point the SDKs at it through their documented
base-URL options, choose the usage numbers it reports, inject failures, and inspect every
request it received::

    with FakeProvider() as fp:
        fp.openai.usage = FakeUsage(input_tokens=2000, cached_tokens=1000)
        client = openai.OpenAI(api_key="sk-test", base_url=fp.openai_base_url, max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=[...])
        assert fp.requests[0].path == "/v1/chat/completions"

Base-URL recipes (verified against openai 3.54, anthropic 2.12, google-genai 3.4 and
google-generativeai 0.8.6):

* openai: ``OpenAI(base_url=fp.openai_base_url, max_retries=0)`` (``http://HOST:PORT/v1``;
  the SDK appends ``/chat/completions``, ``/responses``, ``/embeddings``); same for
  ``AsyncOpenAI``. The fake also accepts those paths without ``/v1``.
* anthropic: ``Anthropic(base_url=fp.anthropic_base_url, max_retries=0)`` (no ``/v1``: the
  SDK posts ``/v1/messages`` itself, also for ``client.beta.messages``, which differs only by
  the ``anthropic-beta`` header); same for ``AsyncAnthropic``.
* google-genai: ``genai.Client(api_key="k", http_options=types.HttpOptions(
  base_url=fp.google_base_url))``; the SDK posts ``/v1/models/{m}:generateContent`` (its
  default api_version is ``v1``; ``v1beta`` is accepted too) and
  ``:streamGenerateContent?alt=sse`` when streaming; ``client.aio`` uses the same URLs.
* google-generativeai (legacy), sync: ``genai.configure(api_key="k", transport="rest",
  client_options={"api_endpoint": fp.google_legacy_endpoint})``. The endpoint must keep the
  ``http://`` scheme, otherwise the REST transport prepends ``https://``. It posts
  ``/v1beta/models/{m}:generateContent?$alt=json;enum-encoding=int`` and, for
  ``stream=True``, ``:streamGenerateContent`` *without* ``alt=sse``, expecting a streamed
  JSON array (which the fake sends).
* google-generativeai, async (``generate_content_async``): its async client only has the
  ``grpc_asyncio`` transport (with ``transport="rest"`` it calls the sync REST transport and
  then fails awaiting the result), so it cannot use HTTP/1.1. The fake serves it over
  plaintext gRPC instead; inside the event loop, after ``genai.configure(...)``::

      from google.generativeai import client as legacy_client
      legacy_client._client_manager.clients["generative_async"] = fp.google_legacy_async_client()

The HTTP fake uses only the standard library, so ``llmlab`` imports without any provider SDK;
the optional gRPC frontend imports grpcio and google-ai-generativelanguage lazily.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from llmlab.testing import _fake_media
from llmlab.testing import _fake_wire as wire
from llmlab.testing._fake_charges import FakeCharges, charge_body, charge_stream
from llmlab.testing._fake_wire import FakeFunctionCall, FakeUsage

__all__ = [
    "FakeFunctionCall",
    "FakeProvider",
    "FakeSettings",
    "FakeUsage",
    "Provider",
    "RecordedRequest",
    "fake_provider",
]

Provider = Literal["openai", "anthropic", "google"]
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic", "google")
DEFAULT_TEXT = "Hello from FakeProvider!"


@dataclass
class FakeSettings:
    """What one provider's endpoints answer. Mutable: ``fp.openai.text = "..."``."""

    text: str = DEFAULT_TEXT
    """Response text; for structured-output requests, used as is if it is JSON, otherwise
    replaced by a minimal JSON instance of the requested schema."""
    usage: FakeUsage = field(default_factory=FakeUsage)
    model: str | None = None
    """Model name reported back; ``None`` echoes the requested model."""
    stream_chunks: int = 3
    """Number of text deltas a stream is split into."""
    first_byte_delay: float = 0.0
    """Seconds to wait before the status line (also before errors)."""
    chunk_delay: float = 0.0
    """Seconds to wait between stream events."""
    function_call: FakeFunctionCall | None = None
    """Gemini: answer the first leg of a tool-declaring request with a ``functionCall``."""
    embedding_dimensions: int = 8
    charges: FakeCharges | None = None
    """Non-token charges to report (tool uses, Gemini image tokens, a provider cost)."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (recorded before any failure is injected)."""

    method: str
    path: str
    """Path without the query string, e.g. ``/v1/chat/completions``."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any
    """Parsed JSON body, or ``None`` if empty / not JSON (see ``raw_body``)."""
    raw_body: bytes
    provider: Provider | None
    endpoint: str | None
    """``openai.chat``, ``openai.responses``, ``openai.embeddings``, ``anthropic.messages``,
    ``anthropic.count_tokens``, ``google.generate_content``, ``google.stream_generate_content``,
    ``google.count_tokens``; ``None`` for unknown routes (answered 404)."""
    stream: bool


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    message: str | None
    provider: Provider | None


@dataclass
class _Break:
    after_chunks: int
    provider: Provider | None


_GEMINI_ROUTE = re.compile(  # Gemini API and Vertex AI (projects/…/publishers/google/…) paths
    r"^/(?:v1beta1|v1beta|v1|v1alpha)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"(?P<model>(?:models|tunedModels)/[^:/]+)"
    r":(?P<method>generateContent|streamGenerateContent|countTokens)$"
)
_OPENAI_ROUTES = {
    "/chat/completions": "openai.chat",
    "/responses": "openai.responses",
    "/embeddings": "openai.embeddings",
    **_fake_media.ROUTES,  # images and audio (#15)
}
_ANTHROPIC_ROUTES = {
    "/v1/messages": "anthropic.messages",
    "/v1/messages/count_tokens": "anthropic.count_tokens",
}
_GEMINI_METHODS = {
    "generateContent": "google.generate_content",
    "streamGenerateContent": "google.stream_generate_content",
    "countTokens": "google.count_tokens",
}


def _route(path: str) -> tuple[Provider | None, str | None, str | None]:
    """Map a path to (provider, endpoint, model-from-path)."""
    if (media := _fake_media.route(path)) is not None:  # Imagen (#15)
        return media
    if path in _ANTHROPIC_ROUTES:
        return "anthropic", _ANTHROPIC_ROUTES[path], None
    # Accept OpenAI paths with or without /v1 so a base_url missing "/v1" still works.
    openai_path = path.removeprefix("/v1")
    if openai_path in _OPENAI_ROUTES:
        return "openai", _OPENAI_ROUTES[openai_path], None
    match = _GEMINI_ROUTE.match(path)
    if match:
        return "google", _GEMINI_METHODS[match["method"]], match["model"].split("/", 1)[1]
    if path.startswith("/v1beta") or ":" in path:
        return "google", None, None
    return ("anthropic" if path.startswith("/v1/messages") else "openai"), None, None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default listen backlog of 5 resets bursts of async clients
    fake: FakeProvider

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-stream is normal in tests (broken streams, early close).
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; bodies are framed by Content-Length or chunked
    disable_nagle_algorithm = True  # TCP_NODELAY: otherwise small writes wait ~40 ms
    timeout = 60  # idle keep-alive connections eventually release their thread
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # -- plumbing -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        charged = getattr(self, "_charges", None)
        if status == 200 and charged is not None:
            body = charge_body(charged[0], body, charged[1])
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(
        self, events: list[bytes], content_type: str, settings: FakeSettings, brk: _Break | None
    ) -> None:
        """Send ``events`` as chunks; a break cuts the connection after ``after_chunks``
        events, before the terminating chunk, so the client sees a truncated body."""
        charged = getattr(self, "_charges", None)
        if charged is not None:
            events = charge_stream(charged[0], events, charged[1])
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        limit = min(brk.after_chunks, len(events) - 1) if brk else len(events)
        for index, event in enumerate(events[:limit]):
            if index and settings.chunk_delay:
                time.sleep(settings.chunk_delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        if brk:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")

    def _dispatch(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        provider, endpoint, path_model = _route(url.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        data: dict[str, Any] = body if isinstance(body, dict) else {}
        is_stream = endpoint == "google.stream_generate_content" or data.get("stream") is True
        fake._record(
            RecordedRequest(
                method=self.command,
                path=url.path,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw_body=raw,
                provider=provider,
                endpoint=endpoint,
                stream=is_stream,
            )
        )
        settings, failure = fake._begin(provider)
        if failure is not None:
            self._send_error(provider, failure.status, failure.message, failure.retry_after)
            return
        if endpoint is None:
            self._send_error(provider, 404, f"Unknown route {self.command} {url.path}", None)
            return
        brk = fake._pop_break(provider) if is_stream else None
        try:
            if endpoint in _fake_media.ENDPOINTS:
                _fake_media.answer(self, endpoint, raw, data)
                return
            self._answer(endpoint, data, query, path_model, settings, brk)
        except OSError:
            raise  # the client hung up; _Server.handle_error stays quiet about it
        except Exception as exc:  # a bug in the fake must show up, not hang the client
            traceback.print_exc()
            self._send_error(provider, 500, f"FakeProvider internal error: {exc!r}", None)

    def _send_error(
        self, provider: Provider | None, status: int, message: str | None, retry_after: float | None
    ) -> None:
        text = message or f"FakeProvider injected HTTP {status}"
        headers: dict[str, str] = {}
        if retry_after is not None:
            whole = retry_after == int(retry_after)
            headers["Retry-After"] = str(int(retry_after)) if whole else str(retry_after)
        if provider == "anthropic":
            body = wire.anthropic_error(status, text)
            headers["request-id"] = body["request_id"]
        elif provider == "google":
            body = wire.google_error(status, text)
        else:
            body = wire.openai_error(status, text)
            headers["x-request-id"] = wire.new_id("req_")
        self._send_json(status, body, headers)

    def _answer(
        self,
        endpoint: str,
        data: dict[str, Any],
        query: Mapping[str, str],
        path_model: str | None,
        settings: FakeSettings,
        brk: _Break | None,
    ) -> None:
        reply, call = _build_reply(endpoint, data, path_model, settings)
        self._charges = (endpoint, settings.charges) if settings.charges else None
        is_stream = endpoint == "google.stream_generate_content" or data.get("stream") is True
        sse_type = "text/event-stream; charset=utf-8"
        request_id = {"x-request-id": wire.new_id("req_")}
        if endpoint == "openai.chat":
            if is_stream:
                include = bool((data.get("stream_options") or {}).get("include_usage"))
                self._send_stream(wire.openai_chat_stream(reply, include), sse_type, settings, brk)
            else:
                self._send_json(200, wire.openai_chat(reply), request_id)
        elif endpoint == "openai.responses":
            if is_stream:
                self._send_stream(wire.openai_responses_stream(reply, data), sse_type, settings, brk)
            else:
                self._send_json(200, wire.openai_responses(reply, data), request_id)
        elif endpoint == "openai.embeddings":
            self._send_json(200, wire.openai_embeddings(reply, data), request_id)
        elif endpoint == "anthropic.messages":
            if is_stream:
                self._send_stream(wire.anthropic_stream(reply), sse_type, settings, brk)
            else:
                self._send_json(200, wire.anthropic_message(reply), {"request-id": wire.new_id("req_")})
        elif endpoint == "anthropic.count_tokens":
            self._send_json(200, {"input_tokens": reply.usage.input_tokens})
        elif endpoint == "google.count_tokens":
            self._send_json(200, {"totalTokens": reply.usage.input_tokens})
        elif endpoint == "google.generate_content":
            self._send_json(200, wire.gemini_response(reply, call))
        elif query.get("alt") == "sse":  # google-genai
            chunks = [wire.sse(c).replace(b"\n", b"\r\n") for c in wire.gemini_stream(reply, call)]
            self._send_stream(chunks, sse_type, settings, brk)
        else:
            # Legacy REST clients stream a JSON array, which they parse object by object.
            objs = [json.dumps(c).encode() for c in wire.gemini_stream(reply, call)]
            events = [(b"[" if i == 0 else b",\r\n") + o for i, o in enumerate(objs)] + [b"]"]
            self._send_stream(events, "application/json; charset=UTF-8", settings, brk)


def _build_reply(
    endpoint: str, data: Mapping[str, Any], path_model: str | None, settings: FakeSettings
) -> tuple[wire.Reply, tuple[str, Mapping[str, Any]] | None]:
    """The answer to one request, plus the Gemini function call to make (if any)."""
    model = settings.model or path_model or str(data.get("model") or "fake-model")
    text = settings.text
    schema = wire.request_schema(endpoint, data)
    if schema is not None:
        text = wire.structured_text(text, schema)
    reply = wire.Reply(
        model=model,
        text=text,
        usage=settings.usage,
        pieces=wire.split_text(text, settings.stream_chunks),
        embedding_dimensions=settings.embedding_dimensions,
    )
    call = None
    declared = wire.gemini_wants_function_call(data) if settings.function_call else None
    if settings.function_call and declared:
        call = (settings.function_call.name or declared, settings.function_call.args)
    return reply, call


class FakeProvider:
    """Local HTTP server speaking the OpenAI, Anthropic and Gemini wire formats.

    Per-provider answers live in ``fp.openai``, ``fp.anthropic`` and ``fp.google``
    (:class:`FakeSettings`); constructor arguments and :meth:`configure` set them for all
    providers at once. Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        *,
        usage: FakeUsage | None = None,
        text: str = DEFAULT_TEXT,
        model: str | None = None,
        stream_chunks: int = 3,
        first_byte_delay: float = 0.0,
        chunk_delay: float = 0.0,
        charges: FakeCharges | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._defaults = FakeSettings(
            text=text,
            usage=usage or FakeUsage(),
            model=model,
            stream_chunks=stream_chunks,
            first_byte_delay=first_byte_delay,
            chunk_delay=chunk_delay,
            charges=charges,
        )
        self.openai = dataclasses.replace(self._defaults)
        self.anthropic = dataclasses.replace(self._defaults)
        self.google = dataclasses.replace(self._defaults)
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._breaks: list[_Break] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._grpc: _GrpcFrontend | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind an ephemeral port and serve in a daemon thread (idempotent)."""
        if self._server is None:
            server = _Server((self._host, self._port), _Handler)
            server.fake = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="FakeProvider",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections (idempotent)."""
        grpc_frontend, self._grpc = self._grpc, None
        if grpc_frontend is not None:
            grpc_frontend.server.stop(grace=None)
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # wake handler threads blocked on idle keep-alive reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the server must be started)."""
        if self._server is None:
            raise RuntimeError("FakeProvider is not running: call start() or use `with`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """For ``OpenAI(base_url=...)``: the SDK expects the ``/v1`` prefix in the base URL."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``Anthropic(base_url=...)``: the SDK adds ``/v1/messages`` itself."""
        return self.url

    @property
    def google_base_url(self) -> str:
        """For google-genai ``HttpOptions(base_url=...)``; the SDK adds ``/v1/models/...``."""
        return self.url

    @property
    def google_legacy_endpoint(self) -> str:
        """For google-generativeai ``client_options={"api_endpoint": ...}`` with
        ``transport="rest"``; the ``http://`` scheme keeps the transport off https."""
        return self.url

    def start_grpc(self) -> str:
        """Also serve Gemini ``GenerateContent`` / ``StreamGenerateContent`` over plaintext
        gRPC (same settings, failures and request log; ``RecordedRequest.path`` is
        ``/google.ai.generativelanguage.v1beta.GenerativeService/<Method>``). Returns the
        ``host:port`` target. Needs grpcio and google-ai-generativelanguage (both installed
        with google-generativeai); idempotent."""
        if self._grpc is None:
            self._grpc = _GrpcFrontend(self, self._host)
        return self._grpc.target

    def google_legacy_async_client(self) -> Any:
        """A google-generativeai async ``GenerativeServiceAsyncClient`` wired to
        :meth:`start_grpc` over an insecure channel; call it inside the event loop that uses
        it, then install it with
        ``google.generativeai.client._client_manager.clients["generative_async"] = ...``
        (after ``genai.configure``, which clears that cache)."""
        import grpc
        from google.ai import generativelanguage_v1beta as glm
        from google.ai.generativelanguage_v1beta.services.generative_service.transports import (
            grpc_asyncio,
        )
        from google.auth.credentials import AnonymousCredentials

        anonymous: Any = AnonymousCredentials  # untyped library class
        target = self.start_grpc()
        transport = grpc_asyncio.GenerativeServiceGrpcAsyncIOTransport(
            host=target,
            credentials=anonymous(),
            channel=lambda *_args, **_kwargs: grpc.aio.insecure_channel(target),
        )
        return glm.GenerativeServiceAsyncClient(transport=transport)

    # -- configuration ------------------------------------------------------------------------

    def settings(self, provider: Provider) -> FakeSettings:
        """The live, mutable settings of one provider."""
        return {"openai": self.openai, "anthropic": self.anthropic, "google": self.google}[provider]

    def configure(
        self,
        provider: Provider | None = None,
        *,
        text: str | _Unset = _UNSET,
        usage: FakeUsage | _Unset = _UNSET,
        model: str | _Unset | None = _UNSET,
        stream_chunks: int | _Unset = _UNSET,
        first_byte_delay: float | _Unset = _UNSET,
        chunk_delay: float | _Unset = _UNSET,
        function_call: FakeFunctionCall | _Unset | None = _UNSET,
        embedding_dimensions: int | _Unset = _UNSET,
        charges: FakeCharges | _Unset | None = _UNSET,
    ) -> None:
        """Change the given settings for one provider, or all when ``provider`` is None."""
        changes: dict[str, Any] = {
            name: value
            for name, value in {
                "text": text,
                "usage": usage,
                "model": model,
                "stream_chunks": stream_chunks,
                "first_byte_delay": first_byte_delay,
                "chunk_delay": chunk_delay,
                "function_call": function_call,
                "embedding_dimensions": embedding_dimensions,
                "charges": charges,
            }.items()
            if value is not _UNSET
        }
        with self._lock:
            for name in [provider] if provider else PROVIDERS:
                setattr(self, name, dataclasses.replace(self.settings(name), **changes))

    def fail_next(
        self,
        status: int = 429,
        *,
        count: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
        provider: Provider | None = None,
    ) -> None:
        """Answer the next ``count`` requests (to ``provider``, or any) with ``status`` and
        the provider's JSON error body; ``retry_after`` adds a ``Retry-After`` header."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, message, provider) for _ in range(count))

    def break_next_stream(
        self, *, after_chunks: int = 1, count: int = 1, provider: Provider | None = None
    ) -> None:
        """Cut the connection of the next ``count`` streamed responses after ``after_chunks``
        events (capped so at least the terminal event is always missing)."""
        with self._lock:
            self._breaks.extend(_Break(after_chunks, provider) for _ in range(count))

    def reset(self) -> None:
        """Forget recorded requests and pending failures/breaks; restore initial settings."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._breaks.clear()
            for name in PROVIDERS:
                setattr(self, name, dataclasses.replace(self._defaults))

    # -- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, provider: Provider) -> list[RecordedRequest]:
        """The recorded requests that went to one provider's routes."""
        return [r for r in self.requests if r.provider == provider]

    # -- used by the handler ------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _begin(self, provider: Provider | None) -> tuple[FakeSettings, _Failure | None]:
        """Snapshot the settings, wait the first-byte delay, and take a pending failure."""
        with self._lock:
            settings = dataclasses.replace(self.settings(provider or "openai"))
        if settings.first_byte_delay:
            time.sleep(settings.first_byte_delay)
        return settings, self._pop_failure(provider)

    def _pop_failure(self, provider: Provider | None) -> _Failure | None:
        with self._lock:
            for index, failure in enumerate(self._failures):
                if failure.provider in (None, provider):
                    return self._failures.pop(index)
        return None

    def _pop_break(self, provider: Provider | None) -> _Break | None:
        with self._lock:
            for index, brk in enumerate(self._breaks):
                if brk.provider in (None, provider):
                    return self._breaks.pop(index)
        return None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


_GEMINI_SERVICE = "google.ai.generativelanguage.v1beta.GenerativeService"


class _GrpcFrontend:
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
        generic = grpc.method_handlers_generic_handler(_GEMINI_SERVICE, handlers)
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
                path=f"/{_GEMINI_SERVICE}/{method}",
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
            code = self._grpc.StatusCode[wire.google_status(failure.status)]
            context.abort(code, failure.message or f"FakeProvider injected HTTP {failure.status}")
        reply, call = _build_reply(endpoint, body, str(request.model).split("/", 1)[-1], settings)
        return settings, reply, call

    def _to_proto(self, obj: Mapping[str, Any]) -> Any:
        return self._response_type.from_json(json.dumps(obj), ignore_unknown_fields=True)

    def _unary(self, request: Any, context: Any) -> Any:
        _, reply, call = self._prepare(request, context, stream=False)
        return self._to_proto(wire.gemini_response(reply, call))

    def _stream(self, request: Any, context: Any) -> Iterator[Any]:
        settings, reply, call = self._prepare(request, context, stream=True)
        chunks = wire.gemini_stream(reply, call)
        brk = self._fake._pop_break("google")
        limit = min(brk.after_chunks, len(chunks) - 1) if brk else len(chunks)
        for index, chunk in enumerate(chunks[:limit]):
            if index and settings.chunk_delay:
                time.sleep(settings.chunk_delay)
            yield self._to_proto(chunk)
        if brk:
            context.abort(self._grpc.StatusCode.UNAVAILABLE, "FakeProvider broke the stream")


def fake_provider(**kwargs: Any) -> Iterator[FakeProvider]:
    """Generator for pytest fixtures: ``yield from fake_provider()``."""
    with FakeProvider(**kwargs) as fp:
        yield fp
