"""A real local ingest server for transport tests: ``POST /api/events/track``, misbehaving on demand.

It speaks the server's contract (207 with per-event results, id-based dedup, the error envelope)
and can be told to be down (not listening), fail with a status (500, 429 + ``Retry-After``, 413,
401…), answer slowly, reset the connection mid-request, black-hole (read the request, never
answer), reject chosen events, or refuse bodies over a size.

>>> with CaptureServer() as server:
...     import httpx
...     r = httpx.post(server.url + "/api/events/track", json={"events": [{"id": "a"}]})
...     r.status_code, server.count("a")
(207, 1)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CaptureServer", "Request", "make_event", "make_events"]


def make_event(event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid wire event (as ``CostEvent.to_wire()`` makes) with a fresh or given id."""
    return {
        "schema_version": 1, "id": event_id or str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "provider": "openai", "model": "gpt-4o", "operation": "chat.completions",
        "usage": {"input_tokens": 1200, "output_tokens": 300},
        "cost": {"input": "0.003", "output": "0.003", "total": "0.006", "currency": "USD",
                 "priced": True},
        "stream": False, "status": "ok", "project": "tests", "tags": {"suite": "transport"},
        **fields,
    }


def make_events(count: int, prefix: str = "ev") -> list[dict[str, Any]]:
    """``count`` valid events with ids ``<prefix>-<n>``."""
    return [make_event(f"{prefix}-{n}") for n in range(count)]


@dataclass
class Request:
    """One request the server read."""

    status: int
    headers: dict[str, str]
    events: list[dict[str, Any]]
    body_bytes: int


@dataclass
class _Failure:
    status: int
    retry_after: str | None = None


@dataclass
class _State:
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)  # every arrival, duplicates included
    requests: list[Request] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: CaptureServer

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.owner._lock:
            self.owner._connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._reply(200, {"status": "ok"})

    def do_POST(self) -> None:
        self.server.owner._handle(self)

    def _reply(self, status: int, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(code: str, message: str, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"success": False, "data": None, "timestamp": _now(),
            "error": {"type": type_, "code": code, "message": message}}


class CaptureServer:
    """The ingest endpoint on 127.0.0.1 (ephemeral port), with failure modes for tests.

    Modes (``server.mode``): ``"ok"``, ``"slow"`` (sleep ``delay`` then answer), ``"reset"``
    (RST mid-request), ``"blackhole"`` (never answer). ``fail_next(n, status, retry_after)``
    fails the next ``n`` requests; ``reject_ids`` rejects events per id; ``max_body_bytes``
    answers 413 above it; ``api_key`` (if set) is required; ``down()``/``up()`` stop and restart
    listening on the same port.
    """

    def __init__(self, *, port: int = 0, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.mode = "ok"
        self.delay = 0.0
        self._mode_left: int | None = None
        self.max_body_bytes: int | None = None
        self.reject_ids: set[str] = set()
        self.reject_if: Callable[[dict[str, Any]], bool] | None = None
        self._port = port
        self._failures: list[_Failure] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._release = threading.Event()  # frees black-holed handlers at stop()
        self._httpd: _Server | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port (fixed after the first start, so down()/up() keep the URL)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: pass it as ``base_url``."""
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> CaptureServer:
        """Start listening (idempotent)."""
        if self._httpd is not None:
            return self
        self._release.clear()
        httpd = _Server(("127.0.0.1", self._port), _Handler)
        httpd.owner = self
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="capture-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and free any black-holed requests (idempotent)."""
        httpd, self._httpd = self._httpd, None
        self._release.set()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        # "Down" means down: kept-alive connections die too, as when a server process exits.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        if self._thread is not None:
            self._thread.join(5)

    down = stop
    up = start

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control and inspection --------------------------------------------------------------------

    def set_mode(self, mode: str, *, times: int | None = None, delay: float | None = None) -> None:
        """Misbehave as ``mode`` (``ok``, ``slow``, ``reset``, ``blackhole``), for ``times``
        requests or until changed."""
        with self._lock:
            self.mode, self._mode_left = mode, times
            if delay is not None:
                self.delay = delay

    def fail_next(self, count: int, status: int = 500, retry_after: str | float | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``)."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._failures.extend([_Failure(status, header)] * count)

    @property
    def requests(self) -> list[Request]:
        """Every request read, in order."""
        with self._lock:
            return list(self._state.requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Stored events (each id once)."""
        with self._lock:
            return list(self._state.stored.values())

    @property
    def ids(self) -> set[str]:
        """Ids stored."""
        with self._lock:
            return set(self._state.stored)

    def count(self, event_id: str) -> int:
        """How often ``event_id`` arrived (duplicates included)."""
        with self._lock:
            return self._state.counts[event_id]

    @property
    def arrivals(self) -> Counter[str]:
        """Arrivals per id, duplicates included."""
        with self._lock:
            return Counter(self._state.counts)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` distinct events are stored; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._state.stored) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(remaining)
            return True

    # -- the endpoint ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        if handler.path.split("?")[0] != "/api/events/track":
            handler._reply(404, _error("not_found", "no such route"))
            return
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            mode = self.mode
            if mode != "ok" and self._mode_left is not None:
                self._mode_left -= 1
                if self._mode_left <= 0:
                    self.mode, self._mode_left = "ok", None
        if mode == "blackhole":
            self._log(0, headers, [], len(raw))
            self._release.wait(60)  # hold the connection open, never answer
            handler.close_connection = True
            return
        if mode == "reset":
            self._log(0, headers, [], len(raw))
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset".
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
            return
        if mode == "slow":
            time.sleep(self.delay)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            self._log(failure.status, headers, [], len(raw))
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            handler._reply(failure.status, _error(f"http_{failure.status}", "injected failure",
                                                  "api_error"), extra)
            return
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self._log(401, headers, [], len(raw))
            handler._reply(401, _error("invalid_api_key", "bad API key", "authentication_error"))
            return
        if self.max_body_bytes is not None and len(raw) > self.max_body_bytes:
            self._log(413, headers, [], len(raw))
            handler._reply(413, _error("payload_too_large", f"body over {self.max_body_bytes}"))
            return
        try:
            if headers.get("content-encoding") == "gzip":
                raw = gzip.decompress(raw)
            payload = json.loads(raw)
        except (OSError, ValueError):
            self._log(400, headers, [], len(raw))
            handler._reply(400, _error("invalid_json", "body is not (gzip) JSON"))
            return
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list):
            events = [payload]
        status, body = self._ingest(events)
        self._log(status, headers, events, length)
        handler._reply(status, body)

    def _ingest(self, events: list[Any]) -> tuple[int, dict[str, Any]]:
        results: list[dict[str, Any]] = []
        totals = Counter[str]()
        with self._arrived:
            for index, event in enumerate(events):
                event_id = event.get("id") if isinstance(event, dict) else None
                row: dict[str, Any] = {"index": index, "id": event_id}
                if not isinstance(event_id, str) or event_id in self.reject_ids or (
                        self.reject_if is not None and self.reject_if(event)):
                    row["status"] = "rejected"
                    row["error"] = {"code": "invalid_event", "message": "rejected by test server"}
                else:
                    self._state.counts[event_id] += 1
                    if event_id in self._state.stored:
                        row["status"] = "duplicate"
                    else:
                        self._state.stored[event_id] = event
                        row["status"] = "accepted"
                totals[row["status"]] += 1
                results.append(row)
            self._arrived.notify_all()
        return 207, {"success": True, "error": None, "timestamp": _now(), "data": {
            "accepted": totals["accepted"], "duplicates": totals["duplicate"],
            "rejected": totals["rejected"], "results": results}}

    def _log(self, status: int, headers: dict[str, str], events: list[Any], size: int) -> None:
        with self._lock:
            self._state.requests.append(Request(status, headers, events, size))
