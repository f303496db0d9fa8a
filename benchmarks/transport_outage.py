"""What an outage of the llmlab server costs the host application.

For each scenario (server up, down, black-holed) a fresh Python process submits events through
the real `Worker` + `HTTPTransport` to a local `CaptureServer` (running in this process), and
reports ``submit()`` latency (p50/p99/max), process RSS and what the worker did with the events.
A last run measures how many events per second the worker ships to a healthy server.

    python benchmarks/transport_outage.py            # full: 50,000 events per scenario
    python benchmarks/transport_outage.py --quick    # 10,000 events, seconds

Goals: p99(down) / p99(up) <= 1.05, and RSS bounded by the queue cap whatever the server does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from typing import Any

from llmlab.testing._capture_server import CaptureServer

CHILD = r"""
import gc, json, os, sys, time
from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing._capture_server import make_events
from llmlab.transport import HTTPTransport

url, spool_dir, scenario = sys.argv[1:4]
count, rate = int(sys.argv[4]), float(sys.argv[5])

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

# The throughput run measures shipping speed, so its queue holds every event at once.
queue_size = count + 1000 if scenario == "throughput" else 10_000
worker = Worker(HTTPTransport(url, "bench", timeout=10.0), spool=Spool(spool_dir),
                queue_size=queue_size, atexit=False, handle_sigterm=False)
events = make_events(count, scenario)
warm = make_events(200, "warm-" + scenario)  # builds the HTTP client and connection first
for e in warm:
    worker.submit(e)
worker.flush(2)
gc.collect()
rss_before = rss_mb()
durations = []
chunk = 100
pause = chunk / rate if rate > 0 else 0.0
started = time.perf_counter()
next_chunk = started
peak_queued = 0
for i in range(0, count, chunk):
    for event in events[i:i + chunk]:
        t0 = time.perf_counter_ns()
        worker.submit(event)
        durations.append(time.perf_counter_ns() - t0)
    peak_queued = max(peak_queued, worker.stats()["queued"])
    if pause:
        next_chunk += pause
        delay = next_chunk - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
submit_phase = time.perf_counter() - started
rss_after = rss_mb()
flushed = worker.flush(30 if scenario in ("up", "throughput") else 1)
shipped_at = time.perf_counter() - started
worker.shutdown(1)
durations.sort()
pct = lambda p: durations[min(len(durations) - 1, int(len(durations) * p))] / 1000
print(json.dumps({
    "scenario": scenario, "events": count, "p50_us": pct(0.50), "p99_us": pct(0.99),
    "max_us": durations[-1] / 1000, "submit_s": submit_phase, "until_flushed_s": shipped_at,
    "flushed": flushed, "rss_before_mb": rss_before, "rss_after_mb": rss_after,
    "rss_peak_mb": rss_mb(), "peak_queued": peak_queued, "stats": worker.stats()}))
"""


def run(server: CaptureServer, scenario: str, count: int, rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as spool_dir:
        proc = subprocess.run([sys.executable, "-c", CHILD, server.url, spool_dir, scenario,
                               str(count), str(rate)], capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit(f"{scenario} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 events per scenario")
    parser.add_argument("--events", type=int, help="events per scenario")
    parser.add_argument("--rate", type=float, default=5000.0,
                        help="submit rate in events/s for the latency runs (default 5000)")
    parser.add_argument("--json", action="store_true", help="print raw JSON results")
    args = parser.parse_args()
    count = args.events or (10_000 if args.quick else 50_000)

    results = []
    with CaptureServer() as server:
        for scenario in ("up", "down", "blackhole"):
            server.set_mode("blackhole" if scenario == "blackhole" else "ok")
            if scenario == "down":
                server.down()
            results.append(run(server, scenario, count, args.rate))
            server.up()
            server.set_mode("ok")
            time.sleep(0.1)
        results.append(run(server, "throughput", count, 0.0))

    if args.json:
        print(json.dumps(results, indent=2))
    print(f"{'scenario':<11}{'p50 µs':>9}{'p99 µs':>9}{'max µs':>10}{'RSS Δ MB':>10}"
          f"{'peak q':>8}{'sent':>8}{'spooled':>9}{'dropped':>9}")
    for r in results:
        s = r["stats"]
        print(f"{r['scenario']:<11}{r['p50_us']:>9.2f}{r['p99_us']:>9.2f}{r['max_us']:>10.0f}"
              f"{r['rss_after_mb'] - r['rss_before_mb']:>10.1f}{r['peak_queued']:>8}"
              f"{s['sent']:>8}{s['spooled']:>9}{s['dropped']:>9}")
    up, down, hole, through = results
    print(f"\np99 down/up = {down['p99_us'] / up['p99_us']:.2f}   "
          f"p99 black-hole/up = {hole['p99_us'] / up['p99_us']:.2f}   (goal <= 1.05)")
    print(f"throughput: {through['events'] / through['until_flushed_s']:,.0f} events/s shipped "
          f"({through['events']} events, flushed={through['flushed']})")
    print("(counts include 200 warm-up events per run; with the server down or black-holed "
          "they are spooled too)")


if __name__ == "__main__":
    main()
