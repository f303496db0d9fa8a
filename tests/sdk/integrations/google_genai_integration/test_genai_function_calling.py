"""The google-genai integration: automatic function calling and the async client (``client.aio``)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from genai_helpers import (
    FLASH,
    FLASH_COST,
    TEXT,
    USAGE,
    D,
    client,
    comparable,
    genai_errors,
    types,
    uninstrumented,
    weather_tool,
)

from llmlab.schema import CostEvent
from llmlab.testing import FakeFunctionCall, FakeProvider, FakeUsage


class TestAutomaticFunctionCalling:
    def test_every_billed_call_is_recorded(self, fake: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """AFC's two billed requests give two events whose costs add up to both usages,
        although the returned response reports only the last request's usage."""
        first = FakeUsage(input_tokens=1000, output_tokens=50)
        second = FakeUsage(input_tokens=1200, output_tokens=80, reasoning_tokens=20)
        fake.configure("google", usage=first, function_call=FakeFunctionCall(args={"city": "Paris"}))
        calls: list[str] = []
        tool = weather_tool(calls, then=lambda: fake.configure("google", usage=second))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = client(fake).models.generate_content(
                model=FLASH, contents="weather in Paris?",
                config=types.GenerateContentConfig(tools=[tool]))
        assert calls == ["Paris"] and response.text == TEXT and len(fake.requests) == 2
        assert response.usage_metadata.prompt_token_count == 1200  # only the last call's
        one, two = events
        assert (one.usage.input_tokens, one.usage.output_tokens) == (1000, 50)
        assert (two.usage.input_tokens, two.usage.output_tokens) == (1200, 100)
        assert one.cost is not None and two.cost is not None
        # 1000 x 3e-7 + 50 x 2.5e-6 = 0.000425; 1200 x 3e-7 + 100 x 2.5e-6 = 0.00061
        assert (one.cost.total, two.cost.total) == (D("0.000425"), D("0.00061"))
        assert one.cost.total + two.cost.total == D("0.001035")

    def test_streamed_afc_records_each_request(self, fake: FakeProvider,
                                               events: list[CostEvent]) -> None:
        """Streamed AFC records one stream event per billed request."""
        fake.configure("google", usage=USAGE, function_call=FakeFunctionCall(args={"city": "Oslo"}))
        calls: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chunks = list(client(fake).models.generate_content_stream(
                model=FLASH, contents="weather?",
                config=types.GenerateContentConfig(tools=[weather_tool(calls)])))
        assert calls == ["Oslo"] and chunks
        assert len(events) == 2 and all(e.stream for e in events)
        assert sum((e.cost.total for e in events if e.cost), D(0)) == 2 * FLASH_COST

    def test_async_afc_records_each_request(self, fake: FakeProvider,
                                            events: list[CostEvent]) -> None:
        """client.aio AFC records one event per billed request."""
        fake.configure("google", usage=USAGE, function_call=FakeFunctionCall(args={"city": "Rome"}))
        calls: list[str] = []

        async def main() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return await client(fake).aio.models.generate_content(
                    model=FLASH, contents="weather?",
                    config=types.GenerateContentConfig(tools=[weather_tool(calls)]))

        response = asyncio.run(main())
        assert calls == ["Rome"] and response.text == TEXT
        assert len(events) == 2 and all(e.cost and e.cost.total == FLASH_COST for e in events)


class TestAsync:
    def test_generate_content(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """client.aio.models.generate_content records one exact event."""
        fake.configure("google", usage=USAGE)

        async def main() -> Any:
            return await client(fake).aio.models.generate_content(model=FLASH, contents="hi")

        assert asyncio.run(main()).text == TEXT
        [event] = events
        assert (event.provider, event.model, event.requested_model, event.stream) == (
            "google", FLASH, FLASH, False)
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_stream(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """An async stream records once with the last chunk's cumulative usage and a TTFB."""
        fake.configure("google", usage=USAGE, stream_chunks=4)

        async def main() -> list[Any]:
            stream = await client(fake).aio.models.generate_content_stream(model=FLASH,
                                                                          contents="hi")
            return [chunk async for chunk in stream]

        chunks = asyncio.run(main())
        assert "".join(c.text for c in chunks) == TEXT and len(chunks) == 4
        [event] = events
        assert event.stream and event.ttfb_ms is not None and not event.estimated
        assert (event.usage.input_tokens, event.usage.output_tokens) == (2000, 420)
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_caller_sees_identical_results(self, fake: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """Async responses and chunks are the same with and without instrumentation."""
        fake.configure("google", usage=USAGE)

        async def main() -> tuple[Any, list[Any]]:
            aio = client(fake).aio
            response = await aio.models.generate_content(model=FLASH, contents="hi")
            stream = await aio.models.generate_content_stream(model=FLASH, contents="hi")
            return comparable(response), [comparable(c) async for c in stream]

        with uninstrumented():
            plain = asyncio.run(main())
        assert asyncio.run(main()) == plain and len(events) == 2

    def test_failure(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """Async failures re-raise the SDK's error and record one error event each."""
        fake.fail_next(429, provider="google", count=2)

        async def main() -> None:
            aio = client(fake).aio
            with pytest.raises(genai_errors.ClientError):
                await aio.models.generate_content(model=FLASH, contents="hi")
            with pytest.raises(genai_errors.ClientError):
                stream = await aio.models.generate_content_stream(model=FLASH, contents="hi")
                _ = [chunk async for chunk in stream]

        asyncio.run(main())
        assert [(e.status, e.error_type, e.stream) for e in events] == [
            ("error", "ClientError", False), ("error", "ClientError", True)]

    def test_dropped_stream_recorded_once(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """An async stream abandoned after one chunk is recorded once."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=300),
                       stream_chunks=3)

        async def main() -> None:
            stream = await client(fake).aio.models.generate_content_stream(model=FLASH,
                                                                          contents="hi")
            await stream.__anext__()
            await stream.aclose()

        asyncio.run(main())
        [event] = events
        assert event.stream and (event.usage.input_tokens, event.usage.output_tokens) == (1000, 100)
