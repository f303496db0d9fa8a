"""Fixtures of the CLI tests: a real llmlab server (SQLite, werkzeug in a thread) that
`llmlab.Client` reaches over HTTP, and fresh accounts on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from llmlab_server import create_app
from llmlab_server.config import TestConfig

from .helpers import Account, make_account


@pytest.fixture(autouse=True)
def _no_cli_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own LLMLAB_CLI_API_KEY must not leak into the tests."""
    monkeypatch.delenv("LLMLAB_CLI_API_KEY", raising=False)


@pytest.fixture(scope="session")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server the CLI reaches over HTTP."""
    config = TestConfig()
    config.DATABASE_URL = f"sqlite:///{tmp_path_factory.mktemp('cli-db') / 'cli.db'}"
    config.AUTO_MIGRATE = True
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    app.extensions["llmlab_db"][0].dispose()


@pytest.fixture
def account(live_url: str) -> Account:
    """A fresh account on the live server."""
    return make_account(live_url)
