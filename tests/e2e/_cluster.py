"""Several real server processes (gunicorn with the shipped config) on one PostgreSQL schema
and one Redis, a webhook receiver, and SDK processes that send to them."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from llmlab_server import db

POSTGRES_URL = os.environ.get("LLMLAB_TEST_POSTGRES_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
#: A Redis database of its own (rate-limit keys are per API key, new in each test anyway).
REDIS_URL = os.environ.get("LLMLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
GUNICORN = Path(sys.executable).parent / "gunicorn"

#: An app of the SDK's user: ``calls`` OpenAI calls through the real SDK, then a flush; prints
#: the SDK's delivery counters. ``calls`` 0 only replays what earlier processes spooled.
SDK_APP = textwrap.dedent("""
    import json, sys, time
    import openai, llmlab
    key, url, provider, home, calls, pause = sys.argv[1:7]
    llmlab.init(key, url, home=home, budgets=False, pricing_sync=False, ledger=False,
                flush_interval=0.05, batch_size=5, backoff_initial=0.1, backoff_max=0.5,
                max_retries=10, replay_interval=0.5)
    client = openai.OpenAI(api_key="sk-test", base_url=provider, max_retries=0)
    for _ in range(int(calls)):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        time.sleep(float(pause))
    flushed = llmlab.flush(30)
    stats = llmlab.stats()
    llmlab.shutdown(10)
    print(json.dumps({"flushed": flushed, "stats": stats}))
""")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Schema:
    """A fresh, migrated PostgreSQL schema, dropped by `drop`."""

    def __init__(self) -> None:
        self.name = f"llmlab_multi_{os.getpid()}_{secrets.token_hex(4)}"
        self.admin = db.make_engine(POSTGRES_URL)
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        sep = "&" if "?" in POSTGRES_URL else "?"
        self.url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{self.name}"
        engine = db.make_engine(self.url)
        db.upgrade(engine)
        engine.dispose()

    def scalar(self, sql: str) -> Any:
        """One value of ``sql`` run in the schema."""
        engine = db.make_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


class Instance:
    """One server: a gunicorn master and its worker(s), in a process group of their own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "LLMLAB_GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Instance:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(GUNICORN), "-c", "python:llmlab_server.gunicorn_conf"], env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL the master and every worker at once (a crash; nothing runs at exit)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def terminate(self, timeout: float = 30) -> float:
        """A graceful stop (SIGTERM to the master); the seconds it took."""
        if self.proc is None:
            return 0.0
        started = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
        return time.monotonic() - started


def cluster_env(schema: Schema, home: Path, **settings: str) -> dict[str, str]:
    """The environment of every instance: one database, one Redis, one secret."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LLMLAB_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"LLMLAB_DATABASE_URL": schema.url, "LLMLAB_ENV": "production",
                "LLMLAB_SECRET_KEY": "multi-instance-" + "k" * 48, "LLMLAB_REDIS_URL": REDIS_URL,
                "LLMLAB_HOME": str(home), "LLMLAB_GUNICORN_WORKERS": "1",
                "LLMLAB_GUNICORN_THREADS": "16", "LLMLAB_WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8",
                "LLMLAB_WEBHOOK_POLL_INTERVAL": "0.5"})
    env.update({f"LLMLAB_{k}": v for k, v in settings.items()})
    return env


def run_sdk(key: str, url: str, provider: str, home: Path, calls: int, pause: float = 0.0
            ) -> subprocess.Popen[str]:
    """Start an SDK app process (`SDK_APP`) with its own spool in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLAB_")}
    env["LLMLAB_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-c", SDK_APP, key, url, provider, str(home), str(calls), str(pause)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_sdk(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    """The SDK app's result line (it must exit 0)."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
