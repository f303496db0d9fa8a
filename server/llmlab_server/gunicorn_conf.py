"""The production gunicorn settings: ``gunicorn -c python:llmlab_server.gunicorn_conf``.

Why these (issue #18, defect 4: four slow clients stopped two sync workers from answering):

* ``gthread`` workers: each connection gets a thread, so a client that sends its headers
  or body slowly holds one thread, not a whole worker. With ``threads`` per worker above the
  slow connections one worker may be handed, ``/health`` and real clients still get a thread.
  (A sync worker serves one connection at a time; four stalled uploads stopped two workers.)
* `BufferedBody` reads the whole request body, within ``LLMLAB_BODY_TIMEOUT`` seconds, before
  the app sees the request: authentication opens a database session, so an app reading the
  body itself held a pooled connection for as long as the client dawdled, and 16 slow uploads
  emptied a 15-connection pool. A body that does not arrive in time is answered 408.
* ``on_starting`` / ``child_exit`` keep ``/metrics`` summed over every worker when
  ``PROMETHEUS_MULTIPROC_DIR`` is set (docs/server.md); without it they do nothing.
* Behind an internet-facing proxy, let it buffer bodies too (nginx ``proxy_request_buffering
  on``, its default): then no slow client reaches gunicorn at all.

Each setting reads ``LLMLAB_GUNICORN_*`` (``WORKERS``, ``THREADS``, ``BIND``) when set;
gunicorn's own command-line flags override this file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from llmlab_server.errors import error_body

# gunicorn hooks of /metrics' multiprocess mode (no-ops unless PROMETHEUS_MULTIPROC_DIR is set).
from llmlab_server.metrics import child_exit, on_starting

__all__ = ["BufferedBody", "child_exit", "on_starting", "post_worker_init"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

wsgi_app = "llmlab_server:create_app()"
bind = os.environ.get("LLMLAB_GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("LLMLAB_GUNICORN_WORKERS", "2"))
worker_class = "gthread"
#: Threads per worker: each slow connection holds one; they idle cheaply (measured: 100 slow
#: clients on 2 x 128 threads added ~3 MB to the workers' 195 MB; /health took 2-6 ms).
threads = int(os.environ.get("LLMLAB_GUNICORN_THREADS", "128"))
timeout = 60
graceful_timeout = 30
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100

#: Seconds a client gets to send its whole body before it is answered 408.
BODY_TIMEOUT = float(os.environ.get("LLMLAB_BODY_TIMEOUT", "30"))
#: Bytes read into memory at most; a longer body is left for the app to refuse (413).
MAX_BODY_BYTES = int(os.environ.get("LLMLAB_MAX_BODY_BYTES", str(10 * 1024 * 1024))) + 1
_CHUNK = 64 * 1024


class BufferedBody:
    """WSGI middleware: the request body is read whole before the app runs (408 when slow)."""

    def __init__(self, app: WSGIApp, timeout: float = BODY_TIMEOUT,
                 max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.timeout = timeout
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Read the body into memory, then call the app with it."""
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = environ.get("wsgi.input_terminated", False)
        if not chunked and (not length.isdigit() or int(length) == 0):
            return self.app(environ, start_response)  # no body to wait for
        limit = self.max_bytes if chunked else min(int(length), self.max_bytes)
        try:
            body = self._read(environ, limit)
        except TimeoutError:
            sock = environ.get("gunicorn.socket")
            if sock is not None:
                # gunicorn ignores the app's "Connection: close" and would keep the socket
                # alive; an ended read side makes it close the connection after the 408.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
            return _timed_out(start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        if not chunked and int(length) <= self.max_bytes:
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _read(self, environ: dict[str, Any], limit: int) -> bytes:
        """Up to ``limit`` bytes of the body; TimeoutError past the deadline."""
        stream = environ["wsgi.input"]
        sock = environ.get("gunicorn.socket")
        deadline = time.monotonic() + self.timeout
        parts: list[bytes] = []
        size = 0
        try:
            while size < limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if sock is not None:  # each recv may wait only until the deadline
                    sock.settimeout(left)
                part = stream.read(min(_CHUNK, limit - size))
                if not part:
                    break
                parts.append(part)
                size += len(part)
        finally:
            if sock is not None:
                sock.settimeout(None)
        return b"".join(parts)


def _timed_out(start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps(error_body(408, "request_timeout",
                                 "The request body did not arrive in time.")).encode()
    start_response("408 Request Timeout", [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(body))),
                                           ("Connection", "close")])
    return [body]


def post_worker_init(worker: Any) -> None:
    """Wrap the loaded app in `BufferedBody` (gunicorn calls this in each worker)."""
    worker.wsgi = BufferedBody(worker.wsgi)
