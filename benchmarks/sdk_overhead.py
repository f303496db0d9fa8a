"""Latency llmlab adds to a provider call, and to each streamed chunk.

    python benchmarks/sdk_overhead.py [--calls 4000] [--chunks 200] [--langfuse-python PATH]
    python benchmarks/sdk_overhead.py --processes 6 [--calls 4000] [--chunks 200]

The same openai client runs against an in-process ``httpx2.MockTransport`` that returns a
canned Chat Completions response (no network, so the difference is llmlab's own work). After
``llmlab.init()`` patches the client classes, bare calls (the SDK's original ``create`` on
the same client) and instrumented calls alternate one by one, so machine noise hits both
sides alike; medians of the calling thread's CPU time are compared. Streams are measured
at one chunk (the fixed part of a stream) and at ``--chunks`` chunks; the cost per chunk is
the slope between the two. Events go through the real worker to a transport that only
counts them. Langfuse's OpenAI integration is measured the same way, in its own interpreter,
when one is given.

Where a process's objects land in memory moves its figures by a few microseconds, so one
process is one sample: ``--processes N`` measures in N fresh processes and reports the
median of their results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk"))

import httpx2
import openai

import llmlab
from llmlab.transport import SendResult, Transport


class CountingTransport(Transport):
    """Accepts every batch and only counts it: the worker's delivery cost is measured by
    benchmarks/transport_outage.py; here we measure what the calling thread pays."""

    def __init__(self) -> None:
        self.events = 0

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        self.events += len(events)
        return SendResult.all_accepted(events)

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there!"}}],
    "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
              "prompt_tokens_details": {"cached_tokens": 1000},
              "completion_tokens_details": {"reasoning_tokens": 120}},
}


def stream_body(chunks: int) -> bytes:
    """An SSE body of ``chunks`` content chunks plus the usage chunk."""
    lines = []
    for i in range(chunks):
        lines.append({"id": "c", "object": "chat.completion.chunk", "created": 1,
                      "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": f"t{i} "},
                                                      "finish_reason": None}]})
    lines.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                  "choices": [], "usage": COMPLETION["usage"]})
    body = b"".join(b"data: " + json.dumps(x).encode() + b"\n\n" for x in lines)
    return body + b"data: [DONE]\n\n"


def make_client(chunks: int, wait: float = 0.0) -> openai.OpenAI:
    """An OpenAI client answered in-process, after ``wait`` seconds of sleep per request (a
    network wait: the GIL is free meanwhile, as it is while a real request is in flight)."""
    plain = json.dumps(COMPLETION).encode()
    streamed = stream_body(chunks)

    def handler(request: httpx2.Request) -> httpx2.Response:
        if wait:
            time.sleep(wait)
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(200, content=streamed,
                                   headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, content=plain, headers={"content-type": "application/json"})

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1",
                         http_client=http, max_retries=0)


def measure(calls: int, chunks: int, setup: Callable[[], None],
            teardown: Callable[[], None]) -> dict[str, float]:
    """Median bare and instrumented times of a plain call and of a stream.

    ``setup`` patches the openai classes (llmlab or another tool). A bare call runs the SDK's
    original ``create`` on the same client, so bare and instrumented calls can alternate one
    by one: machine noise and drift hit both sides alike. Times are the calling thread's CPU
    time: on a shared machine wall time would let other processes dominate a 20 us
    difference, and work handed to a background thread is not the caller's latency.
    """
    client, short_client = make_client(chunks), make_client(1)
    resource = client.chat.completions
    original = type(resource).__dict__["create"]  # read before anything patches the class
    messages = [{"role": "user", "content": "hi"}]
    stream_kwargs = {"stream": True, "stream_options": {"include_usage": True}}
    clock = time.thread_time

    def bare_plain() -> None:
        original(resource, model="gpt-4o", messages=messages)

    def instrumented_plain() -> None:
        client.chat.completions.create(model="gpt-4o", messages=messages)

    def streams(on: openai.OpenAI) -> tuple[Callable[[], None], Callable[[], None]]:
        def bare_stream() -> None:
            for _ in original(on.chat.completions, model="gpt-4o", messages=messages,
                              **stream_kwargs):
                pass

        def instrumented_stream() -> None:
            for _ in on.chat.completions.create(model="gpt-4o", messages=messages,
                                                **stream_kwargs):
                pass

        return bare_stream, instrumented_stream

    def alternate(bare: Callable[[], None], instrumented: Callable[[], None],
                  n: int) -> tuple[list[float], list[float]]:
        times: tuple[list[float], list[float]] = ([], [])
        for i in range(n):
            order = ((0, bare), (1, instrumented)) if i % 2 else ((1, instrumented), (0, bare))
            for side, fn in order:
                start = clock()
                fn()
                times[side].append(clock() - start)
        return times

    setup()
    try:
        alternate(bare_plain, instrumented_plain, 200)  # warm both paths
        bare_p, inst_p = alternate(bare_plain, instrumented_plain, calls)
        bare_s, inst_s = alternate(*streams(client), max(20, calls // 10))
        bare_1, inst_1 = alternate(*streams(short_client), max(20, calls // 10))
    finally:
        teardown()
    med = statistics.median
    # Each instrumented call is paired with the bare call next to it; the median of the
    # pairwise differences is the median added latency, robust to drift and to interrupts.
    per_call = med(i - b for i, b in zip(inst_p, bare_p, strict=True))
    per_stream = med(i - b for i, b in zip(inst_s, bare_s, strict=True))
    # A one-chunk stream carries the stream's fixed cost; the per-chunk cost is the slope
    # from it to the long stream, so the fixed part is not spread over the chunks.
    per_short_stream = med(i - b for i, b in zip(inst_1, bare_1, strict=True))
    return {
        "bare_call_us": med(bare_p) * 1e6, "instrumented_call_us": med(inst_p) * 1e6,
        "added_per_call_us": per_call * 1e6,
        "added_per_call_diff_of_medians_us": (med(inst_p) - med(bare_p)) * 1e6,
        "added_per_stream_us": per_short_stream * 1e6,
        "added_per_chunk_us": (per_stream - per_short_stream) * 1e6 / max(1, chunks - 1),
    }


def measure_own_path(n: int = 20000, warm: int = 1000) -> float:
    """Microseconds of llmlab's own per-call work: the patched-method wrapper around a function
    that returns a ready ChatCompletion (no SDK request building, no HTTP, no parsing)."""
    from openai.types.chat import ChatCompletion

    from llmlab.integrations import openai as integration
    from llmlab.integrations._common import sync_wrapper

    completion = ChatCompletion.model_validate(COMPLETION)
    spec = integration._spec("chat.completions", stream_state=integration._chat_state,
                             prepare_stream=integration._prepare_chat_stream)
    wrapper = sync_wrapper(spec)
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

    def provider_call(**_: Any) -> ChatCompletion:
        return completion

    class Resource:
        _client = None

    resource = Resource()
    for _ in range(warm):
        wrapper(provider_call, resource, (), kwargs)
    start = time.thread_time()
    for _ in range(n):
        wrapper(provider_call, resource, (), kwargs)
    return (time.thread_time() - start) / n * 1e6


def processes(count: int, calls: int, chunks: int) -> None:
    """`measure` in ``count`` fresh processes: each one's figures, and their medians."""
    fields = {"added_per_call_us": "per call", "added_per_stream_us": "per stream",
              "added_per_chunk_us": "per chunk"}
    results = []
    for _ in range(count):
        out = subprocess.run([sys.executable, __file__, "--calls", str(calls), "--chunks",
                              str(chunks), "--json"], check=True, capture_output=True,
                             text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"llmlab added, {count} processes (us):")
    print(" " * 10 + "".join(f"{label:>14}" for label in fields.values()))
    for i, result in enumerate(results, 1):
        print(f"{'run ' + str(i):>10}" + "".join(f"{result[key]:14.2f}" for key in fields))
    print(f"{'median':>10}" + "".join(
        f"{statistics.median(result[key] for result in results):14.2f}" for key in fields))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--langfuse-python", help="a Python interpreter with langfuse installed")
    parser.add_argument("--own-only", type=int, metavar="N",
                        help="run only N own-path calls (the worker never builds: huge "
                             "batches and flush interval), for an instruction count: "
                             "valgrind --tool=cachegrind --cache-sim=no, N=1100 minus N=100")
    parser.add_argument("--processes", type=int, default=0,
                        help="measure in this many fresh processes; report their median")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes:
        processes(args.processes, args.calls, args.chunks)
        return 0
    if args.own_only is not None:
        import gc

        llmlab.init(transport=CountingTransport(), auto_instrument=["openai"], ledger=False,
                    home=tempfile.mkdtemp(prefix="llmlab-bench-"), queue_size=10**6,
                    batch_size=10**6, flush_interval=3600.0)
        gc.collect()
        gc.disable()
        measure_own_path(args.own_only, warm=200)
        return 0

    transport = CountingTransport()
    # Events left at shutdown are spooled: keep them out of the user's ~/.llmlab.
    home = tempfile.mkdtemp(prefix="llmlab-bench-")

    def setup() -> None:
        llmlab.init(transport=transport, auto_instrument=["openai"], ledger=False, home=home)

    def teardown() -> None:
        llmlab.shutdown()
        llmlab.uninstrument()

    result = measure(args.calls, args.chunks, setup, teardown)
    if args.json:
        teardown()
        print(json.dumps(result))
        return 0
    print(f"bare call (median):            {result['bare_call_us']:8.1f} us")
    print(f"instrumented call (median):    {result['instrumented_call_us']:8.1f} us")
    print(f"llmlab added per call:         {result['added_per_call_us']:8.1f} us "
          f"(median of paired differences; difference of medians "
          f"{result['added_per_call_diff_of_medians_us']:.1f} us)")
    print(f"llmlab added per stream:       {result['added_per_stream_us']:8.1f} us "
          "(a one-chunk stream: the fixed part)")
    print(f"llmlab added per stream chunk: {result['added_per_chunk_us']:8.2f} us "
          f"(slope from 1 to {args.chunks} chunks)")
    print(f"events delivered to transport: {transport.events}")
    # The tight loop outruns the worker, which prices what it queues: room for all of it.
    llmlab.init(transport=transport, auto_instrument=["openai"], ledger=False, home=home,
                queue_size=100_000)
    own = measure_own_path()
    teardown()
    print(f"llmlab's own per-call path:    {own:8.1f} us "
          "(wrapper + record + queue; pricing runs on the worker)")
    if args.langfuse_python:
        langfuse = measure_langfuse(args.langfuse_python, args.calls, args.chunks)
        if langfuse is not None:
            print(f"langfuse added per call:       {langfuse['added_per_call_us']:8.1f} us")
            print(f"langfuse added per stream:     {langfuse['added_per_stream_us']:8.1f} us")
            print(f"langfuse added per chunk:      {langfuse['added_per_chunk_us']:8.2f} us")
    else:
        print("langfuse not measured: pass --langfuse-python PATH (a Python with langfuse)")
    shutil.rmtree(home, ignore_errors=True)
    return 0


LANGFUSE_CHILD = r"""
import json, os, sys
os.environ.update(LANGFUSE_PUBLIC_KEY="pk-lf-bench", LANGFUSE_SECRET_KEY="sk-lf-bench",
                  LANGFUSE_HOST="http://127.0.0.1:9")  # nothing listens: exports fail quietly
sys.path.insert(0, sys.argv[1])
import sdk_overhead as bench

def setup():
    import langfuse.openai  # noqa: F401 - patches the openai classes on import

print(json.dumps(bench.measure(int(sys.argv[2]), int(sys.argv[3]), setup, lambda: None)))
"""


def measure_langfuse(python: str, calls: int, chunks: int) -> dict[str, float] | None:
    """The same measurement for Langfuse's OpenAI integration, in its own interpreter."""
    import subprocess

    here = str(Path(__file__).resolve().parent)
    result = subprocess.run([python, "-c", LANGFUSE_CHILD, here, str(calls), str(chunks)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"langfuse not measured: {result.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


if __name__ == "__main__":
    raise SystemExit(main())
