"""Request size limits: the body (413), the request line (414) and the headers (431).

* **Body.** ``LLMLAB_MAX_BODY_BYTES`` bounds every body, chunked ones too. Werkzeug stops a
  chunked (``Transfer-Encoding``) stream *at* the framework limit without saying it was cut, so
  the framework limit is set one byte higher and `LimitedRequest` refuses a body longer than
  the configured one: a body over the limit is a 413, never a truncated body read as a
  shorter one (which answered 207 or 400).
* **Request line and headers.** The development server refuses a request line over 64 KiB
  (414) and a header line over 64 KiB or more than 100 headers (431) before the app sees the
  request; `JSONErrorHandler` answers those in the JSON error envelope instead of an HTML
  page. ``llmlab serve`` uses it (`JSONErrorFlask.run`). Behind gunicorn or a proxy, their own
  limits answer first (gunicorn's ``limit_request_line`` and ``limit_request_fields``).
* **Slow bodies.** The development server (`JSONErrorFlask.run`, so ``llmlab serve``) reads
  each body whole before the app runs, like the shipped gunicorn config
  (`llmlab_server.gunicorn_conf.BufferedBody`): authentication opens a database session, so a
  client still sending its body would otherwise hold a pooled connection. Every connection
  gets a thread, and a socket that sends nothing for ``BODY_TIMEOUT`` seconds is answered 408
  (or dropped). It is still a development server: one process, a thread per connection, no
  worker restarts; production runs gunicorn with the shipped config.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Request, current_app
from werkzeug.serving import WSGIRequestHandler

from llmlab_server.errors import PayloadTooLarge, error_body, http_error_code
from llmlab_server.gunicorn_conf import BODY_TIMEOUT, BufferedBody

__all__ = ["JSONErrorFlask", "JSONErrorHandler", "LimitedRequest", "framework_limit"]


def framework_limit(max_body_bytes: int) -> int:
    """Werkzeug's ``MAX_CONTENT_LENGTH`` for a configured limit: one byte past it, so that a
    body over the limit is seen whole enough to be refused."""
    return max_body_bytes + 1


class LimitedRequest(Request):
    """A request whose body may not exceed ``MAX_BODY_BYTES`` (413), however it is sent."""

    def get_data(self, cache: bool = True, as_text: bool = False,
                 parse_form_data: bool = False) -> Any:
        """The body, as bytes or text; 413 when it is longer than ``MAX_BODY_BYTES``."""
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = int(current_app.config["MAX_BODY_BYTES"])
        if len(data) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        return data.decode() if as_text else data


class JSONErrorHandler(WSGIRequestHandler):
    """The development server's request handler, answering its own errors (414, 431, a
    malformed request line) in the JSON error envelope; a socket silent for ``timeout``
    seconds (headers or body) ends the request."""

    timeout = BODY_TIMEOUT

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Send ``code`` as an envelope, then close the connection."""
        text = message or self.responses.get(code, ("Error",))[0]
        body = json.dumps(error_body(code, http_error_code(code), text)).encode()
        self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)


class JSONErrorFlask(Flask):
    """A Flask app whose development server (`run`) uses `JSONErrorHandler`."""

    def run(self, host: str | None = None, port: int | None = None,
            debug: bool | None = None, load_dotenv: bool = True, **options: Any) -> None:
        """`Flask.run`, with ``request_handler`` defaulting to `JSONErrorHandler`, and each
        body read whole before the app runs (`BufferedBody`)."""
        options.setdefault("request_handler", JSONErrorHandler)
        options.setdefault("threaded", True)
        if not isinstance(self.wsgi_app, BufferedBody):
            self.wsgi_app = BufferedBody(  # type: ignore[method-assign]
                self.wsgi_app, max_bytes=framework_limit(int(self.config["MAX_BODY_BYTES"])))
        super().run(host=host, port=port, debug=debug, load_dotenv=load_dotenv, **options)
