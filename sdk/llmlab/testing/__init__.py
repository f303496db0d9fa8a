"""Test helpers for llmlab users and llmlab itself.

- `FakeProvider`: a real local HTTP server speaking the OpenAI, Anthropic and Gemini wire
  formats (streaming too), with controllable usage, latency and failures.
- `capture_events()`: collect the events llmlab records inside a ``with`` block (initialising
  llmlab offline, with the installed provider SDKs patched, when the application has not).
- `CaptureServer`: a local llmlab-compatible ingest server that misbehaves on demand (down,
  500s, 429 with Retry-After, slow, resets, black hole, partial rejection), for testing delivery;
  `make_event` / `make_events` build valid wire events for it.

>>> import llmlab
>>> from llmlab.testing import capture_events
>>> with capture_events() as events:
...     _ = llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 2})
>>> events[0].cost.total
Decimal('0.0000450')
"""

from __future__ import annotations

from llmlab.testing._capture import capture_events
from llmlab.testing._capture_server import CaptureServer, make_event, make_events
from llmlab.testing._fake_charges import FakeCharges
from llmlab.testing._fake_provider import (
    FakeProvider,
    FakeSettings,
    RecordedRequest,
    fake_provider,
)
from llmlab.testing._fake_wire import FakeFunctionCall, FakeUsage

__all__ = ["CaptureServer", "FakeCharges", "FakeFunctionCall", "FakeProvider", "FakeSettings", "FakeUsage",
           "RecordedRequest", "capture_events", "fake_provider", "make_event", "make_events"]

