"""Request size limits on a real development server: 413 for every body, JSON 414 and 431."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from llmlab_server.limits import JSONErrorHandler

from .helpers import Api, make_event

LIMIT = 4000


@pytest.fixture
def app_config() -> dict[str, Any]:
    """A small body limit."""
    return {"MAX_BODY_BYTES": LIMIT}


@pytest.fixture
def server(app: Flask) -> Iterator[BaseWSGIServer]:
    """The app on the development server, with the handler ``llmlab serve`` uses."""
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=JSONErrorHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _post(server: BaseWSGIServer, key: str, body: bytes, chunked: bool) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    payload: Any = body
    if chunked:
        payload = iter([body[i:i + 1000] for i in range(0, len(body), 1000)])
    conn.request("POST", "/api/events/track", body=payload, headers=headers,
                 encode_chunked=chunked)
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read())
    conn.close()
    return status, data


def _batch(size: int) -> bytes:
    """A valid JSON batch padded with spaces to exactly ``size`` bytes."""
    raw = json.dumps({"events": [make_event()]}).encode()
    return raw + b" " * (size - len(raw))


def _raw(server: BaseWSGIServer, request: bytes) -> tuple[int, str, Any]:
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    content_type = next(line.split(":", 1)[1].strip() for line in lines
                        if line.lower().startswith("content-type:"))
    return int(lines[0].split()[1]), content_type, json.loads(body)


class TestBody:
    """``LLMLAB_MAX_BODY_BYTES`` bounds a body however it is sent."""

    @pytest.mark.parametrize("chunked", [True, False])
    def test_body_at_the_limit_is_read(self, api: Api, server: BaseWSGIServer,
                                       chunked: bool) -> None:
        """A body of exactly the limit is ingested."""
        t = api.tenant()
        status, data = _post(server, t.key, _batch(LIMIT), chunked)
        assert status == 207 and data["data"]["accepted"] == 1

    @pytest.mark.parametrize("chunked", [True, False])
    @pytest.mark.parametrize("extra", [1, 5000])
    def test_body_over_the_limit_is_413(self, api: Api, server: BaseWSGIServer,
                                        chunked: bool, extra: int) -> None:
        """A body one byte or far over the limit is a 413 envelope, chunked or not (a chunked
        one was cut at the limit and read as a shorter body: 207 or 400)."""
        t = api.tenant()
        status, data = _post(server, t.key, _batch(LIMIT + extra), chunked)
        assert status == 413, data
        assert data["success"] is False and data["error"]["code"] == "payload_too_large"

    def test_other_routes_refuse_a_chunked_body_over_the_limit(
            self, api: Api, server: BaseWSGIServer) -> None:
        """A JSON route other than ingest refuses an over-long chunked body with 413 too."""
        t = api.tenant()
        body = json.dumps({"name": "x" * 10, "pad": " " * LIMIT}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request("POST", "/api/projects", body=iter([body]), encode_chunked=True,
                     headers={"Authorization": f"Bearer {t.token}",
                              "Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "payload_too_large"
        conn.close()


class TestServerErrors:
    """The server's own refusals are JSON envelopes, not HTML pages."""

    def test_long_request_line_is_json_414(self, server: BaseWSGIServer) -> None:
        """A URL over 64 KiB is answered 414 in the error envelope."""
        status, content_type, body = _raw(
            server, b"GET /health?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, content_type) == (414, "application/json")
        assert body["success"] is False and body["error"]["code"] == "uri_too_long"

    def test_long_header_line_is_json_431(self, server: BaseWSGIServer) -> None:
        """A header line over 64 KiB is answered 431 in the error envelope."""
        status, content_type, body = _raw(
            server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        assert (status, content_type) == (431, "application/json")
        assert body["error"]["code"] == "request_header_fields_too_large"

    def test_too_many_headers_is_json_431(self, server: BaseWSGIServer) -> None:
        """More than 100 headers are answered 431 in the error envelope."""
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(120))
        status, content_type, body = _raw(
            server, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert (status, content_type) == (431, "application/json")
        assert body["error"]["type"] == "invalid_request_error"

    def test_llmlab_serve_uses_the_json_handler(self, app: Flask,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        """``app.run`` (what ``llmlab serve`` calls) starts the server with the JSON handler."""
        seen: dict[str, Any] = {}
        monkeypatch.setattr("werkzeug.serving.run_simple",
                            lambda *args, **kwargs: seen.update(kwargs))
        app.run(host="127.0.0.1", port=0)
        assert seen["request_handler"] is JSONErrorHandler

    def test_openapi_documents_414_and_431(self, api: Api) -> None:
        """Every operation lists 414 and 431 among its responses."""
        spec = api.call("GET", "/api/openapi.json").get_json()
        for path in spec["paths"].values():
            for op in path.values():
                assert {"414", "431"} <= set(op["responses"])
