"""The cost event wire format shared by the SDK and the server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from llmlab.pricing import cost
from llmlab.schema import CostEvent, EventCost, new_event_id

DESIGN_EVENT: dict[str, Any] = {
    "schema_version": 1, "id": "6f1c2a8e-5b7d-4c1e-9f3a-2d4b6c8e0a1b",
    "timestamp": "2026-11-22T10:00:00.123Z", "provider": "openai", "model": "gpt-4o-2024-08-06",
    "requested_model": "gpt-4o", "operation": "chat.completions",
    "usage": {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1000,
              "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "reasoning_tokens": 120,
              "audio_input_tokens": 0, "audio_output_tokens": 0},
    "cost": {"input": "0.0005", "cache_read": "0.00125", "cache_write": "0", "output": "0.003",
             "total": "0.00475", "currency": "USD", "priced": True,
             "pricing_version": "2026-11-12"},
    "latency_ms": 812.4, "ttfb_ms": 190.2, "stream": False, "status": "ok", "error_type": None,
    "project": "support-bot", "job_id": "ticket-4411", "user_id": "cust-42",
    "function": "app.answer", "tags": {"feature": "triage"}, "environment": "prod",
    "sdk": {"name": "llmlab-python", "version": "0.1.0"},
}


def with_changes(**changes: Any) -> dict[str, Any]:
    """The DESIGN.md event with some fields replaced."""
    return {**DESIGN_EVENT, **changes}


class TestCostEvent:
    def test_design_example_round_trips(self) -> None:
        """The DESIGN.md example validates and serialises back with money as strings."""
        event = CostEvent.model_validate(DESIGN_EVENT)
        wire = event.to_wire()
        assert wire["cost"]["total"] == "0.00475"
        assert wire["timestamp"] == "2026-11-22T10:00:00.123Z"
        assert CostEvent.model_validate(wire) == event

    @pytest.mark.parametrize(("changes", "field"), [
        ({"timestamp": "2026-11-22T10:00:00"}, "timestamp"),
        ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp"),
        ({"timestamp": "2201-01-01T00:00:00Z"}, "timestamp"),
        ({"cost": {"total": 0.1}}, "cost.total"),
        ({"cost": {"total": "-1"}}, "cost.total"),
        ({"cost": {"total": "NaN"}}, "cost.total"),
        ({"usage": {"input_tokens": -5}}, "usage.input_tokens"),
        ({"usage": {"input_tokens": "5"}}, "usage.input_tokens"),
        ({"usage": {"input_tokens": 5, "cache_read_tokens": 6}}, "usage"),
        ({"id": ""}, "id"),
        ({"id": "has spaces"}, "id"),
        ({"provider": "OpenAI"}, "provider"),
        ({"schema_version": 2}, "schema_version"),
        ({"tags": {f"k{i}": "v" for i in range(33)}}, "tags"),
        ({"unexpected": 1}, "unexpected"),
        ({"status": "maybe"}, "status"),
        ({"latency_ms": -1}, "latency_ms"),
    ])
    def test_invalid_events_are_refused_with_the_field(self, changes: dict[str, Any],
                                                       field: str) -> None:
        """Every invalid field is refused, and the error names it."""
        with pytest.raises(ValidationError) as info:
            CostEvent.model_validate(with_changes(**changes))
        locations = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
        assert any(loc.startswith(field) for loc in locations), locations

    def test_cost_from_engine(self) -> None:
        """An engine CostBreakdown becomes the wire cost with the same exact amounts."""
        breakdown = cost("gpt-4o", {"prompt_tokens": 1200, "completion_tokens": 300,
                                    "prompt_tokens_details": {"cached_tokens": 1000}})
        wire_cost = EventCost.from_breakdown(breakdown)
        assert wire_cost.total == breakdown.total == Decimal("0.00475")

    def test_event_ids_are_unique(self) -> None:
        """new_event_id returns a fresh UUID each time."""
        assert len({new_event_id() for _ in range(1000)}) == 1000

    def test_event_ids_are_time_ordered_version_7_uuids(self) -> None:
        """Each id is an RFC 9562 version-7 UUID whose first 48 bits are the time in ms, so
        ids made in later milliseconds sort after earlier ones."""
        import time
        import uuid

        before = time.time_ns() // 1_000_000
        first = new_event_id()
        time.sleep(0.003)
        second = new_event_id()
        after = time.time_ns() // 1_000_000
        for made in (first, second):
            parsed = uuid.UUID(made)
            assert str(parsed) == made
            assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
            assert before <= int(made.replace("-", "")[:12], 16) <= after
        assert first < second

    @pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
    def test_a_forked_child_does_not_repeat_its_parents_ids(self) -> None:
        """After fork the child draws other random bits than the parent: two processes must
        never send the same id (the server would drop one event as a duplicate)."""
        import os

        new_event_id()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: send a few ids, exit at once
            os.write(write, ",".join(new_event_id() for _ in range(5)).encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        child = os.read(read, 4096).decode().split(",")
        os.close(read)
        parent = [new_event_id() for _ in range(5)]
        tails = {made[15:] for made in parent}  # all but the time: the random bits
        assert len(child) == 5 and not tails & {made[15:] for made in child}


class TestEventUsagePricing:
    """Validated wire usage is priced as it is, with the same result as its dict form."""

    def test_event_usage_prices_like_its_counts(self) -> None:
        """The engine takes an EventUsage without re-normalising it, to the same cost."""
        from llmlab.schema import EventUsage
        from llmlab.usage import NORMALISED_TYPES

        counts = {"input_tokens": 3000, "output_tokens": 700, "cache_read_tokens": 1000,
                  "cache_write_tokens": 500, "reasoning_tokens": 200}
        assert EventUsage in NORMALISED_TYPES
        wire = EventUsage(**counts)
        assert cost("claude-sonnet-4-5", wire) == cost("claude-sonnet-4-5", counts)
        assert cost("gpt-4o", wire, "openai").total == cost("gpt-4o", counts, "openai").total
        assert cost("gpt-4o", wire, "openai").total > 0
