"""The shipped gunicorn settings (``llmlab_server.gunicorn_conf``) under slow clients."""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmlab_server import create_app
from llmlab_server.gunicorn_conf import BufferedBody

from .conftest import make_config
from .helpers import Api, make_event

SLOW_CLIENTS = 100


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(port: int) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.monotonic() - started


def _slow_upload(port: int, key: str, body: bytes) -> socket.socket:
    """A connection that sent an ingest request's headers and half its body, then stalls."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"POST /api/events/track HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """gunicorn with the shipped config on a free port and a SQLite file; an ingest key."""
    url = f"sqlite:///{tmp_path / 'slow.db'}"
    secret = secrets.token_urlsafe(48)
    app = create_app(make_config(url, SECRET_KEY=secret, AUTO_MIGRATE=True))
    key = Api(app.test_client()).tenant().key
    app.extensions["llmlab_db"][0].dispose()
    port = _free_port()
    env = {**os.environ, "LLMLAB_DATABASE_URL": url, "LLMLAB_ENV": "production",
           "LLMLAB_SECRET_KEY": secret, "LLMLAB_GUNICORN_BIND": f"127.0.0.1:{port}",
           "LLMLAB_BODY_TIMEOUT": "6"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen([str(gunicorn), "-c", "python:llmlab_server.gunicorn_conf"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _health(port)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield port, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class TestSlowClients:
    """Issue #18, defect 4: slow clients must not take the server offline."""

    def test_health_answers_with_100_slow_uploads_open(self, server: tuple[int, str]) -> None:
        """With 100 authenticated uploads stalled mid-body, /health answers within 2 s, a
        finished upload is stored, and the stalled ones get 408 at the body deadline."""
        port, key = server
        body = json.dumps({"events": [make_event() for _ in range(20)]}).encode()
        slow = [_slow_upload(port, key, body) for _ in range(SLOW_CLIENTS)]
        try:
            time.sleep(0.5)  # every connection is accepted and waiting for its body
            for _ in range(5):
                status, seconds = _health(port)
                assert status == 200 and seconds < 2, (status, seconds)
            slow[0].sendall(body[len(body) // 2:])
            status, result = _answer(slow[0])
            assert status == 207 and result["data"]["accepted"] == 20  # type: ignore[index]
            status, result = _answer(slow[1])  # within the 6 s body deadline
            assert status == 408
            assert result["error"]["code"] == "request_timeout"  # type: ignore[index]
            assert _health(port)[0] == 200
        finally:
            for sock in slow:
                sock.close()


class TestBufferedBody:
    """`BufferedBody`, in process."""

    def test_the_app_gets_the_whole_body(self) -> None:
        """The app reads the body from memory; an empty body passes straight through."""
        seen: list[bytes] = []

        def app(environ: dict[str, object], start_response: object) -> list[bytes]:
            seen.append(environ["wsgi.input"].read())  # type: ignore[attr-defined]
            return [b""]

        wrapped = BufferedBody(app, timeout=1, max_bytes=100)
        wrapped({"CONTENT_LENGTH": "5", "wsgi.input": io.BytesIO(b"hello")}, print)
        wrapped({"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(b"")}, print)
        assert seen == [b"hello", b""]
