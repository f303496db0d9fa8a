"""Per-call overhead of the SDK budget guard, with 0, 1,000 and 50,000 recent calls.

    python benchmarks/budget_guard.py [--rounds 1500] [--block 20] [--e2e-rounds 300]

Three measurements. Each alternates its variants block by block (``--block`` calls each, the
order rotating every round), so machine noise and drift hit every variant alike, and
compares medians of the calling thread's CPU time per call ("added" is the median of the
differences to the baseline's block of the same round):

* **guard**: the guard's own work in a call, on the real tracker: `Tracker.check_budget` as
  `_begin` calls it (with the call's worst-case estimate already made), then
  `Tracker.record_usage` (pricing on the calling thread, the guard's record, the queue).
  Variants: no guard (then `_begin` skips the check), and a guard with one ``block`` budget
  and 0, 1,000 or 50,000 recent calls.
* **budget path**: the same with the worst-case estimate made per call, as `_begin` makes
  it (prompt size, the request's output cap, priced from the catalogue): everything a call
  pays for a budget on top of a call priced on the calling thread.
* **end to end**: the real openai client against an in-process ``httpx2.MockTransport``
  (as benchmarks/sdk_overhead.py), bare (the SDK's original ``create``) and instrumented
  with no budget and with one block budget at 0, 1,000 and 50,000 recent calls. A call under
  a budget is priced on the calling thread (the next check needs its spend), so this also
  includes the pricing the no-budget path hands to the worker.

``--only none|0|1000|50000 --calls N`` runs just N guard-path calls of one variant (no
delivery thread, garbage collection off) and exits, to count instructions, which the
machine's load does not change: the difference between N = 1100 and N = 100 of

    valgrind --tool=cachegrind --cache-sim=no python benchmarks/budget_guard.py --only 0 --calls N

divided by 1,000 is one call's instructions (set ``PYTHONHASHSEED=0`` for repeatable counts).

Recent calls are recorded in the guard and never acknowledged (the worst case: the server
is unreachable and the events wait); the measured calls' own events go through the real
worker to a transport that acknowledges each one, as the server does, so the guard also
takes acknowledgements while it is measured. The guard is installed on the real tracker with
its status given in-process (no server, no network).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import llmlab
from llmlab._budgets import BudgetGuard
from llmlab._tracker import get_tracker
from llmlab.integrations._common import _once, _worst_case
from llmlab.schema import new_event_id

# After llmlab: sdk_overhead puts this checkout's sdk/ first on sys.path, and the llmlab
# imported (the installed one, or another on PYTHONPATH for a before/after) must win.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import sdk_overhead  # the in-process openai client and a counting transport

PROJECT = "bench"
#: One block budget the measured calls never reach.
STATUS = {"id": "b_1", "name": "bench cap", "action": "block", "scope": {"project": PROJECT},
          "amount": "1000000", "spent": "0", "thresholds": [50, 80, 100],
          "period": "monthly", "period_start": "2026-11-01T00:00:00Z",
          "resets_at": "2026-12-01T00:00:00Z"}
RECENT = (0, 1_000, 50_000)
USAGE = sdk_overhead.COMPLETION["usage"]
KWARGS: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def make_guard(recent: int) -> BudgetGuard:
    """A guard with one block budget and ``recent`` unacknowledged calls."""
    guard = BudgetGuard(lambda: [STATUS], refresh_interval=3600)
    assert guard.refresh()
    # The guard before issue #20 took no event id (it kept every call for 30-45 s instead).
    with_id = "event_id" in inspect.signature(guard.record).parameters
    call: dict[str, Any] = {"project": PROJECT, "job": None, "user": None, "tags": {},
                            "model": "gpt-4o"}
    amount = Decimal("0.00475")
    for _ in range(recent):
        if with_id:
            guard.record(call, amount, new_event_id())
        else:
            guard.record(call, amount)
    return guard


def alternate(variants: dict[str, tuple[Any, Callable[[], None]]], rounds: int,
              block: int) -> dict[str, list[float]]:
    """Per-call CPU seconds of each variant's blocks; a variant is (guard to install, call)."""
    tracker = get_tracker()
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    clock = time.thread_time
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            guard, call = variants[name]
            tracker.budget_guard = guard
            start = clock()
            for _ in range(block):
                call()
            times[name].append((clock() - start) / block)
    return times


def report(title: str, times: dict[str, list[float]], base: str) -> None:
    """Median per call, and the median of paired differences to ``base``, in microseconds."""
    print(title)
    for name, values in times.items():
        added = ""
        if name != base:
            diffs = [v - b for v, b in zip(values, times[base], strict=True)]
            added = f"   added vs {base}: {statistics.median(diffs) * 1e6:6.2f} us"
        print(f"  {name:<28} {statistics.median(values) * 1e6:8.2f} us{added}")


def guard_path(guards: dict[int, BudgetGuard], rounds: int, block: int, *,
               estimate: bool) -> None:
    tracker: Any = get_tracker()
    worst = _worst_case(tracker, "openai", "gpt-4o", KWARGS)

    def call() -> None:
        guard = tracker.budget_guard
        if guard is not None and guard.has_budgets():  # as _begin decides
            tracker.check_budget("openai", "gpt-4o", _once(
                (lambda: _worst_case(tracker, "openai", "gpt-4o", KWARGS)) if estimate
                else (lambda: worst)))
        tracker.record_usage(provider="openai", model="gpt-4o", usage=USAGE, latency_ms=1.0)

    variants: dict[str, tuple[Any, Callable[[], None]]] = {"no guard": (None, call)}
    for recent, guard in guards.items():
        variants[f"block budget, {recent:,} recent"] = (guard, call)
    alternate(variants, max(10, rounds // 10), block)  # warm up
    title = ("budget path (estimate + check_budget + record_usage)" if estimate
             else "guard (check_budget + record_usage, estimate given)")
    report(f"{title}, per call:", alternate(variants, rounds, block), "no guard")


def only(variant: str, calls: int) -> None:
    """``calls`` guard-path calls of one variant, for an instruction count."""
    tracker: Any = get_tracker()
    guard = None if variant == "none" else make_guard(int(variant))
    worst = _worst_case(tracker, "openai", "gpt-4o", KWARGS)

    def call() -> None:
        if guard is not None and guard.has_budgets():
            tracker.check_budget("openai", "gpt-4o", _once(lambda: worst))
        tracker.record_usage(provider="openai", model="gpt-4o", usage=USAGE, latency_ms=1.0)

    tracker.budget_guard = guard
    for _ in range(200):
        call()
    llmlab.shutdown()
    tracker.worker = None  # no delivery thread in the count
    gc.collect()
    gc.disable()
    for _ in range(calls):
        call()


def end_to_end(guards: dict[int, BudgetGuard], rounds: int, block: int) -> None:
    client = sdk_overhead.make_client(1)
    resource = client.chat.completions
    original = type(resource).__dict__["create"].__wrapped__  # the SDK's own method

    def bare() -> None:
        original(resource, **KWARGS)

    def instrumented() -> None:
        client.chat.completions.create(**KWARGS)

    variants: dict[str, tuple[Any, Callable[[], None]]] = {
        "bare": (None, bare), "instrumented, no budget": (None, instrumented)}
    for recent, guard in guards.items():
        variants[f"instrumented, {recent:,} recent"] = (guard, instrumented)
    alternate(variants, max(5, rounds // 10), block)
    report("end to end (openai client, in-process HTTP), per call:",
           alternate(variants, rounds, block), "bare")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--e2e-rounds", type=int, default=300)
    parser.add_argument("--e2e-block", type=int, default=4)
    parser.add_argument("--only", choices=["none", *map(str, RECENT)])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="llmlab-bench-")
    # Room for every measured event: the loop outruns the worker at times.
    llmlab.init(transport=sdk_overhead.CountingTransport(), auto_instrument=["openai"],
                ledger=False, home=home, project=PROJECT, queue_size=500_000, budgets=False)
    if args.only is not None:
        only(args.only, args.calls)
        return 0
    try:
        guards = {recent: make_guard(recent) for recent in RECENT}
        guard_path(guards, args.rounds, args.block, estimate=False)
        guard_path(guards, args.rounds, args.block, estimate=True)
        end_to_end(guards, args.e2e_rounds, args.e2e_block)
    finally:
        get_tracker().budget_guard = None
        llmlab.shutdown()
        llmlab.uninstrument()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
