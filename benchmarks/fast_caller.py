"""Does a caller that never waits lose events? The real per-call path at full speed.

    python benchmarks/fast_caller.py                      # 20,000 calls, every mode, up and down
    python benchmarks/fast_caller.py --quick              # 5,000 calls, down for 10 s
    python benchmarks/fast_caller.py --mode openai --scenario up --calls 50000

A fast local model, a cache or a mock answers without ever releasing the GIL, so the SDK's
background worker must get its share of the interpreter from the calling thread itself. Each
run is a fresh process that calls ``llmlab.init(api_key, base_url)`` against the real llmlab
server (gunicorn on a temporary SQLite database) and then, in a tight loop:

- ``openai``: the real openai client answered in-process by an ``httpx2.MockTransport``
  (no network: the call never waits), instrumented by llmlab as usual (the worker prices it);
- ``record``: ``llmlab.record(...)`` (the event is built on the calling thread);
- ``ready``: the instrumented method's wrapper around a function that returns a ready
  ``ChatCompletion`` (``sdk_overhead.py``'s own-path loop): llmlab's per-call path at its
  fastest, ~4 µs a call, with all the pricing left to the worker.

Scenarios: ``up`` (the server runs throughout) and ``down`` (the server is stopped before the
process starts and started again ``--down`` seconds later; the process waits for its spool
to drain). Reported: events made, stored by the server (counted in its database), left in
the spool, lost (made - stored - spooled: must be 0), ``stats()["dropped"]``, RSS growth over
the loop, the caller's per-call latency (p50/p99/max, wall clock, llmlab's pauses included)
and the CPU the delivery worker got during the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import free_port, request  # the server helpers of the ingest benchmark

CHILD = r"""
import json, os, sys, threading, time
sys.path.insert(0, sys.argv[1])
import llmlab

base_url, api_key, project, home, mode = sys.argv[2:7]
calls, wait_for_drain = int(sys.argv[7]), float(sys.argv[8])

def rss_mb():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

def worker_cpu():
    for thread in threading.enumerate():
        if thread.name == "llmlab-worker" and thread.native_id:
            try:
                with open(f"/proc/self/task/{thread.native_id}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return 0.0
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0

llmlab.init(api_key=api_key, base_url=base_url, project=project, home=home,
            auto_instrument=["openai"], budgets=False)
if mode == "openai":
    import sdk_overhead
    client = sdk_overhead.make_client(1)
    messages = [{"role": "user", "content": "hi"}]
    def call():
        client.chat.completions.create(model="gpt-4o", messages=messages)
elif mode == "ready":
    import sdk_overhead
    from openai.types.chat import ChatCompletion
    from llmlab.integrations import openai as integration
    from llmlab.integrations._common import sync_wrapper
    completion = ChatCompletion.model_validate(sdk_overhead.COMPLETION)
    wrapper = sync_wrapper(integration._spec(
        "chat.completions", stream_state=integration._chat_state,
        prepare_stream=integration._prepare_chat_stream))
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    class Resource:
        _client = None
    resource = Resource()
    def provider_call(**_):
        return completion
    def call():
        wrapper(provider_call, resource, (), kwargs)
else:
    usage = {"prompt_tokens": 1200, "completion_tokens": 300}
    def call():
        llmlab.record("openai", "gpt-4o", usage)

for _ in range(200):  # warm-up: imports, the catalogue, the HTTP connection
    call()
llmlab.flush(5)
rss_before, _ = rss_mb()
cpu_before = worker_cpu()
durations = []
clock = time.perf_counter_ns
started = time.perf_counter()
for _ in range(calls):
    t0 = clock()
    call()
    durations.append(clock() - t0)
loop_s = time.perf_counter() - started
rss_after, rss_peak = rss_mb()
cpu_loop = worker_cpu() - cpu_before
flushed = llmlab.flush(60)
deadline = time.monotonic() + wait_for_drain
while time.monotonic() < deadline:
    stats = llmlab.stats()
    if not (stats["queued"] or stats["in_flight"] or stats["spool_events"]):
        break
    llmlab.flush(5)
stats = llmlab.stats()
llmlab.shutdown()
durations.sort()
pct = lambda p: durations[min(len(durations) - 1, int(len(durations) * p))] / 1000
print(json.dumps({
    "made": calls + 200, "loop_s": loop_s, "p50_us": pct(0.5), "p99_us": pct(0.99),
    "max_us": durations[-1] / 1000, "rss_growth_mb": rss_after - rss_before,
    "rss_peak_mb": rss_peak, "worker_cpu_s": cpu_loop, "flushed": flushed,
    "drained_s": time.perf_counter() - started - loop_s, "stats": stats}))
"""


class Server:
    """``gunicorn "llmlab_server:create_app()"`` on a SQLite file; stoppable and restartable."""

    def __init__(self, directory: str) -> None:
        self.db = f"{directory}/bench.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LLMLAB_DATABASE_URL": f"sqlite:///{self.db}",
                    "LLMLAB_ENV": "production", "LLMLAB_AUTO_MIGRATE": "1",
                    "LLMLAB_SECRET_KEY": "bench-secret-0123456789abcdefghijklmnop",
                    "LLMLAB_RATE_LIMIT_BURST": "100000000",
                    "LLMLAB_RATE_LIMIT_PER_SECOND": "1000000", "LLMLAB_BCRYPT_ROUNDS": "4"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.proc = subprocess.Popen([str(gunicorn), "--workers", "1", "--bind",
                                      f"127.0.0.1:{self.port}", "--log-level", "warning",
                                      "llmlab_server:create_app()"], env=self.env)
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(self.port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
        with socket.socket() as sock:  # nothing listens now: connections are refused
            assert sock.connect_ex(("127.0.0.1", self.port)) != 0

    def api_key(self) -> tuple[str, str]:
        """A user, a project and an ingest key of it: (the project's slug, the key)."""
        _, session = request(self.port, "POST", "/api/auth/signup",
                             {"email": "bench@example.com", "password": "bench password"})
        token = session["data"]["access_token"]
        _, project = request(self.port, "POST", "/api/projects", {"name": "bench"}, token)
        _, key = request(self.port, "POST", "/api/keys",
                         {"project_id": project["data"]["id"], "scopes": ["ingest"]}, token)
        return str(project["data"]["slug"]), str(key["data"]["key"])

    def stored(self) -> tuple[int, int]:
        """(rows, distinct event ids) in ``cost_events``."""
        with sqlite3.connect(self.db) as conn:
            rows, ids = conn.execute("SELECT count(*), count(DISTINCT event_id) "
                                     "FROM cost_events").fetchone()
        return int(rows), int(ids)


def run(mode: str, scenario: str, calls: int, down: float) -> dict[str, Any]:
    """One fresh process making ``calls`` calls; the server's count of what it stored."""
    with tempfile.TemporaryDirectory(prefix="llmlab-fast-") as directory:
        server = Server(directory)
        server.start()
        try:
            project, key = server.api_key()
            home = f"{directory}/home"
            if scenario == "down":
                server.stop()
            here = str(Path(__file__).resolve().parent)
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, here, server.url, key, project, home, mode, str(calls),
                 str(down + 120)], stdout=subprocess.PIPE, text=True)
            if scenario == "down":
                time.sleep(down)
                server.start()
            out, _ = child.communicate(timeout=down + 600)
            if child.returncode:
                raise SystemExit(f"{mode}/{scenario}: the child failed")
            result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            result["stored"], result["stored_ids"] = server.stored()
        finally:
            server.stop()
    stats = result["stats"]
    result.update(mode=mode, scenario=scenario,
                  lost=result["made"] - result["stored_ids"] - stats["spool_events"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, help="calls per run (default 20,000)")
    parser.add_argument("--mode", choices=["openai", "record", "ready", "all"], default="all")
    parser.add_argument("--scenario", choices=["up", "down", "both"], default="both")
    parser.add_argument("--down", type=float, help="seconds the server is down (default 60)")
    parser.add_argument("--quick", action="store_true", help="5,000 calls, down for 10 s")
    parser.add_argument("--json", action="store_true", help="print raw JSON results")
    args = parser.parse_args()
    calls = args.calls or (5_000 if args.quick else 20_000)
    down = args.down if args.down is not None else (10.0 if args.quick else 60.0)
    modes = ["openai", "record", "ready"] if args.mode == "all" else [args.mode]
    scenarios = ["up", "down"] if args.scenario == "both" else [args.scenario]
    print(f"{'mode':<7}{'server':<7}{'made':>7}{'stored':>8}{'spool':>7}{'lost':>6}"
          f"{'dropped':>8}{'p50 µs':>8}{'p99 µs':>8}{'max ms':>8}{'RSS Δ MB':>9}"
          f"{'loop s':>7}{'worker CPU s':>13}", flush=True)
    for mode in modes:
        for scenario in scenarios:
            r = run(mode, scenario, calls, down)
            if args.json:
                print(json.dumps(r))
            s = r["stats"]
            print(f"{mode:<7}{scenario:<7}{r['made']:>7}{r['stored_ids']:>8}"
                  f"{s['spool_events']:>7}{r['lost']:>6}{s['dropped']:>8}{r['p50_us']:>8.1f}"
                  f"{r['p99_us']:>8.1f}{r['max_us'] / 1000:>8.1f}{r['rss_growth_mb']:>9.1f}"
                  f"{r['loop_s']:>7.1f}{r['worker_cpu_s']:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
