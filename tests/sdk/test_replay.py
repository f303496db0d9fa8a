"""`llmlab._replay`: what earlier processes left in the spool is delivered by the next one,
however short it lives: `flush()` waits for the start-up replay, `shutdown()` leaves nothing
claimed and nothing lost.

A CLI, a cron job or a serverless function runs ``llmlab.init(); ...; llmlab.flush()`` and
exits; the first test runs exactly that, in a real subprocess against the real server.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from llmlab._spool import CLAIM, Spool
from llmlab._spool_dirs import spool_directory
from llmlab._worker import Worker
from llmlab.schema import new_event_id
from llmlab.testing._capture_server import CaptureServer, make_event
from llmlab.transport import HTTPTransport
from llmlab_server import create_app
from llmlab_server.config import TestConfig

KEY = "llm_test_key"
FAST: dict[str, Any] = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.05,
                        "atexit": False, "handle_sigterm": False}


@dataclass
class LiveServer:
    """The real llmlab server on a loopback port, with a project and an ingest key."""

    url: str
    database: Path
    project: str
    key: str

    def stored(self) -> int:
        """Events in the database (each id once: the server deduplicates)."""
        with sqlite3.connect(self.database) as conn:
            return int(conn.execute("SELECT count(DISTINCT event_id) FROM cost_events")
                       .fetchone()[0])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real server (SQLite) in a thread, and a project with an ingest key."""
    config = TestConfig()
    database = tmp_path_factory.mktemp("server") / "llmlab.db"
    config.DATABASE_URL = f"sqlite:///{database}"
    config.AUTO_MIGRATE = True
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with httpx.Client(base_url=url, timeout=10) as http:
        session = http.post("/api/auth/signup", json={
            "email": f"replay-{secrets.token_hex(4)}@example.com",
            "password": "correct horse battery"}).json()["data"]
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        project = http.post("/api/projects", json={"name": "cron"}, headers=auth).json()["data"]
        key = http.post("/api/keys", headers=auth, json={
            "project_id": project["id"], "name": "job", "scopes": ["ingest"]}).json()["data"]
    yield LiveServer(url, database, project["slug"], key["key"])
    server.shutdown()
    server.server_close()


def spool_files(spool: Path, files: int, per_file: int, project: str = "tests") -> set[str]:
    """What an earlier process left: ``files`` spool files of ``per_file`` events; their ids."""
    ids: set[str] = set()
    for _ in range(files):
        events = [make_event(new_event_id(), project=project) for _ in range(per_file)]
        Spool(spool).write([json.dumps(e) for e in events])
        ids |= {e["id"] for e in events}
    return ids


def spool_names(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir() if ".jsonl" in p.name)


SHORT_LIVED = textwrap.dedent("""
    import sys
    import llmlab
    url, key, project, home = sys.argv[1:5]
    llmlab.init(key, url, project, home=home, auto_instrument=False, budgets=False,
                max_retries=0)
    print(llmlab.flush(timeout=30), llmlab.stats()["spool_events"])
""")


def run_short_lived(url: str, key: str, project: str, home: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SHORT_LIVED, url, key, project, str(home)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_short_lived_process_delivers_what_earlier_ones_spooled(live: LiveServer,
                                                                   tmp_path: Path) -> None:
    """``init(); flush(30)`` then exit delivers all 500 events 5 spool files held, and only
    then says True (it used to say True after 100, leaving 400 on disk)."""
    before = live.stored()
    own = spool_directory(tmp_path, live.project, live.key)
    ids = spool_files(own, files=5, per_file=100, project=live.project)
    assert run_short_lived(live.url, live.key, live.project, tmp_path) == ["True", "0"]
    assert spool_names(own) == []
    assert live.stored() - before == len(ids)


def test_flush_is_false_while_the_spool_cannot_be_delivered(tmp_path: Path) -> None:
    """With the server down the short-lived process's flush says False, and every spooled
    event stays on disk for the next process."""
    with CaptureServer() as server:
        server.down()
        own = spool_directory(tmp_path, "tests", KEY)
        ids = spool_files(own, files=5, per_file=100)
        assert run_short_lived(server.url, KEY, "tests", tmp_path) == ["False", "500"]
    assert len(spool_names(own)) == 5
    assert Spool(own).pending() == (5, len(ids))


def test_a_flush_during_an_outage_probes_and_replays_the_spool(tmp_path: Path) -> None:
    """A flush after the start-up replay failed makes it try again at once (not at the next
    probe, a minute away) and waits for it: True once the server is back."""
    with CaptureServer(api_key=KEY) as server:
        server.down()
        ids = spool_files(tmp_path, files=3, per_file=50)
        worker = Worker(HTTPTransport(server.url, KEY), spool=Spool(tmp_path),
                        **{**FAST, "max_retries": 0, "backoff_max": 60.0})
        try:
            assert worker.flush(2) is False  # down: the start-up replay fails
            server.up()
            assert worker.flush(10) is True
            assert server.ids == ids and spool_names(tmp_path) == []
        finally:
            worker.shutdown(timeout=1)


def test_shutdown_lets_the_start_up_replay_finish_within_its_deadline(tmp_path: Path) -> None:
    """A worker shut down right after it started replays the spool within the shutdown's
    deadline instead of stopping after the first file."""
    with CaptureServer(api_key=KEY) as server:
        ids = spool_files(tmp_path, files=5, per_file=100)
        worker = Worker(HTTPTransport(server.url, KEY), spool=Spool(tmp_path), **FAST)
        worker.shutdown(timeout=10)
        assert server.ids == ids and spool_names(tmp_path) == []


def test_shutdown_gives_back_a_file_whose_replay_hangs(tmp_path: Path) -> None:
    """A replay stuck in a request that never ends is cut short by shutdown() with its file
    given back to the spool whole (not left claimed by a live process for 5 minutes): the
    next worker, in the same process, delivers every event exactly once."""
    with CaptureServer(api_key=KEY) as server:
        server.set_mode("blackhole")
        ids = spool_files(tmp_path, files=2, per_file=100)
        worker = Worker(HTTPTransport(server.url, KEY, timeout=30), spool=Spool(tmp_path),
                        **FAST)
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.requests, "the replay should be stuck in a request"
        worker.shutdown(timeout=0.5)
        names = spool_names(tmp_path)
        assert len(names) == 2 and not any(CLAIM in name for name in names)
        server.set_mode("ok")
        again = Worker(HTTPTransport(server.url, KEY), spool=Spool(tmp_path), **FAST)
        try:
            assert again.flush(10) is True
        finally:
            again.shutdown(timeout=1)
        assert server.ids == ids and set(server.arrivals.values()) == {1}
