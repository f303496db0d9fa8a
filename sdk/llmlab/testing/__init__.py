"""Test helpers for llmlab users and llmlab itself.

- `FakeProvider`: a real local HTTP server speaking the OpenAI, Anthropic and Gemini wire
  formats (streaming too), with controllable usage, latency and failures.
- `capture_events()`: collect the events llmlab records inside a ``with`` block.
- `CaptureServer`: a local llmlab-compatible ingest server that misbehaves on demand (down,
  500s, 429 with Retry-After, slow, resets, black hole, partial rejection), for testing delivery;
  `make_event` / `make_events` build valid wire events for it.

>>> import llmlab
>>> from llmlab.testing import capture_events
>>> with capture_events() as events:
...     _ = llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 2})
>>> events[0].cost.total
Decimal('0.000045')
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llmlab.schema import CostEvent
from llmlab.testing._capture_server import CaptureServer, make_event, make_events
from llmlab.testing._fake_provider import (
    FakeProvider,
    FakeSettings,
    RecordedRequest,
    fake_provider,
)
from llmlab.testing._fake_wire import FakeFunctionCall, FakeUsage

__all__ = ["CaptureServer", "FakeFunctionCall", "FakeProvider", "FakeSettings", "FakeUsage",
           "RecordedRequest", "capture_events", "fake_provider", "make_event", "make_events"]


@contextmanager
def capture_events() -> Iterator[list[CostEvent]]:
    """Collect every event recorded inside the block, in order.

    If llmlab is not initialised, it is initialised for the block in a quiet offline mode
    (no server, no ledger) and shut down afterwards.
    """
    from llmlab._tracker import get_tracker
    from llmlab.api import init, shutdown

    events: list[CostEvent] = []
    tracker = get_tracker()
    started = not tracker.active
    if started:
        init(ledger=False, auto_instrument=False, on_event=events.append)
        try:
            yield events
        finally:
            shutdown()
        return
    tracker.options.on_event.append(events.append)
    try:
        yield events
    finally:
        tracker.options.on_event.remove(events.append)
