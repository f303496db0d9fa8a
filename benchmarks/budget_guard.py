"""Per-call overhead of the SDK budget guard, with 0, 1,000 and 50,000 recent calls.

    python benchmarks/budget_guard.py [--rounds 1500] [--block 20] [--e2e-rounds 300]

Three measurements. Each alternates its variants block by block (``--block`` calls each, the
order rotating every round), so machine noise and drift hit every variant alike, and
compares medians of the calling thread's CPU time per call ("added" is the median of the
differences to the baseline's block of the same round):

* **guard**: the guard's work on the calling thread, on the real tracker:
  `Tracker.check_budget` as `_begin` calls it (with the call's worst-case estimate already
  made), which checks the block budgets and reserves the worst case. The reservation is
  settled (`BudgetGuard.record_attributed` with its token, what the worker does when it
  prices the event) after each block, untimed. Variants: no guard (nothing to do), and a
  guard with one ``block`` budget and 0, 1,000 or 50,000 recent calls.
* **budget path**: `BudgetGuard.reserve_request`, what the wrappers call for a plain call:
  everything such a call pays on the calling thread for a budget. The budget here is far
  from its limit, so the call takes a slot (its model's ceiling, reserved already) without
  an estimate; the block's settlements give the slots back. ``--only`` with
  ``--estimate`` counts this path too.
* **end to end**: the real openai client against an in-process ``httpx2.MockTransport``
  (as benchmarks/sdk_overhead.py), bare (the SDK's original ``create``) and instrumented
  with no budget and with one block budget at 0, 1,000 and 50,000 recent calls. A budgeted
  call takes the same fast path as an unbudgeted one (priced on the worker, which settles
  its reservation), plus the check.

``--processes N`` runs the end-to-end measure in N fresh processes and reports the median
of their results: where a process's objects land in memory moves its numbers by several
microseconds, so one process is one sample. ``--in-place`` times `reserve_request` inside
real calls of the end-to-end loop instead (``time.thread_time_ns`` around it, minus the same
timer around a function doing nothing), the budget work alone with the caches as the HTTP
client leaves them.

``--only none|0|1000|50000 --calls N`` runs just N guard-path calls of one variant (reserve,
then settle at once; no delivery thread, garbage collection off) and exits, to count
instructions, which the machine's load does not change: the difference between N = 1100 and
N = 100 of

    valgrind --tool=cachegrind --cache-sim=no python benchmarks/budget_guard.py --only 0 --calls N

divided by 1,000 is one call's instructions (set ``PYTHONHASHSEED=0`` for repeatable counts);
``--estimate`` counts the budget path (`reserve_request`) instead of the guard.

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
import json
import statistics
import subprocess
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


Variant = tuple[Any, Callable[[], None], Callable[[], None] | None]


def alternate(variants: dict[str, Variant], rounds: int, block: int) -> dict[str, list[float]]:
    """Per-call CPU seconds of each variant's blocks; a variant is (guard to install, call,
    what to do after each block, untimed)."""
    tracker = get_tracker()
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    clock = time.thread_time
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            guard, call, after = variants[name]
            tracker.budget_guard = guard
            start = clock()
            for _ in range(block):
                call()
            times[name].append((clock() - start) / block)
            if after is not None:
                after()
    return times


def report(title: str, times: dict[str, list[float]], base: str,
           also: str | None = None) -> dict[str, float]:
    """Print the median per call, and the medians of paired differences to ``base`` (and to
    ``also``, for the variants after it), in microseconds; returns the differences to
    ``also`` (the last one printed for each variant)."""
    print(title)
    names = list(times)
    over: dict[str, float] = {}
    for name, values in times.items():
        added = ""
        for other in (base, also):
            if other is None or name == other or names.index(name) < names.index(other):
                continue
            diffs = [v - b for v, b in zip(values, times[other], strict=True)]
            over[name] = statistics.median(diffs) * 1e6
            added += f"   vs {other}: {over[name]:+6.2f} us"
        print(f"  {name:<28} {statistics.median(values) * 1e6:8.2f} us{added}")
    return over


KEY = (PROJECT, None, None, "gpt-4o", ())
ACTUAL = Decimal("0.00475")


def reserving(tracker: Any, *, estimate: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    """A call's budget work on the calling thread, and the settlement of what it reserved
    (as the worker does it): with ``estimate``, `BudgetGuard.reserve_request` as the
    wrappers call it for a plain call (far from the limit: a slot of its model's ceiling,
    no estimate; nearer: the estimate); else `Tracker.check_budget` with the worst case given,
    as `_begin` calls it for a call in a scope."""
    worst = _worst_case(tracker, "openai", "gpt-4o", KWARGS)
    tokens: list[Any] = []

    def provider_of(_: Any) -> str:
        return "openai"

    def call() -> None:
        guard = tracker.budget_guard
        if guard is None or not guard.blocking:  # as the wrapper decides
            return
        if estimate:
            tokens.append(guard.reserve_request(PROJECT, "gpt-4o", KWARGS, tracker.catalogue,
                                                provider_of, None))
        else:
            tokens.append(tracker.check_budget("openai", "gpt-4o", _once(lambda: worst)))

    def settle() -> None:
        guard = tracker.budget_guard
        for token in tokens:
            guard.record_attributed(KEY, ACTUAL, new_event_id(), token)
        tokens.clear()

    return call, settle


def guard_path(guards: dict[int, BudgetGuard], rounds: int, block: int, *,
               estimate: bool) -> None:
    tracker: Any = get_tracker()
    call, settle = reserving(tracker, estimate=estimate)
    variants: dict[str, Variant] = {"no guard": (None, call, None)}
    for recent, guard in guards.items():
        variants[f"block budget, {recent:,} recent"] = (guard, call, settle)
    alternate(variants, max(10, rounds // 10), block)  # warm up
    title = ("budget path (reserve_request, as the wrappers call it)" if estimate
             else "guard (check_budget: check and reserve, estimate given)")
    report(f"{title}, per call:", alternate(variants, rounds, block), "no guard")


def only(variant: str, calls: int, estimate: bool) -> None:
    """``calls`` guard-path calls of one variant, each settled at once, for an instruction
    count."""
    tracker: Any = get_tracker()
    tracker.budget_guard = None if variant == "none" else make_guard(int(variant))
    call, settle = reserving(tracker, estimate=estimate)

    def both() -> None:
        call()
        settle()

    for _ in range(200):
        both()
    llmlab.shutdown()
    tracker.worker = None  # no delivery thread in the count
    gc.collect()
    gc.disable()
    for _ in range(calls):
        both()


def end_to_end(guards: dict[int, BudgetGuard], rounds: int, block: int,
               wait: float = 0.0) -> dict[str, float]:
    client = sdk_overhead.make_client(1, wait)
    resource = client.chat.completions
    original = type(resource).__dict__["create"].__wrapped__  # the SDK's own method

    def bare() -> None:
        original(resource, **KWARGS)

    def instrumented() -> None:
        client.chat.completions.create(**KWARGS)

    variants: dict[str, Variant] = {
        "bare": (None, bare, None), "instrumented, no budget": (None, instrumented, None)}
    for recent, guard in guards.items():
        variants[f"instrumented, {recent:,} recent"] = (guard, instrumented, None)
    alternate(variants, max(5, rounds // 10), block)
    waited = f", {wait * 1e6:.0f} us network wait" if wait else ""
    return report(f"end to end (openai client, in-process HTTP{waited}), per call:",
                  alternate(variants, rounds, block), "bare", "instrumented, no budget")


def in_place(guard: BudgetGuard, calls: int, repeats: int, wait: float = 0.0) -> None:
    """`reserve_request` timed inside real calls (one block budget, 0 recent calls)."""
    client = sdk_overhead.make_client(1, wait)
    clock = time.thread_time_ns
    spent = [0]
    real = BudgetGuard.reserve_request

    def nothing(self: BudgetGuard, *args: Any) -> None:
        return None

    def timing(inner: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: BudgetGuard, *args: Any) -> Any:
            start = clock()
            token = inner(self, *args)
            spent[0] += clock() - start
            return token
        return timed

    get_tracker().budget_guard = guard
    per_repeat: dict[str, list[float]] = {"reserve_request": [], "timer alone": []}
    try:
        for _ in range(repeats):
            for name, inner in (("reserve_request", real), ("timer alone", nothing)):
                BudgetGuard.reserve_request = timing(inner)  # type: ignore[method-assign]
                spent[0] = 0
                for _ in range(calls):
                    client.chat.completions.create(**KWARGS)
                per_repeat[name].append(spent[0] / calls / 1e3)
    finally:
        BudgetGuard.reserve_request = real  # type: ignore[method-assign]
    check, timer = (statistics.median(per_repeat[name]) for name in per_repeat)
    print(f"in place ({calls:,} calls x {repeats}, median): reserve_request {check:.2f} us, "
          f"the timer alone {timer:.2f} us: the check {check - timer:.2f} us")


def processes(count: int, rounds: int, block: int, wait_us: float) -> None:
    """The end-to-end measure in ``count`` fresh processes: each one's budgeted variants over
    no budget, and their medians."""
    results: list[dict[str, float]] = []
    for _ in range(count):
        out = subprocess.run(
            [sys.executable, __file__, "--end-to-end-only", "--e2e-rounds", str(rounds),
             "--e2e-block", str(block), "--network-wait-us", str(wait_us), "--json"],
            check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    names = list(results[0])
    print(f"end to end, {count} processes (us): no budget over bare; budgets over no budget")
    print(" " * 10 + "".join(f"{name.removeprefix('instrumented, '):>16}" for name in names))
    for i, result in enumerate(results, 1):
        print(f"{'run ' + str(i):>10}" + "".join(f"{result[name]:+16.2f}" for name in names))
    print(f"{'median':>10}" + "".join(
        f"{statistics.median(result[name] for result in results):+16.2f}" for name in names))

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--e2e-rounds", type=int, default=300)
    parser.add_argument("--e2e-block", type=int, default=4)
    parser.add_argument("--network-wait-us", type=float, default=0.0,
                        help="end to end: sleep this long in each request (the GIL is free "
                             "meanwhile, as during a real request), so the delivery worker "
                             "runs in the wait instead of preempting the caller")
    parser.add_argument("--only", choices=["none", *map(str, RECENT)])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="only the end-to-end measure (it runs on the code before "
                             "reservations too, for a before/after with PYTHONPATH)")
    parser.add_argument("--estimate", action="store_true",
                        help="with --only: count the budget path (reserve_request)")
    parser.add_argument("--processes", type=int, default=0,
                        help="the end-to-end measure in this many fresh processes, and "
                             "the median of their results")
    parser.add_argument("--in-place", type=int, default=0, metavar="CALLS",
                        help="time reserve_request inside this many real calls, 6 times")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes:
        processes(args.processes, args.e2e_rounds, args.e2e_block, args.network_wait_us)
        return 0
    home = tempfile.mkdtemp(prefix="llmlab-bench-")
    # Room for every measured event: the loop outruns the worker at times.
    llmlab.init(transport=sdk_overhead.CountingTransport(), auto_instrument=["openai"],
                ledger=False, home=home, project=PROJECT, queue_size=500_000, budgets=False)
    if args.only is not None:
        only(args.only, args.calls, args.estimate)
        return 0
    try:
        if args.in_place:
            in_place(make_guard(0), args.in_place, 6, args.network_wait_us / 1e6)
            return 0
        guards = {recent: make_guard(recent) for recent in RECENT}
        if not args.end_to_end_only:
            guard_path(guards, args.rounds, args.block, estimate=False)
            guard_path(guards, args.rounds, args.block, estimate=True)
        over = end_to_end(guards, args.e2e_rounds, args.e2e_block, args.network_wait_us / 1e6)
        if args.json:
            print(json.dumps(over))
    finally:
        get_tracker().budget_guard = None
        llmlab.shutdown()
        llmlab.uninstrument()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
