"""Helpers of the CLI tests: an account on the live server, seeded events, and ``llmlab ARGS``
run in-process with click's `CliRunner` or as a subprocess with some modules made missing."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from click.testing import CliRunner, Result

from llmlab.cli._app import cli
from llmlab.client import Client


@dataclass
class Account:
    """A user with a project on the live server, and the CLI's view of it."""

    url: str
    email: str
    password: str
    project: str
    project_id: int
    admin_key: str
    ingest_key: str


def make_account(url: str) -> Account:
    """Sign up a fresh user with a project, an admin (CLI) key and an ingest (app) key."""
    email, password = f"u{secrets.token_hex(4)}@example.com", "correct horse battery"
    with Client(None, url) as anonymous:
        token = anonymous.signup(email, password)["access_token"]
    with Client(token, url) as user:
        slug = f"p-{secrets.token_hex(3)}"
        project = user.create_project("CLI test", slug)
        admin = user.create_key(project["id"], name="cli", scopes=["admin"])["key"]
        ingest = user.create_key(project["id"], name="app", scopes=["ingest"])["key"]
    return Account(url, email, password, slug, int(project["id"]), admin, ingest)


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(account: Account, count: int = 3, **fields: Any) -> list[dict[str, Any]]:
    """POST ``count`` events (an hour ago) with the account's ingest key."""
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    events = []
    for i in range(count):
        event = {"id": str(uuid.uuid4()), "timestamp": when, "provider": "openai",
                 "model": "gpt-4o", "usage": {"input_tokens": 1000, "output_tokens": 100},
                 "latency_ms": 100.0, "status": "ok", "job_id": f"job-{i % 2}",
                 "user_id": "cust-1", "tags": {"feature": "chat"}}
        event.update(fields)
        events.append(event)
    response = httpx.post(f"{account.url}/api/events/track", json={"events": events},
                          headers={"Authorization": f"Bearer {account.ingest_key}"})
    assert response.status_code == 207 and response.json()["data"]["accepted"] == count
    return events


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Invoke ``llmlab ARGS`` in-process."""
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def configured(account: Account) -> dict[str, str]:
    """Environment that points the CLI at ``account`` (the CLI's own key variable)."""
    return {"LLMLAB_BASE_URL": account.url, "LLMLAB_CLI_API_KEY": account.admin_key,
            "LLMLAB_PROJECT": account.project}


def no_traceback(result: Result) -> None:
    """An error exit: non-zero, a message, no Python traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def run_without(missing: tuple[str, ...], *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    """Run the ``llmlab`` entry point in a fresh interpreter where the packages ``missing``
    cannot be imported (a first import finder refuses them, as if they were not installed),
    and print which of flask, sqlalchemy, llmlab_server it imported on stderr's last line."""
    code = f"""
import sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {missing!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
from llmlab.cli import main
sys.argv = ["llmlab", *{list(args)!r}]
try:
    status = main()
except SystemExit as exc:
    status = exc.code
loaded = [m for m in ("flask", "sqlalchemy", "llmlab_server") if m in sys.modules]
print("imported:", ",".join(loaded), file=sys.stderr)
raise SystemExit(status)
"""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLAB_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-I", "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=60)
