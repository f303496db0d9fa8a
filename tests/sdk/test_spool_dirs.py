"""`llmlab._spool_dirs`: apps sharing one ``$LLMLAB_HOME`` never replay each other's spool.

Before, every app spooled into ``~/.llmlab/spool``: an app replayed another project's events with
its own key, the server rejected them (``project_mismatch``) and the replaying app deleted them.
These tests run two apps of two projects against the real server (SQLite, in a thread).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

import llmlab
from llmlab._spool import Spool
from llmlab._spool_dirs import spool_directory, spool_totals
from llmlab.schema import new_event_id
from llmlab.testing._capture_server import make_event
from llmlab_server import create_app
from llmlab_server.config import TestConfig

FAST = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.05,
        "atexit": False, "handle_sigterm": False, "auto_instrument": False, "budgets": False}


@dataclass
class App:
    """One project of the live server and an ingest+read key of it."""

    url: str
    token: str
    project_id: int
    slug: str
    key: str

    def stored(self) -> set[str]:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            page = http.get("/api/events", headers={"Authorization": f"Bearer {self.token}"},
                            params={"project": self.project_id, "limit": 500}).json()
        return {e["id"] for e in page["data"]["events"]}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, App]]:
    """The real server and two projects of one user, ``alpha`` and ``beta``."""
    config = TestConfig()
    config.DATABASE_URL = f"sqlite:///{tmp_path_factory.mktemp('server') / 'llmlab.db'}"
    config.AUTO_MIGRATE = True
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    made = []
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.post("/api/auth/signup", json={
            "email": f"spool-{secrets.token_hex(4)}@example.com",
            "password": "correct horse battery"}).json()["data"]["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for name in ("alpha", "beta"):
            project = http.post("/api/projects", json={"name": name}, headers=auth).json()["data"]
            key = http.post("/api/keys", headers=auth, json={
                "project_id": project["id"], "name": "app", "scopes": ["ingest", "read"]}
            ).json()["data"]["key"]
            made.append(App(url, token, int(project["id"]), project["slug"], key))
    yield made[0], made[1]
    server.shutdown()
    server.server_close()


def spooled(directory: Path, project: str | None, count: int) -> list[str]:
    """What an earlier process left in ``directory``: one file of ``count`` events; their ids."""
    events = [make_event(new_event_id(), project=project) for _ in range(count)]
    for event in events:
        if project is None:
            event.pop("project", None)
    assert Spool(directory).write([json.dumps(e) for e in events]) == count
    return [e["id"] for e in events]


def run_app(app: App, home: Path, *, project: str | None = "slug") -> None:
    """Start an app (its start-up replay included), flush, stop."""
    llmlab.init(api_key=app.key, base_url=app.url,
                project=app.slug if project == "slug" else project, home=home, **FAST)
    try:
        assert llmlab.flush(10) is True
    finally:
        llmlab.shutdown()


def test_an_app_never_replays_another_projects_spool(apps: tuple[App, App],
                                                      tmp_path: Path) -> None:
    """Beta starts while alpha's events wait in the shared home: beta leaves them alone (it
    used to replay them, get project_mismatch and delete them); alpha then delivers them."""
    alpha, beta = apps
    ids = spooled(spool_directory(tmp_path, alpha.slug, alpha.key), alpha.slug, 40)
    run_app(beta, tmp_path)
    assert Spool(spool_directory(tmp_path, alpha.slug, alpha.key)).pending() == (1, 40)
    assert not set(ids) & beta.stored()
    run_app(alpha, tmp_path)
    assert set(ids) <= alpha.stored()
    assert spool_totals(tmp_path / "spool")[:2] == (0, 0)


def test_without_a_project_the_spool_is_the_keys(apps: tuple[App, App], tmp_path: Path) -> None:
    """Apps that name no project are told apart by their key (a digest, never the key)."""
    alpha, beta = apps
    alpha_dir = spool_directory(tmp_path, None, alpha.key)
    assert alpha.key not in str(alpha_dir)
    ids = spooled(alpha_dir, None, 10)
    run_app(beta, tmp_path, project=None)
    assert Spool(alpha_dir).pending() == (1, 10)
    run_app(alpha, tmp_path, project=None)
    assert set(ids) <= alpha.stored() and not set(ids) & beta.stored()


def test_an_earlier_versions_spool_is_split_by_project(apps: tuple[App, App],
                                                        tmp_path: Path) -> None:
    """Files of an earlier version sit directly in ``spool/``, projects mixed: the first app
    to start delivers its own events and those without a project, and moves the others to
    their project's directory, where that project's app delivers them. Nothing is lost."""
    alpha, beta = apps
    root = tmp_path / "spool"
    mine = spooled(root, alpha.slug, 5)
    theirs = spooled(root, beta.slug, 7)
    anyone = spooled(root, None, 3)
    run_app(alpha, tmp_path)
    assert set(mine + anyone) <= alpha.stored()
    assert not set(theirs) & alpha.stored()
    assert Spool(root).pending() == (0, 0)
    assert Spool(spool_directory(tmp_path, beta.slug, beta.key)).pending() == (1, 7)
    run_app(beta, tmp_path)
    assert set(theirs) <= beta.stored()
    assert spool_totals(root)[:2] == (0, 0)


def test_a_legacy_file_claimed_by_a_process_that_died_is_adopted_still(
        apps: tuple[App, App], tmp_path: Path) -> None:
    """An adopter killed mid-way leaves its claim on a legacy file: the next process takes it
    back (its owner is dead) and delivers it, instead of leaving it in ``spool/`` forever."""
    import os
    import subprocess
    import sys

    from llmlab._spool import CLAIM

    alpha, _ = apps
    root = tmp_path / "spool"
    ids = spooled(root, alpha.slug, 6)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (name,) = [n for n in os.listdir(root) if n.endswith(".jsonl")]
    os.rename(root / name, root / f"{name}{CLAIM}{dead.pid}")
    run_app(alpha, tmp_path)
    assert set(ids) <= alpha.stored()
    assert spool_totals(root)[:2] == (0, 0)
    assert not [n for n in os.listdir(root) if ".jsonl" in n]  # neither the file nor a claim
