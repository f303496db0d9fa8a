"""The application factory, and the app served by gunicorn as in production."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llmlab_server import create_app, db
from llmlab_server.config import ConfigError

from .conftest import make_config, wipe
from .helpers import make_event


class TestCreateApp:
    """create_app(config)."""

    def test_accepts_a_config_object_or_a_mapping(self, database_url: str) -> None:
        """A Config instance and a mapping of overrides both configure the app."""
        app = create_app(make_config(database_url, MAX_BATCH=7))
        assert app.config["MAX_BATCH"] == 7 and app.config["TESTING"]
        mapped = create_app({"ENV": "testing", "SECRET_KEY": "x" * 40,
                             "DATABASE_URL": database_url, "MAX_BATCH": 9})
        assert mapped.config["MAX_BATCH"] == 9

    def test_production_without_secret_refuses_to_start(self, monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
        """In production a missing LLMLAB_SECRET_KEY stops the app with a clear message."""
        monkeypatch.delenv("LLMLAB_SECRET_KEY", raising=False)
        monkeypatch.setenv("LLMLAB_ENV", "production")
        with pytest.raises(ConfigError, match="LLMLAB_SECRET_KEY is not set"):
            create_app()

    def test_development_generates_and_keeps_a_secret(self, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
        """In development a secret is generated once under LLMLAB_HOME and reused."""
        monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
        monkeypatch.setenv("LLMLAB_ENV", "development")
        monkeypatch.delenv("LLMLAB_SECRET_KEY", raising=False)
        monkeypatch.delenv("LLMLAB_DATABASE_URL", raising=False)
        first = create_app()
        second = create_app()
        assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
        assert (tmp_path / "server-secret").stat().st_mode & 0o777 == 0o600
        assert first.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'llmlab.db'}"

    def test_sqlite_is_migrated_on_start(self, tmp_path: Path) -> None:
        """A new SQLite database is migrated to the newest revision when the app starts."""
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        app = create_app({"ENV": "testing", "SECRET_KEY": "x" * 40, "DATABASE_URL": url,
                          "AUTO_MIGRATE": None})
        engine = app.extensions["llmlab_db"][0]
        assert db.current_revision(engine) == db.head_revision()
        assert app.test_client().get("/health").status_code == 200


class TestGcFreeze:
    """A production app freezes its start-up objects out of garbage collection, once, and
    collects its youngest generation less often."""

    def _gc_state(self, tmp_path: Path, **env: str) -> tuple[int, int]:
        """The freeze count and first-generation threshold after create_app()."""
        code = ("import gc; from llmlab_server import create_app; create_app(); "
                "first = gc.get_freeze_count(); create_app(); "
                "assert gc.get_freeze_count() <= first; "  # once per process
                "print(first, gc.get_threshold()[0])")
        environ = {**os.environ, "LLMLAB_ENV": "production",
                   "LLMLAB_SECRET_KEY": secrets.token_urlsafe(48), "LLMLAB_HOME": str(tmp_path),
                   "LLMLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'gc.db'}", **env}
        for name in ("LLMLAB_GC_FREEZE", "LLMLAB_GC_THRESHOLD"):
            if name not in env:
                environ.pop(name, None)
        done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                              text=True, timeout=120, check=True)
        frozen, threshold = done.stdout.split()
        return int(frozen), int(threshold)

    def test_production_freezes_and_the_flag_turns_it_off(self, tmp_path: Path) -> None:
        """On by default in production (the catalogue and app are frozen: tens of thousands
        of objects), off with LLMLAB_GC_FREEZE=0."""
        assert self._gc_state(tmp_path)[0] > 20_000
        assert self._gc_state(tmp_path, LLMLAB_GC_FREEZE="0")[0] == 0

    def test_production_collects_less_often(self, tmp_path: Path) -> None:
        """Production raises the youngest generation's threshold to 10,000 (LLMLAB_GC_THRESHOLD
        sets another; 0 keeps Python's 700)."""
        assert self._gc_state(tmp_path)[1] == 10_000
        assert self._gc_state(tmp_path, LLMLAB_GC_THRESHOLD="2500")[1] == 2500
        assert self._gc_state(tmp_path, LLMLAB_GC_THRESHOLD="0")[1] == 700

    def test_default_by_environment(self, database_url: str) -> None:
        """Unset, it follows the environment: off in testing and development."""
        assert create_app(make_config(database_url)).config["GC_FREEZE"] is False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class TestGunicorn:
    """Production serving: ``gunicorn "llmlab_server:create_app()"``."""

    def test_gunicorn_serves_and_ingests(self, database_url: str) -> None:
        """gunicorn with 2 workers starts on a free port; signup, key and ingest work."""
        port = _free_port()
        env = {**os.environ, "LLMLAB_DATABASE_URL": database_url, "LLMLAB_ENV": "production",
               "LLMLAB_SECRET_KEY": "gunicorn-test-secret-0123456789abcdef",
               "LLMLAB_BCRYPT_ROUNDS": "4"}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        proc = subprocess.Popen(
            [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}",
             "llmlab_server:create_app()"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if _request(f"{base}/health")[0] == 200:
                        break
                except OSError:
                    pass
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "gunicorn did not become healthy"
                time.sleep(0.2)
            status, session = _request(f"{base}/api/auth/signup", {
                "email": "g@example.com", "password": "gunicorn password"})
            assert status == 201, session
            token = session["data"]["access_token"]
            _, project = _request(f"{base}/api/projects", {"name": "g"}, token)
            _, key = _request(f"{base}/api/keys", {"project_id": project["data"]["id"]}, token)
            events = [make_event() for _ in range(50)]
            for _ in range(2):  # both workers get a chance to answer
                status, result = _request(f"{base}/api/events/track", {"events": events},
                                          key["data"]["key"])
                assert status == 207, result
            assert result["data"]["duplicates"] == 50
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            engine = db.make_engine(database_url)
            wipe(engine)
            engine.dispose()
