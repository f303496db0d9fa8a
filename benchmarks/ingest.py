"""Ingest throughput and ack latency of the server under gunicorn.

Starts ``gunicorn "llmlab_server:create_app()"`` (2 sync workers by default) on a fresh
database, creates a user, project and ingest key over HTTP, then POSTs batches of events from
several client threads with keep-alive connections and reports events/s and the p50/p99 time
from sending a batch to receiving its 207.

    python benchmarks/ingest.py --backend sqlite
    python benchmarks/ingest.py --backend postgres --batches 200
    python benchmarks/ingest.py --quick          # both backends, small run

Event times follow live SDK traffic by default: every batch holds consecutive milliseconds
and later batches hold later times, so each index of ``cost_events`` grows at its end.
``--timestamps spread`` gives the worst case instead: every batch spans the same 500 seconds
(newest first), so each batch inserts all over the time indexes (as replaying many old
spools at once would).

PostgreSQL appends each batch's job/user/tag sums as deltas that the workers merge about once
a second (`services/rollup_compaction.py`); the run's database CPU includes those merges, and
``deltas_left``/``final_merge_ms`` say what was left at the end and what merging it took.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from llmlab.schema import new_event_id  # ids as the SDK makes them (time-ordered UUIDs)

DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
          ("google", "gemini-2.5-flash")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(port: int, method: str, path: str, body: Any = None, token: str | None = None
            ) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data


def _iso(at: float) -> str:
    seconds, millis = divmod(round(at * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def make_batch(size: int, start: float, spread: bool = False) -> bytes:
    """``size`` events from ``start`` on, one per millisecond; with ``spread``, from ``start``
    back, one per second."""
    events = []
    for i in range(size):
        provider, model = MODELS[i % len(MODELS)]
        ts = _iso(start - i if spread else start + i / 1000)
        events.append({"id": new_event_id(), "timestamp": ts, "provider": provider,
                       "model": model, "usage": {"input_tokens": 1200, "output_tokens": 300,
                                                 "cache_read_tokens": 1000},
                       "latency_ms": 812.4, "job_id": f"job-{i % 50}",
                       "user_id": f"user-{i % 200}", "tags": {"feature": "bench"}})
    return json.dumps({"events": events}).encode()


def prepare_database(backend: str, pg_url: str) -> tuple[str, Any]:
    """A fresh database URL and a cleanup callable."""
    if backend == "sqlite":
        tmp = tempfile.mkdtemp(prefix="llmlab-bench-")
        return f"sqlite:///{tmp}/bench.db", lambda: None
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"llmlab_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux); None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (0 for a gone process)."""
    ticks = sum(int(f[11]) + int(f[12]) for f in map(_stat, pids) if f is not None)
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(parent: int) -> list[int]:
    """The pids whose parent is ``parent``."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and (fields := _stat(entry.name)) is not None
            and fields[1] == str(parent)]


def _database_backends(url: str) -> list[int]:
    """The PostgreSQL server processes serving ``url``'s database (not this query's)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalars())
    finally:
        engine.dispose()


def _final_merge(url: str) -> tuple[int, float] | None:
    """How many rollup deltas are left unmerged, and the ms one merge of them takes (None:
    a server without deltas)."""
    from sqlalchemy.orm import Session

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not conn.execute(sa.text(
                    "SELECT to_regclass('cost_rollups_group_deltas')")).scalar():
                return None
            left = conn.execute(sa.text("SELECT count(*) FROM cost_rollups_group_deltas")
                                ).scalar()
        from llmlab_server.services.rollup_compaction import compact

        started = time.perf_counter()
        with Session(engine) as session:
            compact(session)
        return int(left or 0), round((time.perf_counter() - started) * 1000, 1)
    except ImportError:
        return None
    finally:
        engine.dispose()


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    from llmlab_server import db

    url, cleanup = prepare_database(backend, args.postgres_url)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {**os.environ, "LLMLAB_DATABASE_URL": url, "LLMLAB_ENV": "production",
           "LLMLAB_SECRET_KEY": "bench-secret-0123456789abcdefghijklmnop",
           "LLMLAB_RATE_LIMIT_BURST": "100000000", "LLMLAB_RATE_LIMIT_PER_SECOND": "1000000",
           "LLMLAB_BCRYPT_ROUNDS": "4", "LLMLAB_AUTO_MIGRATE": "0"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen([str(gunicorn), "--workers", str(args.workers), "--bind",
                             f"127.0.0.1:{port}", "--log-level", "warning",
                             "llmlab_server:create_app()"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
        _, session = request(port, "POST", "/api/auth/signup",
                             {"email": "bench@example.com", "password": "bench password"})
        token = session["data"]["access_token"]
        _, project = request(port, "POST", "/api/projects", {"name": "bench"}, token)
        _, key = request(port, "POST", "/api/keys", {"project_id": project["data"]["id"]},
                         token)
        api_key = key["data"]["key"]
        now = time.time()
        if args.timestamps == "spread":
            bodies = [make_batch(args.batch_size, now, spread=True) for _ in range(args.batches)]
        else:  # live: consecutive milliseconds, the last batch ending now
            first = now - args.batches * args.batch_size / 1000
            bodies = [make_batch(args.batch_size, first + k * args.batch_size / 1000)
                      for k in range(args.batches)]
        latencies: list[float] = []
        lock = threading.Lock()
        errors: list[str] = []

        def client(chunk: list[bytes]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
            for body in chunk:
                started = time.perf_counter()
                conn.request("POST", "/api/events/track", body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if resp.status != 207 or json.loads(payload)["data"]["accepted"] != \
                            args.batch_size:
                        errors.append(payload[:200].decode())
            conn.close()

        # Warm up each worker (imports, catalogue load) outside the measurement.
        for body in [make_batch(10, now) for _ in range(args.workers * 2)]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/api/events/track", body=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
            conn.getresponse().read()
            conn.close()
        threads = [threading.Thread(target=client, args=(bodies[i::args.clients],))
                   for i in range(args.clients)]
        # CPU time of the server's processes during the run: the machine's two cores are
        # shared, so this is steadier than events/s when the machine's speed drifts.
        workers = _children(proc.pid)
        backends = _database_backends(url) if backend == "postgres" else []
        cpu_before = _cpu_seconds(workers), {pid: _cpu_seconds([pid]) for pid in backends}
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        if backend == "postgres":  # a worker may have connected during the run
            backends = _database_backends(url)
        cpu = (_cpu_seconds(workers) - cpu_before[0],
               sum(_cpu_seconds([pid]) - cpu_before[1].get(pid, 0.0) for pid in backends))
        merge = _final_merge(url) if backend == "postgres" else None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        cleanup()
    latencies.sort()
    total = args.batches * args.batch_size
    return {"backend": backend, "timestamps": args.timestamps, "events": total,
            "seconds": round(wall, 2),
            "events_per_s": round(total / wall), "p50_ms": round(statistics.median(latencies)
                                                                * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                            * 1000, 1),
            "worker_cpu_us_per_event": round(cpu[0] / total * 1e6, 1),
            "database_cpu_us_per_event": round(cpu[1] / total * 1e6, 1) if backends else None,
            # PostgreSQL: the job/user/tag deltas the workers had not merged at the end (at
            # most about a second of ingest), and the time one merge of them took.
            "deltas_left": merge[0] if merge else None,
            "final_merge_ms": merge[1] if merge else None,
            "errors": len(errors),
            "first_error": errors[0] if errors else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "LLMLAB_BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--timestamps", choices=["live", "spread"], default="live",
                        help="event times as live traffic sends them (default), or every "
                             "batch over the same 500 s (the worst case for the indexes)")
    parser.add_argument("--quick", action="store_true", help="20 batches per backend")
    args = parser.parse_args()
    if args.quick:
        args.batches = 20
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        print(json.dumps(run(backend, args)), flush=True)


if __name__ == "__main__":
    main()
