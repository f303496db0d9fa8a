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
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from llmlab.testing._fake_charges import FakeCharges
from llmlab.testing._fake_grpc import GrpcFrontend
from llmlab.testing._fake_http import FakeHTTPHandler, FakeHTTPServer
from llmlab.testing._fake_settings import (
    DEFAULT_TEXT,
    PROVIDERS,
    UNSET,
    Failure,
    FakeSettings,
    Provider,
    RecordedRequest,
    StreamBreak,
    Unset,
)
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
        self._failures: list[Failure] = []
        self._breaks: list[StreamBreak] = []
        self._connections: set[socket.socket] = set()
        self._server: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._grpc: GrpcFrontend | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind an ephemeral port and serve in a daemon thread (idempotent)."""
        if self._server is None:
            server = FakeHTTPServer((self._host, self._port), FakeHTTPHandler)
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
            self._grpc = GrpcFrontend(self, self._host)
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
        text: str | Unset = UNSET,
        usage: FakeUsage | Unset = UNSET,
        model: str | Unset | None = UNSET,
        stream_chunks: int | Unset = UNSET,
        first_byte_delay: float | Unset = UNSET,
        chunk_delay: float | Unset = UNSET,
        function_call: FakeFunctionCall | Unset | None = UNSET,
        embedding_dimensions: int | Unset = UNSET,
        charges: FakeCharges | Unset | None = UNSET,
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
            if value is not UNSET
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
            self._failures.extend(Failure(status, retry_after, message, provider) for _ in range(count))

    def break_next_stream(
        self, *, after_chunks: int = 1, count: int = 1, provider: Provider | None = None
    ) -> None:
        """Cut the connection of the next ``count`` streamed responses after ``after_chunks``
        events (capped so at least the terminal event is always missing)."""
        with self._lock:
            self._breaks.extend(StreamBreak(after_chunks, provider) for _ in range(count))

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

    def _begin(self, provider: Provider | None) -> tuple[FakeSettings, Failure | None]:
        """Snapshot the settings, wait the first-byte delay, and take a pending failure."""
        with self._lock:
            settings = dataclasses.replace(self.settings(provider or "openai"))
        if settings.first_byte_delay:
            time.sleep(settings.first_byte_delay)
        return settings, self._pop_failure(provider)

    def _pop_failure(self, provider: Provider | None) -> Failure | None:
        with self._lock:
            for index, failure in enumerate(self._failures):
                if failure.provider in (None, provider):
                    return self._failures.pop(index)
        return None

    def _pop_break(self, provider: Provider | None) -> StreamBreak | None:
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


def fake_provider(**kwargs: Any) -> Iterator[FakeProvider]:
    """Generator for pytest fixtures: ``yield from fake_provider()``."""
    with FakeProvider(**kwargs) as fp:
        yield fp
