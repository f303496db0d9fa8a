"""The anthropic integration: the stream helper and cumulative stream usage."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from anthropic_helpers import (
    HAIKU,
    KW,
    TEXT,
    aclient,
    anthropic,
    assert_full,
    client,
    dump,
    message_start,
    mock_client,
    only,
    uninstrumented,
)

from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider
from llmlab.usage import Usage


class TestStreamHelper:
    """`messages.stream()`: every protocol keeps working and the call is recorded once."""

    CONSUMERS: dict[str, Callable[[Any], Any]] = {
        "get_final_message": lambda s: dump(s.get_final_message()),
        "get_final_text": lambda s: s.get_final_text(),
        "text_stream": lambda s: list(s.text_stream),
        "iteration": lambda s: [e.type for e in s],
        "until_done": lambda s: (s.until_done(), dump(s.current_message_snapshot))[1],
    }

    @pytest.mark.parametrize("consumer", list(CONSUMERS))
    def test_sync_protocols(self, fp: FakeProvider, events: list[CostEvent],
                            consumer: str) -> None:
        """Each way of reading the stream gives the same result and records once."""
        consume = self.CONSUMERS[consumer]
        with uninstrumented(), client(fp).messages.stream(**KW) as stream:
            expected = consume(stream)
        with client(fp).messages.stream(**KW) as stream:
            assert isinstance(stream, anthropic.MessageStream)
            assert consume(stream) == expected
        assert_full(only(events), operation="messages.stream", stream=True)

    def test_usage_matches_the_sdk_snapshot(self, fp: FakeProvider,
                                            events: list[CostEvent]) -> None:
        """The recorded usage is the SDK's accumulated `current_message_snapshot.usage`."""
        with client(fp).messages.stream(**KW) as stream:
            final = stream.get_final_message()
            assert stream.current_message_snapshot is final
        assert only(events).usage.model_dump() == Usage.from_any(final.usage).to_dict()
        assert final.usage.output_tokens == 200  # replaced, not 1 (message_start) + 200

    def test_get_final_message_records_once(self, fp: FakeProvider,
                                            events: list[CostEvent]) -> None:
        """`get_final_message()` then leaving the block, then closing again, records once."""
        with client(fp).messages.stream(**KW) as stream:
            stream.get_final_message()
            stream.get_final_message()
            assert len(events) == 1
        stream.close()
        assert_full(only(events), operation="messages.stream", stream=True)

    def test_break_and_close_records_once(self, fp: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """Breaking off after the first event and closing records one cancelled estimate."""
        with client(fp).messages.stream(**KW) as stream:
            for _event in stream:
                break
            stream.close()
            stream.close()
        event = only(events)
        assert (event.status, event.estimated, event.stream) == ("cancelled", True, True)
        assert event.ttfb_ms is not None

    def test_close_without_context_manager(self, fp: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """A manager entered by hand and closed with `close()` records once."""
        stream = client(fp).messages.stream(**KW).__enter__()
        assert stream.get_final_text() == TEXT
        stream.close()
        assert_full(only(events), operation="messages.stream", stream=True)

    def test_dropped_stream_recorded_after_gc(self, fp: FakeProvider,
                                              events: list[CostEvent]) -> None:
        """A stream abandoned mid-way without close is recorded once when collected."""
        stream = client(fp).messages.stream(**KW).__enter__()
        next(iter(stream))
        assert not events
        del stream
        gc.collect()
        event = only(events)
        assert (event.status, event.estimated) == ("cancelled", True)

    def test_never_entered_records_nothing(self, fp: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """A manager never entered sends no request and records nothing."""
        client(fp).messages.stream(**KW)
        assert not events and not fp.requests

    def test_async_protocols(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """Async `get_final_message`, `text_stream` and iteration match the SDK's, once each."""

        async def run() -> list[Any]:
            async with aclient(fp) as c:
                async with c.messages.stream(**KW) as stream:
                    assert isinstance(stream, anthropic.AsyncMessageStream)
                    final = dump(await stream.get_final_message())
                async with c.messages.stream(**KW) as stream:
                    texts = [t async for t in stream.text_stream]
                async with c.messages.stream(**KW) as stream:
                    types = [e.type async for e in stream]
                async with c.messages.stream(**KW) as stream:
                    text = await stream.get_final_text()
                return [final, texts, types, text]

        with uninstrumented():
            expected = asyncio.run(run())
        assert asyncio.run(run()) == expected
        assert len(events) == 4
        for event in events:
            assert_full(event, operation="messages.stream", stream=True)

    def test_async_break_records_once(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """An async helper stream left after one event records one cancelled estimate."""

        async def run() -> None:
            async with aclient(fp) as c, c.messages.stream(**KW) as stream:
                async for _event in stream:
                    break
                await stream.close()

        asyncio.run(run())
        assert (only(events).status, events[0].estimated) == ("cancelled", True)


class TestCumulativeUsage:
    """`message_delta` usage is cumulative: it replaces, never adds (openllmetry #4377)."""

    def test_fake_output_count_replaced(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """message_start's placeholder output count (1) is replaced by the delta's 200."""
        list(client(fp).messages.create(stream=True, **KW))
        assert only(events).usage.output_tokens == 200

    def test_delta_repeating_input_counts_is_not_summed(self, events: list[CostEvent]) -> None:
        """A delta repeating the input and cache counts (as the API does) is not doubled."""
        start = {"input_tokens": 500, "output_tokens": 1, "cache_read_input_tokens": 100,
                 "cache_creation_input_tokens": 0, "service_tier": "standard"}
        delta = {"input_tokens": 500, "output_tokens": 80, "cache_read_input_tokens": 100,
                 "cache_creation_input_tokens": 0}
        body: list[dict[str, Any]] = [
            message_start(HAIKU, start),
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "hi"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                "stop_sequence": None}, "usage": delta},
            {"type": "message_stop"}]
        c = mock_client(body)
        list(c.messages.create(stream=True, **KW))
        with c.messages.stream(**KW) as stream:
            snapshot = stream.get_final_message().usage
        assert snapshot.input_tokens == 500
        assert len(events) == 2
        for event in events:
            assert (event.usage.input_tokens, event.usage.cache_read_tokens,
                    event.usage.output_tokens) == (600, 100, 80)
            # 500 * $1/M + 100 * $0.10/M + 80 * $5/M
            assert event.cost is not None and event.cost.total == Decimal("0.00091")
