"""The fake provider's HTTP/1.1 frontend: stdlib server and request handler.

The handler records each request, applies injected failures and stream breaks, and sends
the body or stream built by the per-provider wire modules (plus charges and media routes).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from llmlab.testing import _fake_anthropic_wire as anthropic_wire
from llmlab.testing import _fake_gemini_wire as gemini_wire
from llmlab.testing import _fake_media
from llmlab.testing import _fake_openai_wire as openai_wire
from llmlab.testing import _fake_wire as wire
from llmlab.testing._fake_charges import charge_body, charge_stream
from llmlab.testing._fake_routes import build_reply, route
from llmlab.testing._fake_settings import FakeSettings, Provider, RecordedRequest, StreamBreak

if TYPE_CHECKING:
    from llmlab.testing._fake_provider import FakeProvider

__all__ = ["FakeHTTPHandler", "FakeHTTPServer"]


class FakeHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server carrying its `FakeProvider` (``fake``) for the handlers."""

    daemon_threads = True
    request_queue_size = 1024  # the default listen backlog of 5 resets bursts of async clients
    fake: FakeProvider

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-stream is normal in tests (broken streams, early close).
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)


class FakeHTTPHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests as OpenAI, Anthropic or Gemini would."""

    protocol_version = "HTTP/1.1"  # keep-alive; bodies are framed by Content-Length or chunked
    disable_nagle_algorithm = True  # TCP_NODELAY: otherwise small writes wait ~40 ms
    timeout = 60  # idle keep-alive connections eventually release their thread
    server: FakeHTTPServer

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
        self, events: list[bytes], content_type: str, settings: FakeSettings, brk: StreamBreak | None
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
        provider, endpoint, path_model = route(url.path)
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
            raise  # the client hung up; FakeHTTPServer.handle_error stays quiet about it
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
            body = anthropic_wire.anthropic_error(status, text)
            headers["request-id"] = body["request_id"]
        elif provider == "google":
            body = gemini_wire.google_error(status, text)
        else:
            body = openai_wire.openai_error(status, text)
            headers["x-request-id"] = wire.new_id("req_")
        self._send_json(status, body, headers)

    def _answer(
        self,
        endpoint: str,
        data: dict[str, Any],
        query: Mapping[str, str],
        path_model: str | None,
        settings: FakeSettings,
        brk: StreamBreak | None,
    ) -> None:
        reply, call = build_reply(endpoint, data, path_model, settings)
        self._charges = (endpoint, settings.charges) if settings.charges else None
        is_stream = endpoint == "google.stream_generate_content" or data.get("stream") is True
        sse_type = "text/event-stream; charset=utf-8"
        request_id = {"x-request-id": wire.new_id("req_")}
        if endpoint == "openai.chat":
            if is_stream:
                include = bool((data.get("stream_options") or {}).get("include_usage"))
                self._send_stream(openai_wire.openai_chat_stream(reply, include), sse_type, settings, brk)
            else:
                self._send_json(200, openai_wire.openai_chat(reply), request_id)
        elif endpoint == "openai.responses":
            if is_stream:
                self._send_stream(openai_wire.openai_responses_stream(reply, data), sse_type, settings, brk)
            else:
                self._send_json(200, openai_wire.openai_responses(reply, data), request_id)
        elif endpoint == "openai.embeddings":
            self._send_json(200, openai_wire.openai_embeddings(reply, data), request_id)
        elif endpoint == "anthropic.messages":
            if is_stream:
                self._send_stream(anthropic_wire.anthropic_stream(reply), sse_type, settings, brk)
            else:
                message = anthropic_wire.anthropic_message(reply)
                self._send_json(200, message, {"request-id": wire.new_id("req_")})
        elif endpoint == "anthropic.count_tokens":
            self._send_json(200, {"input_tokens": reply.usage.input_tokens})
        elif endpoint == "google.count_tokens":
            self._send_json(200, {"totalTokens": reply.usage.input_tokens})
        elif endpoint == "google.generate_content":
            self._send_json(200, gemini_wire.gemini_response(reply, call))
        elif query.get("alt") == "sse":  # google-genai
            chunks = [wire.sse(c).replace(b"\n", b"\r\n") for c in gemini_wire.gemini_stream(reply, call)]
            self._send_stream(chunks, sse_type, settings, brk)
        else:
            # Legacy REST clients stream a JSON array, which they parse object by object.
            objs = [json.dumps(c).encode() for c in gemini_wire.gemini_stream(reply, call)]
            events = [(b"[" if i == 0 else b",\r\n") + o for i, o in enumerate(objs)] + [b"]"]
            self._send_stream(events, "application/json; charset=UTF-8", settings, brk)
