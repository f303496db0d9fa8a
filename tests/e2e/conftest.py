"""End-to-end fixtures: a real llmlab server over HTTP, and a tenant on it."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from llmlab_server import create_app
from llmlab_server.config import TestConfig


class LiveServer:
    """A real server (werkzeug, threaded) on a free loopback port; stoppable and restartable."""

    def __init__(self, database_url: str) -> None:
        config = TestConfig()
        config.DATABASE_URL = database_url
        config.AUTO_MIGRATE = True
        self.app = create_app(config)
        self._server: Any = None
        self.port = 0

    def start(self) -> LiveServer:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Tenant:
    """A user with a project and an ingest+read API key on a live server."""

    token: str
    project_id: int
    project_slug: str
    key: str


def make_tenant(url: str) -> Tenant:
    """Sign up a user, create a project and an ingest+read key through the HTTP API."""
    with httpx.Client(base_url=url, timeout=10) as http:
        session = http.post("/api/auth/signup", json={
            "email": f"e2e-{secrets.token_hex(4)}@example.com",
            "password": "correct horse battery"}).json()["data"]
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        project = http.post("/api/projects", json={"name": "E2E app"}, headers=auth).json()["data"]
        key = http.post("/api/keys", headers=auth, json={
            "project_id": project["id"], "name": "e2e", "scopes": ["ingest", "read"]}
        ).json()["data"]["key"]
    return Tenant(session["access_token"], int(project["id"]), project["slug"], key)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A running server on a fresh SQLite database."""
    server = LiveServer(f"sqlite:///{tmp_path / 'llmlab.db'}").start()
    yield server
    server.stop()


@pytest.fixture
def tenant(live_server: LiveServer) -> Tenant:
    """A tenant on ``live_server``."""
    return make_tenant(live_server.url)
