"""The cost event: the wire format shared by the SDK and the server (``schema_version`` 1).

Money travels as decimal strings (``"0.00475"``), never floats; timestamps are timezone-aware
ISO 8601. The event ``id`` is made by the SDK and is the idempotency key: the server stores an
event once per (project, id), however often it is sent.

Fields added after the first release are optional and omitted when empty, so old events and
old SDKs still ingest: ``usage.tools`` (built-in tool uses by kind), ``cost.tools`` (their
fees) and ``provider_cost`` (the charge the provider itself reported, e.g. OpenRouter).

>>> event = CostEvent.model_validate({
...     "id": "3f0c8a1e-4a55-4a8c-9a53-0d8f7b1c2d3e", "timestamp": "2026-11-22T10:00:00Z",
...     "provider": "openai", "model": "gpt-4o", "usage": {"input_tokens": 10}})
>>> event.cost is None  # the server prices events that arrive without a cost
True
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

from llmlab._tools import MAX_TOOL_KINDS, MAX_TOOL_USES, NO_TOOLS, TOOL_KIND_PATTERN
from llmlab.pricing._engine import CostBreakdown, money
from llmlab.usage import MAX_TOKENS, NORMALISED_TYPES

__all__ = ["SCHEMA_VERSION", "CostEvent", "EventCost", "EventUsage", "SdkInfo", "new_event_id"]

SCHEMA_VERSION: Literal[1] = 1
_random = random.Random()
if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's ids
    os.register_at_fork(after_in_child=_random.seed)
MAX_TAGS = 32


def new_event_id() -> str:
    """A fresh event id: a version-7 UUID string, the Unix time in milliseconds, then 74
    random bits.

    Time-ordered, so the events of a batch land next to each other in the server's unique
    index on (project, id) instead of all over it. The random bits come from `random`
    (seeded from the OS, and reseeded in forked children) rather than ``os.urandom``: the id
    needs uniqueness, not secrecy, and a system call per LLM call was a third of llmlab's
    per-call cost in a sandboxed kernel.
    """
    h = f"{time.time_ns() // 1_000_000:012x}{_random.getrandbits(76):019x}"
    # Version nibble 7 and variant bits 10xx placed by hand: uuid.UUID() would double the cost.
    return f"{h[:8]}-{h[8:12]}-7{h[12:15]}-{'89ab'[int(h[15], 16) & 3]}{h[16:19]}-{h[19:31]}"


def _money_string(value: Any) -> Any:
    # Floats would silently lose cents; only strings (and Decimals from Python callers) pass.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string such as \"0.00475\", not a float")
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except ArithmeticError as exc:
            raise ValueError(f"{value!r} is not a decimal number") from exc
        if not parsed.is_finite():
            raise ValueError(f"{value!r} is not a finite amount")
        return parsed
    return value


def _as_utc_string(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Money = Annotated[Decimal, BeforeValidator(_money_string), Field(ge=0, le=Decimal(10**9)),
                  PlainSerializer(money, return_type=str)]
Timestamp = Annotated[AwareDatetime, PlainSerializer(_as_utc_string, return_type=str)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS, strict=True)]
#: No NUL character: PostgreSQL text cannot hold one (it failed whole batches and reads).
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256,
                                        pattern=_NO_NUL)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                             pattern=_NO_NUL)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                          pattern=r"^[A-Za-z0-9_.:-]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=_NO_NUL)]
ToolKind = Annotated[str, StringConstraints(min_length=1, max_length=96,
                                            pattern=TOOL_KIND_PATTERN)]
ToolUses = Annotated[int, Field(ge=0, le=MAX_TOOL_USES, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventUsage(_Strict):
    """Normalised token counts (see `llmlab.usage` for the subset rule)."""

    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cache_read_tokens: Tokens = 0
    cache_write_tokens: Tokens = 0
    cache_write_1h_tokens: Tokens = 0
    reasoning_tokens: Tokens = 0
    audio_input_tokens: Tokens = 0
    audio_output_tokens: Tokens = 0
    image_input_tokens: Tokens = 0
    image_output_tokens: Tokens = 0
    #: Built-in tool uses billed per use, by kind (``{"web_search": 5}``; `llmlab._tools`).
    tools: dict[ToolKind, ToolUses] = Field(default_factory=lambda: NO_TOOLS,
                                            max_length=MAX_TOOL_KINDS)

    @model_validator(mode="after")
    def _subsets_fit(self) -> EventUsage:
        inside_input = (self.cache_read_tokens + self.cache_write_tokens + self.cache_write_1h_tokens
                        + self.audio_input_tokens + self.image_input_tokens)
        if inside_input > self.input_tokens:
            raise ValueError("cache, audio and image input tokens are subsets of input_tokens "
                             f"and add up to {inside_input} > input_tokens={self.input_tokens}")
        inside_output = self.reasoning_tokens + self.audio_output_tokens + self.image_output_tokens
        if inside_output > self.output_tokens:
            raise ValueError("reasoning, audio and image output tokens are subsets of output_tokens"
                             f" and add up to {inside_output} > output_tokens={self.output_tokens}")
        return self


NORMALISED_TYPES.add(EventUsage)  # validated to Usage's rules: priced as it is


class EventCost(_Strict):
    """What the call cost, in USD, as decimal strings on the wire."""

    input: Money = Decimal(0)
    cache_read: Money = Decimal(0)
    cache_write: Money = Decimal(0)
    output: Money = Decimal(0)
    reasoning: Money = Decimal(0)
    #: Built-in tool fees (web search, file search, containers …); absent means 0.
    tools: Money = Decimal(0)
    total: Money
    currency: Literal["USD"] = "USD"
    priced: bool = True
    pricing_version: ShortName | None = None

    @classmethod
    def from_breakdown(cls, breakdown: CostBreakdown) -> EventCost:
        """The wire cost of an engine result."""
        return cls(input=breakdown.input, cache_read=breakdown.cache_read,
                   cache_write=breakdown.cache_write, output=breakdown.output,
                   reasoning=breakdown.reasoning, tools=breakdown.tools,
                   total=breakdown.total,
                   priced=breakdown.priced, pricing_version=breakdown.pricing_version)


class SdkInfo(_Strict):
    """Which client library produced the event."""

    name: ShortName
    version: ShortName


class CostEvent(_Strict):
    """One priced LLM call (or a manual record), as sent to ``POST /api/events/track``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: Annotated[str, StringConstraints(min_length=1, max_length=128,
                                         pattern=r"^[A-Za-z0-9._:-]+$")]
    timestamp: Timestamp
    provider: Annotated[str, StringConstraints(min_length=1, max_length=32,
                                               pattern=r"^[a-z][a-z0-9_-]*$")]
    model: Name
    requested_model: Name | None = None
    operation: ShortName = "chat.completions"
    usage: EventUsage = EventUsage()
    cost: EventCost | None = None
    #: What the provider itself reported the call cost (OpenRouter's ``usage.cost``), in USD.
    provider_cost: Money | None = None
    latency_ms: Annotated[float, Field(ge=0, le=86_400_000, allow_inf_nan=False)] | None = None
    ttfb_ms: Annotated[float, Field(ge=0, le=86_400_000, allow_inf_nan=False)] | None = None
    stream: bool = False
    #: True when usage was estimated (a stream closed before the provider reported usage).
    estimated: bool = False
    status: Literal["ok", "error", "cancelled"] = "ok"
    error_type: ShortName | None = None
    service_tier: ShortName | None = None
    project: ShortName | None = None
    job_id: Name | None = None
    user_id: Name | None = None
    function: Name | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    environment: ShortName | None = None
    sdk: SdkInfo | None = None

    @field_validator("tags")
    @classmethod
    def _few_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags per event, got {len(tags)}")
        return tags

    @field_validator("timestamp")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        if value.year < 2000 or value.year > 2200:
            raise ValueError("timestamp must be between the years 2000 and 2200")
        return value

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict sent on the wire (fields added since the first release left
        out when empty, so an older server takes the event)."""
        wire = self.model_dump(mode="json")
        if not self.usage.tools:
            wire["usage"].pop("tools", None)
        if wire.get("cost") is not None and not self.cost.tools:  # type: ignore[union-attr]
            wire["cost"].pop("tools", None)
        if self.provider_cost is None:
            wire.pop("provider_cost", None)
        return wire
