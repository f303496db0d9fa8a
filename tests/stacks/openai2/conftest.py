"""The llmlab server the openai2 environment's end-to-end tests export to: real, on a
migrated PostgreSQL schema of its own, served over HTTP on a free loopback port."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server

from llmlab_server import create_app, db
from llmlab_server.config import TestConfig

POSTGRES = os.environ.get("LLMLAB_TEST_POSTGRES_URL",
                          "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    """The llmlab server on a fresh PostgreSQL schema of its own."""
    admin = db.make_engine(POSTGRES)
    schema = f"llmlab_stacks_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options=-csearch_path%3D{schema}"
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        config = TestConfig()
        config.DATABASE_URL = url
        application = create_app(config)
        yield application
        application.extensions["llmlab_db"][0].dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def data(client: FlaskClient, method: str, path: str, token: str | None = None,
         body: Any = None) -> Any:
    """A successful answer's ``data``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code < 300, response.get_json()
    return response.get_json()["data"]


@pytest.fixture(scope="module")
def tenant(app: Flask) -> dict[str, Any]:
    """A verified user with a project and an ingest+read key."""
    client = app.test_client()
    email = f"u{secrets.token_hex(4)}@example.com"
    token = data(client, "POST", "/api/auth/signup",
                 body={"email": email, "password": "correct horse battery"})["access_token"]
    mail = app.extensions["llmlab_mailer"].outbox[-1]
    verify = next(line.removeprefix("token: ") for line in mail.body.splitlines()
                  if line.startswith("token: "))
    data(client, "POST", "/api/auth/verify-email", body={"token": verify})
    project = data(client, "POST", "/api/projects", token, {"name": "OpenLIT app"})
    key = data(client, "POST", "/api/keys", token, {"project_id": project["id"], "name": "otel",
                                                     "scopes": ["ingest", "read"]})["key"]
    return {"token": token, "project": project["id"], "key": key, "client": client}


@pytest.fixture(scope="module")
def live_url(app: Flask) -> Iterator[str]:
    """``app`` over HTTP (exporters and curl speak real HTTP)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def stored(tenant: dict[str, Any]) -> Callable[[datetime, datetime], list[dict[str, Any]]]:
    """Reads the events stored in ``tenant``'s project between two times."""
    def read(start: datetime, end: datetime) -> list[dict[str, Any]]:
        window = f"start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}"
        page = data(tenant["client"], "GET", f"/api/events?project={tenant['project']}&{window}",
                    tenant["token"])
        return list(page["events"])

    return read
