"""Latency llmlab adds to a provider call, and to each streamed chunk.

    python benchmarks/sdk_overhead.py [--calls 3000] [--chunks 200]

The same openai client runs against an in-process ``httpx2.MockTransport`` that returns a
canned Chat Completions response (no network, so the difference is llmlab's own work):
bare, then with ``llmlab.init()`` (events go through the real worker to a transport that only
counts them).
Calls alternate in blocks so machine noise hits both sides alike; medians of the calling
thread's CPU time are compared.
Langfuse's OpenAI integration is measured the same way when it is importable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
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


def make_client(chunks: int) -> openai.OpenAI:
    """An OpenAI client answered in-process."""
    plain = json.dumps(COMPLETION).encode()
    streamed = stream_body(chunks)

    def handler(request: httpx2.Request) -> httpx2.Response:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(200, content=streamed,
                                   headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, content=plain, headers={"content-type": "application/json"})

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1",
                         http_client=http, max_retries=0)


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    """Per-call CPU seconds of the calling thread over ``n`` runs.

    Thread CPU time, not wall time: on a shared machine other processes would otherwise
    dominate a 20 us difference. Work llmlab hands to its background worker is not the
    caller's latency and is (rightly) not counted here.
    """
    out = []
    clock = time.thread_time
    for _ in range(n):
        start = clock()
        fn()
        out.append(clock() - start)
    return out


def measure(calls: int, chunks: int, setup: Callable[[], None], teardown: Callable[[], None],
            patch_once: bool = False) -> dict[str, float]:
    """Median bare and instrumented times for a plain call and a stream, interleaved in blocks
    (or, with ``patch_once`` for tools that cannot be undone, all bare runs first)."""
    client = make_client(chunks)
    messages = [{"role": "user", "content": "hi"}]

    def plain() -> None:
        client.chat.completions.create(model="gpt-4o", messages=messages)

    def stream() -> None:
        for _ in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                                stream_options={"include_usage": True}):
            pass

    bare_plain: list[float] = []
    inst_plain: list[float] = []
    bare_stream: list[float] = []
    inst_stream: list[float] = []
    block = 100
    timed(plain, 200)
    rounds = max(1, calls // block)
    if patch_once:
        for _ in range(rounds):
            bare_plain += timed(plain, block)
            bare_stream += timed(stream, max(1, block // 10))
        setup()
        client = make_client(chunks)  # a client made after patching
        for _ in range(rounds):
            inst_plain += timed(plain, block)
            inst_stream += timed(stream, max(1, block // 10))
    else:
        for _ in range(rounds):
            bare_plain += timed(plain, block)
            bare_stream += timed(stream, max(1, block // 10))
            setup()
            inst_plain += timed(plain, block)
            inst_stream += timed(stream, max(1, block // 10))
            teardown()
    med = statistics.median
    return {
        "bare_call_us": med(bare_plain) * 1e6, "instrumented_call_us": med(inst_plain) * 1e6,
        "added_per_call_us": (med(inst_plain) - med(bare_plain)) * 1e6,
        "added_per_chunk_us": (med(inst_stream) - med(bare_stream)
                               - (med(inst_plain) - med(bare_plain))) * 1e6 / chunks,
    }


def measure_own_path(n: int = 20000) -> float:
    """Microseconds of llmlab's own per-call work: the patched-method wrapper around a function
    that returns a ready ChatCompletion (no SDK request building, no HTTP, no parsing)."""
    from openai.types.chat import ChatCompletion

    from llmlab.integrations import openai as integration
    from llmlab.integrations._common import sync_wrapper

    completion = ChatCompletion.model_validate(COMPLETION)
    spec = integration._spec("chat.completions", stream_state=integration._chat_state,
                             prepare=integration._prepare_chat)
    wrapper = sync_wrapper(spec)
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

    def provider_call(**_: Any) -> ChatCompletion:
        return completion

    class Resource:
        _client = None

    resource = Resource()
    for _ in range(1000):
        wrapper(provider_call, resource, (), kwargs)
    start = time.perf_counter()
    for _ in range(n):
        wrapper(provider_call, resource, (), kwargs)
    return (time.perf_counter() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--langfuse-python", help="a Python interpreter with langfuse installed")
    args = parser.parse_args()

    transport = CountingTransport()

    def setup() -> None:
        llmlab.init(transport=transport, auto_instrument=["openai"], ledger=False)

    def teardown() -> None:
        llmlab.shutdown()
        llmlab.uninstrument()

    result = measure(args.calls, args.chunks, setup, teardown)
    print(f"bare call (median):            {result['bare_call_us']:8.1f} us")
    print(f"instrumented call (median):    {result['instrumented_call_us']:8.1f} us")
    print(f"llmlab added per call:         {result['added_per_call_us']:8.1f} us")
    print(f"llmlab added per stream chunk: {result['added_per_chunk_us']:8.2f} us")
    print(f"events delivered to transport: {transport.events}")
    setup()
    own = measure_own_path()
    teardown()
    print(f"llmlab's own per-call path:    {own:8.1f} us (wrapper + usage + cost + event + queue)")
    if args.langfuse_python:
        langfuse = measure_langfuse(args.langfuse_python, args.calls, args.chunks)
        if langfuse is not None:
            print(f"langfuse added per call:       {langfuse['added_per_call_us']:8.1f} us")
            print(f"langfuse added per chunk:      {langfuse['added_per_chunk_us']:8.2f} us")
    else:
        print("langfuse not measured: pass --langfuse-python PATH (a Python with langfuse)")
    return 0


LANGFUSE_CHILD = r"""
import json, os, sys
os.environ.update(LANGFUSE_PUBLIC_KEY="pk-lf-bench", LANGFUSE_SECRET_KEY="sk-lf-bench",
                  LANGFUSE_HOST="http://127.0.0.1:9")  # nothing listens: exports fail quietly
sys.path.insert(0, sys.argv[1])
import sdk_overhead as bench
state = {}

def setup():
    if "patched" not in state:
        import langfuse.openai  # noqa: F401 - patches the openai module on import
        state["patched"] = True

print(json.dumps(bench.measure(int(sys.argv[2]), int(sys.argv[3]), setup, lambda: None,
                               patch_once=True)))
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
