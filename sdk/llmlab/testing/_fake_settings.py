"""The fake provider's state: per-provider answers, recorded requests, injected faults."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from llmlab.testing._fake_charges import FakeCharges
from llmlab.testing._fake_wire import FakeFunctionCall, FakeUsage

__all__ = [
    "DEFAULT_TEXT",
    "PROVIDERS",
    "UNSET",
    "Failure",
    "FakeSettings",
    "Provider",
    "RecordedRequest",
    "StreamBreak",
    "Unset",
]


Provider = Literal["openai", "anthropic", "google"]
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic", "google")
DEFAULT_TEXT = "Hello from FakeProvider!"


@dataclass
class FakeSettings:
    """What one provider's endpoints answer. Mutable: ``fp.openai.text = "..."``."""

    text: str = DEFAULT_TEXT
    """Response text; for structured-output requests, used as is if it is JSON, otherwise
    replaced by a minimal JSON instance of the requested schema."""
    usage: FakeUsage = field(default_factory=FakeUsage)
    model: str | None = None
    """Model name reported back; ``None`` echoes the requested model."""
    stream_chunks: int = 3
    """Number of text deltas a stream is split into."""
    first_byte_delay: float = 0.0
    """Seconds to wait before the status line (also before errors)."""
    chunk_delay: float = 0.0
    """Seconds to wait between stream events."""
    function_call: FakeFunctionCall | None = None
    """Gemini: answer the first leg of a tool-declaring request with a ``functionCall``."""
    embedding_dimensions: int = 8
    charges: FakeCharges | None = None
    """Non-token charges to report (tool uses, Gemini image tokens, a provider cost)."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (recorded before any failure is injected)."""

    method: str
    path: str
    """Path without the query string, e.g. ``/v1/chat/completions``."""
    query: dict[str, str]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any
    """Parsed JSON body, or ``None`` if empty / not JSON (see ``raw_body``)."""
    raw_body: bytes
    provider: Provider | None
    endpoint: str | None
    """``openai.chat``, ``openai.responses``, ``openai.embeddings``, ``anthropic.messages``,
    ``anthropic.count_tokens``, ``google.generate_content``, ``google.stream_generate_content``,
    ``google.count_tokens``; ``None`` for unknown routes (answered 404)."""
    stream: bool


class Unset(enum.Enum):
    """Marks a `FakeProvider.configure` argument that was not given."""

    UNSET = enum.auto()


UNSET = Unset.UNSET


@dataclass
class Failure:
    """A pending injected error (`FakeProvider.fail_next`)."""

    status: int
    retry_after: float | None
    message: str | None
    provider: Provider | None


@dataclass
class StreamBreak:
    """A pending cut of a streamed response (`FakeProvider.break_next_stream`)."""

    after_chunks: int
    provider: Provider | None
