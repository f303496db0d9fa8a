"""The anthropic integration: service tier and inference geo, and one event per call when a
wrapped client meets global instrumentation.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from anthropic_helpers import (
    KW,
    OPUS,
    Answer,
    aclient,
    anthropic,
    assert_full,
    client,
    message_json,
    message_start,
    mock_client,
    only,
)

import llmlab
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider
from llmlab.usage import Usage


class TestTierAndGeo:
    """`service_tier`, `speed` and `inference_geo` from the usage object reach the price."""

    @staticmethod
    def usage(**extra: Any) -> dict[str, Any]:
        return {"input_tokens": 1000, "output_tokens": 100, **extra}

    def test_fast_in_us(self, events: list[CostEvent]) -> None:
        """`speed="fast"` prices at the fast multiplier, `inference_geo="us"` adds 1.1*."""
        body = message_json(OPUS, self.usage(service_tier="standard", speed="fast",
                                             inference_geo="us"))
        mock_client(body).messages.create(**{**KW, "model": OPUS})
        event = only(events)
        assert event.service_tier == "fast"
        # (1000 * $4/M + 100 * $20/M) * 2 (fast) * 1.1 (us)
        assert event.cost is not None and event.cost.total == Decimal("0.0132")
        oracle = llmlab.cost(OPUS, Usage(input_tokens=1000, output_tokens=100), "anthropic",
                             service_tier="fast", region="us")
        assert event.cost.total == oracle.total

    def test_batch_tier_global_geo(self, events: list[CostEvent]) -> None:
        """`service_tier="batch"` prices at batch rates; a "global" geo adds nothing."""
        body = message_json(OPUS, self.usage(service_tier="batch", inference_geo="global"))
        mock_client(body).messages.create(**{**KW, "model": OPUS})
        event = only(events)
        assert event.service_tier == "batch"
        # 1000 * $2/M + 100 * $10/M
        assert event.cost is not None and event.cost.total == Decimal("0.003")

    def test_stream_carries_tier_and_geo(self, events: list[CostEvent]) -> None:
        """The tier and geo of `message_start` apply to a streamed call (async too)."""
        start = self.usage(service_tier="priority", inference_geo="us", output_tokens=1)
        body: list[dict[str, Any]] = [
            message_start(OPUS, start),
            {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                "stop_sequence": None},
             "usage": {"output_tokens": 100}},
            {"type": "message_stop"}]
        list(mock_client(body).messages.create(stream=True, **{**KW, "model": OPUS}))

        async def run() -> None:
            c = mock_client(body, cls=anthropic.AsyncAnthropic, api_key="k",
                            base_url="http://mock.test")
            async with c.messages.stream(**{**KW, "model": OPUS}) as stream:
                await stream.until_done()

        asyncio.run(run())
        assert len(events) == 2
        for event in events:
            assert event.service_tier == "priority"
            # (1000 * $4/M + 100 * $20/M) * 1.1 (us); priority has no rate of its own here
            assert event.cost is not None and event.cost.total == Decimal("0.0066")


class TestOnceOnly:
    """A call is counted once even when several layers are instrumented."""

    def test_wrapped_client_under_global_instrumentation(self, fp: FakeProvider,
                                                         events: list[CostEvent]) -> None:
        """`llmlab.wrap` on a client while the classes are patched records each call once."""
        c = llmlab.wrap(client(fp, fresh=True))
        c.messages.create(**KW)
        list(c.messages.create(stream=True, **KW))
        with c.messages.stream(**KW) as stream:
            stream.get_final_message()
        c.messages.parse(output_format=Answer, **KW)
        c.beta.messages.create(**KW)
        c.messages.with_raw_response.create(**KW).parse()
        assert [e.operation for e in events] == ["messages", "messages", "messages.stream",
                                                 "messages.parse", "messages", "messages"]

    def test_wrapped_client_alone(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`llmlab.wrap` instruments one client without global patching, sync and async."""
        llmlab.uninstrument("anthropic")
        try:
            plain = client(fp, fresh=True)
            plain.messages.create(**KW)
            assert not events
            wrapped = llmlab.wrap(client(fp, fresh=True))
            wrapped.messages.create(**KW)
            with wrapped.messages.stream(**KW) as stream:
                stream.get_final_text()

            async def run() -> None:
                async with llmlab.wrap(aclient(fp)) as c:
                    await c.beta.messages.create(**KW)

            asyncio.run(run())
            wrapped2 = llmlab.wrap(wrapped)  # wrapping twice does not double count
            wrapped2.messages.create(**KW)
        finally:
            llmlab.instrument("anthropic")
        assert [e.operation for e in events] == ["messages", "messages.stream", "messages",
                                                 "messages"]
        for event in events:
            assert_full(event, operation=event.operation, stream=event.stream)
