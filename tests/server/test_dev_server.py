"""The development server (``llmlab serve``, `JSONErrorFlask.run`) under slow uploads: bodies
are read before the app runs, so stalled clients hold threads, not database connections
(issue #18, defect 4: 16 slow uploads emptied its 15-connection pool)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from llmlab.cli._app import cli
from llmlab_server import create_app
from llmlab_server.limits import JSONErrorHandler

from .conftest import make_config, wipe
from .helpers import Api, make_event

#: Database connections the app may hold at once: far fewer than the stalled uploads.
POOL = 2
SLOW = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _slow_upload(port: int, key: str) -> socket.socket:
    """An authenticated ingest whose headers and half its body were sent; then it stalls."""
    body = json.dumps({"events": [make_event()]}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"POST /api/events/track HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
    return sock


def _read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (headers and body may
    come in separate packets)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _get(port: int, path: str, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def served(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`app.run` (what ``llmlab serve`` calls) on a free port, with a pool of 2 connections
    that waits at most 3 s, and a 2 s socket timeout; yields (port, app, tenant key)."""
    monkeypatch.setattr(JSONErrorHandler, "timeout", 2)
    app: Flask = create_app(make_config(database_url, ENGINE_OPTIONS={
        "pool_size": POOL, "max_overflow": 0, "pool_timeout": 3}))
    key = Api(app.test_client()).tenant().key
    port = _free_port()
    threading.Thread(target=app.run, kwargs={"host": "127.0.0.1", "port": port},
                     daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, app, key
    wipe(app.extensions["llmlab_db"][0])
    app.extensions["llmlab_db"][0].dispose()


class TestSlowUploads:
    """Stalled uploads do not hold the database pool."""

    def test_authenticated_requests_answer_with_more_slow_uploads_than_connections(
            self, served: Any) -> None:
        """With 8 authenticated uploads stalled mid-body and a pool of 2, an authenticated
        read still answers at once; the stalled ones get 408 when their socket times out."""
        port, _, key = served
        stalled = [_slow_upload(port, key) for _ in range(SLOW)]
        try:
            time.sleep(0.3)  # every upload is in (and, without buffering, authenticated)
            started = time.monotonic()
            assert _get(port, "/api/auth/me", key) == 200
            assert time.monotonic() - started < 2.5  # not a wait for the pool (3 s)
            answers = []
            for sock in stalled:
                sock.settimeout(10)
                answers.append(_read_to_close(sock))
            assert all(a.startswith(b"HTTP/1.1 408") or a.startswith(b"HTTP/1.0 408")
                       for a in answers), answers[:1]
            assert b"request_timeout" in answers[0]
        finally:
            for sock in stalled:
                sock.close()

    def test_a_slow_steady_upload_is_not_cut(self, served: Any) -> None:
        """The timeout is for silence, not for the whole upload: a body trickling in over
        longer than the timeout (2 s here), never silent for as long, is stored."""
        port, _, key = served
        body = json.dumps({"events": [make_event()]}).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            sock.sendall((f"POST /api/events/track HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
            started = time.monotonic()
            step = len(body) // 6 + 1
            for offset in range(0, len(body), step):
                time.sleep(0.6)
                sock.sendall(body[offset:offset + step])
            assert time.monotonic() - started > 3  # longer than the 2 s timeout
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 207"), answer[:200]
        assert b'"accepted":1' in answer.replace(b" ", b"")

    def test_a_whole_body_is_ingested(self, served: Any) -> None:
        """Buffering hands the app the whole body: an ordinary ingest is stored."""
        port, _, key = served
        body = json.dumps({"events": [make_event(), make_event()]})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/api/events/track", body=body, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 207
            assert json.loads(response.read())["data"]["accepted"] == 2
        finally:
            conn.close()


class TestServeCommand:
    """``llmlab serve`` beyond loopback: a warning, and never the debugger."""

    @pytest.fixture
    def runs(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> list[dict[str, Any]]:
        """Flask's own ``run`` replaced by a record of its arguments (no socket is opened)."""
        calls: list[dict[str, Any]] = []
        monkeypatch.setattr(Flask, "run", lambda self, **kwargs: calls.append(kwargs))
        monkeypatch.setenv("LLMLAB_ENV", "development")
        monkeypatch.setenv("LLMLAB_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
        return calls

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
    def test_a_host_beyond_loopback_is_warned_about(self, runs: list[dict[str, Any]],
                                                    host: str) -> None:
        """The warning names the development server and the production command."""
        result = CliRunner().invoke(cli, ["serve", "--host", host])
        assert result.exit_code == 0, result.output
        said = " ".join(result.stderr.split())  # the console folds long lines
        assert "warning: `llmlab serve` is the development server" in said
        assert "gunicorn -c python:llmlab_server.gunicorn_conf" in said
        assert runs[0]["host"] == host

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
    def test_loopback_is_quiet(self, runs: list[dict[str, Any]], host: str) -> None:
        """A loopback host gets no warning."""
        result = CliRunner().invoke(cli, ["serve", "--host", host])
        assert result.exit_code == 0, result.output
        assert "warning" not in result.stderr and len(runs) == 1

    def test_the_debugger_is_refused_beyond_loopback(self, runs: list[dict[str, Any]]) -> None:
        """--debug (the Werkzeug debugger runs code sent to it) only on loopback."""
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--debug"])
        assert result.exit_code == 1
        assert "only on a loopback host" in " ".join(result.stderr.split())
        assert runs == []
        assert CliRunner().invoke(cli, ["serve", "--debug"]).exit_code == 0
        assert runs[0]["debug"] is True
