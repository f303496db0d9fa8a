"""`llmlab._results`: what the app is told when the real llmlab server refuses its events.

Events rejected, or batches refused, for a reason only the app's configuration can end (a
``project=`` that is not the key's project, a revoked key, a key without the ``ingest`` scope)
are logged once per reason with the fix, counted per reason in `stats()`, and make `flush()`
return False; refused batches stay in the spool for a fixed key.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from werkzeug.serving import make_server

import llmlab
from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing import FakeProvider
from llmlab.testing._capture_server import make_event
from llmlab.transport import HTTPTransport, InMemoryTransport
from llmlab_server import create_app
from llmlab_server.config import TestConfig

#: Tiny delays so the delivery paths run in milliseconds; no signal or exit hooks in tests.
FAST: dict[str, Any] = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.05,
                        "max_retries": 1, "atexit": False, "handle_sigterm": False}


@dataclass
class Tenant:
    """A user of the live server, with a project and an API key of that project."""

    url: str
    token: str
    project_id: int
    slug: str
    key: str

    def new_key(self, scopes: list[str]) -> tuple[int, str]:
        """Create another key of the project: (its id, the key)."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            made = http.post("/api/keys", headers=self.auth, json={
                "project_id": self.project_id, "name": "another", "scopes": scopes}).json()
        return int(made["data"]["id"]), str(made["data"]["key"])

    def revoke(self, key_id: int) -> None:
        """Revoke a key of the project."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            http.delete(f"/api/keys/{key_id}", headers=self.auth).raise_for_status()

    def stored(self) -> int:
        """How many events the server stored for the project."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            page = http.get("/api/events", headers=self.auth,
                            params={"project": self.project_id, "limit": 500}).json()
        return len(page["data"]["events"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real llmlab server (SQLite) on a free loopback port, for this module."""
    config = TestConfig()
    config.DATABASE_URL = f"sqlite:///{tmp_path_factory.mktemp('server') / 'llmlab.db'}"
    config.AUTO_MIGRATE = True
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tenant(server_url: str) -> Tenant:
    """A fresh user with a project and an ingest+read key, made through the HTTP API."""
    with httpx.Client(base_url=server_url, timeout=10) as http:
        session = http.post("/api/auth/signup", json={
            "email": f"results-{secrets.token_hex(4)}@example.com",
            "password": "correct horse battery"}).json()["data"]
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        project = http.post("/api/projects", json={"name": "me"}, headers=auth).json()["data"]
        key = http.post("/api/keys", headers=auth, json={
            "project_id": project["id"], "name": "app", "scopes": ["ingest", "read"]}
        ).json()["data"]["key"]
    return Tenant(server_url, session["access_token"], int(project["id"]), project["slug"], key)


@pytest.fixture
def initialised() -> Iterator[None]:
    """Shut llmlab down and remove its patches after the test."""
    yield
    llmlab.shutdown()
    llmlab.uninstrument()


def llmlab_messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The llmlab log messages (WARNING and above) that contain ``text``."""
    return [r.getMessage() for r in caplog.records
            if r.name == "llmlab" and r.levelno >= logging.WARNING and text in r.getMessage()]


def record() -> None:
    llmlab.record("openai", "gpt-4o", {"prompt_tokens": 100, "completion_tokens": 10})


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.usefixtures("initialised")
class TestProjectMismatch:
    def test_a_project_that_is_not_the_keys_fails_flush_and_warns_once_with_the_fix(
            self, tenant: Tenant, fake: FakeProvider, tmp_path: Path,
            caplog: pytest.LogCaptureFixture) -> None:
        """init(project="support-bot") with the key of another project: a provider call and a
        record are rejected, flush() returns False, stats() counts both under their reason,
        and one WARNING (for two batches) names project_mismatch and the fix."""
        llmlab.init(api_key=tenant.key, base_url=tenant.url, project="support-bot",
                    auto_instrument=["openai"], budgets=False, home=tmp_path, **FAST)
        client = openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            client.chat.completions.create(model="gpt-4o",
                                           messages=[{"role": "user", "content": "hi"}])
            assert llmlab.flush(5) is False
            record()
            assert llmlab.flush(5) is False
        stats = llmlab.stats()
        assert (stats["rejected"], stats["rejected_project_mismatch"], stats["sent"]) == (2, 2, 0)
        [warning] = llmlab_messages(caplog, "project_mismatch")
        assert "project 'support-bot' does not match the API key's project " \
               f"'{tenant.slug}'" in warning
        assert f"init(project='{tenant.slug}')" in warning
        assert "llmlab init --project support-bot" in warning
        assert tenant.stored() == 0

    def test_flush_is_true_again_once_nothing_new_went_wrong(
            self, tenant: Tenant, tmp_path: Path) -> None:
        """A rejection is reported by the next flush only: a later flush with nothing new
        rejected returns True, and events of the key's own project are delivered."""
        llmlab.init(api_key=tenant.key, base_url=tenant.url, project="support-bot",
                    auto_instrument=False, budgets=False, home=tmp_path, **FAST)
        record()
        assert llmlab.flush(5) is False
        assert llmlab.flush(5) is True
        llmlab.record("openai", "gpt-4o", {"prompt_tokens": 1}, project=tenant.slug)
        assert llmlab.flush(5) is True
        assert tenant.stored() == 1

    def test_invalid_events_are_counted_without_failing_flush(
            self, tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
        """An event the server finds invalid is counted as rejected_invalid_event and logged,
        but flush() stays True: no change of the app's configuration would help."""
        worker = Worker(HTTPTransport(tenant.url, tenant.key), **FAST)
        try:
            bad = make_event(project=tenant.slug, usage={"input_tokens": -5})
            with caplog.at_level(logging.WARNING, logger="llmlab"):
                worker.submit(bad)
                worker.submit(make_event(project=tenant.slug))
                assert worker.flush(5) is True
            stats = worker.stats()
            assert (stats["rejected_invalid_event"], stats["sent"]) == (1, 1)
            assert len(llmlab_messages(caplog, bad["id"])) == 1
        finally:
            worker.shutdown(1)


@pytest.mark.usefixtures("initialised")
class TestRefusedKey:
    def test_a_revoked_key_keeps_the_events_and_a_valid_key_delivers_them(
            self, tenant: Tenant, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """With a revoked key every batch gets 401: the events are spooled (not dropped),
        counted as refused_invalid_api_key, flush() returns False, the fix is logged once;
        a process started with a valid key of the project then delivers them all (the spool
        is the project's: `llmlab._spool_dirs`)."""
        key_id, revoked = tenant.new_key(["ingest"])
        tenant.revoke(key_id)
        llmlab.init(api_key=revoked, base_url=tenant.url, project=tenant.slug,
                    auto_instrument=False, budgets=False, home=tmp_path, **FAST)
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            for _ in range(3):
                record()
            assert llmlab.flush(5) is False
            for _ in range(2):
                record()
            assert llmlab.flush(5) is False
            stats = llmlab.stats()
            llmlab.shutdown()
        assert (stats["refused"], stats["refused_invalid_api_key"]) == (5, 5)
        assert (stats["spooled"], stats["dropped"], stats["rejected"]) == (5, 0, 0)
        [message] = llmlab_messages(caplog, "invalid_api_key")
        assert "the API key was rejected (revoked or wrong): set LLMLAB_API_KEY to a valid " \
               "ingest key" in message
        assert Spool(tmp_path / "spool" / f"project-{tenant.slug}").pending()[1] == 5
        llmlab.init(api_key=tenant.key, base_url=tenant.url, project=tenant.slug,
                    auto_instrument=False, budgets=False, home=tmp_path, **FAST)
        assert wait_for(lambda: Spool(tmp_path / "spool" / f"project-{tenant.slug}").pending()
                        == (0, 0))
        assert tenant.stored() == 5

    def test_a_key_without_the_ingest_scope_is_named_as_such(
            self, tenant: Tenant, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A read-only key gets 403 insufficient_scope: logged once with "lacks the ingest
        scope", counted as refused_insufficient_scope, and flush() returns False."""
        _, read_only = tenant.new_key(["read"])
        llmlab.init(api_key=read_only, base_url=tenant.url, auto_instrument=False,
                    budgets=False, home=tmp_path, **FAST)
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            record()
            assert llmlab.flush(5) is False
            record()
            assert llmlab.flush(5) is False
        assert llmlab.stats()["refused_insufficient_scope"] == 2
        [message] = llmlab_messages(caplog, "insufficient_scope")
        assert "the API key lacks the ingest scope" in message


class TestFlushRule:
    def test_a_drop_fails_the_next_flush_only(self) -> None:
        """An event dropped (here: submitted after shutdown) makes the next flush() return
        False, and only that one: the flush after it is True again."""
        worker = Worker(InMemoryTransport(), atexit=False, handle_sigterm=False)
        assert worker.shutdown(1) is True
        assert worker.submit(make_event()) is False
        assert worker.flush(1) is False
        assert worker.flush(1) is True

