"""The google-generativeai (legacy) integration: real GenerativeModels against the fake provider."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the package warns that it is deprecated
    legacy = pytest.importorskip("google.generativeai")
from google.api_core import exceptions as core_exceptions
from google.generativeai import client as legacy_client

import llmlab
from llmlab import integrations
from llmlab.integrations.google_generativeai import GoogleGenerativeAIIntegration
from llmlab.schema import CostEvent
from llmlab.testing import FakeFunctionCall, FakeProvider, FakeUsage

# google-generativeai itself passes a protobuf argument that protobuf 5 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

D = Decimal
FLASH = "gemini-2.5-flash"
TEXT = "Hello from FakeProvider!"
# gemini-2.5-flash: input $0.30/M, cache read $0.03/M, output (thoughts included) $2.50/M.
USAGE = FakeUsage(input_tokens=2000, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
# 1000 uncached x 3e-7 + 1000 cached x 3e-8 + (300 + 120) x 2.5e-6
FLASH_COST = D("0.00138")


@pytest.fixture(autouse=True)
def rest(fake: FakeProvider) -> None:
    """Point the legacy SDK's REST transport at the fake."""
    legacy.configure(api_key="k", transport="rest",
                     client_options={"api_endpoint": fake.google_legacy_endpoint})


def model(name: str = FLASH, **kwargs: Any) -> Any:
    return legacy.GenerativeModel(name, **kwargs)


@contextmanager
def uninstrumented() -> Iterator[None]:
    """Run a block with google-generativeai unpatched (to compare what the caller sees)."""
    integrations.uninstrument("google_generativeai")
    try:
        yield
    finally:
        integrations.instrument("google_generativeai")


def run_async(fake: FakeProvider, body: Any) -> Any:
    """Run ``body(model)`` in a fresh loop with the async client on the fake's gRPC frontend."""

    async def main() -> Any:
        async_client = fake.google_legacy_async_client()
        legacy_client._client_manager.clients["generative_async"] = async_client
        try:
            return await body(model())
        finally:
            await async_client.transport.close()

    return asyncio.run(main())


def get_weather(city: str) -> str:
    """Return the weather for a city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap() -> Iterator[None]:
    """Import every instrumented SDK once, then move that heap out of the collector's way:
    full collections otherwise take most of this module's run time."""
    integrations.instrument()
    integrations.uninstrument()
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


class TestGenerateContent:
    def test_records_one_exact_event(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A generate_content call yields one event with normalised usage and the exact cost."""
        fake.configure("google", usage=USAGE)
        response = model().generate_content("hi")
        assert response.text == TEXT and response.usage_metadata.prompt_token_count == 2000
        [event] = events
        assert (event.provider, event.model, event.requested_model, event.operation) == (
            "google", FLASH, FLASH, "generate_content")
        assert (event.usage.input_tokens, event.usage.cache_read_tokens) == (2000, 1000)
        assert event.status == "ok" and not event.stream and event.ttfb_ms is None
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_thinking_tokens_are_costed(self, fake: FakeProvider,
                                        events: list[CostEvent]) -> None:
        """The old proto drops thoughtsTokenCount; llmlab recovers it from totalTokenCount."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=100,
                                                 reasoning_tokens=2000))
        response = model().generate_content("hi")
        assert "thoughts_token_count" not in type(response.usage_metadata).meta.fields
        [event] = events
        assert (event.usage.output_tokens, event.usage.reasoning_tokens) == (2100, 2000)
        # 1000 x 3e-7 + 2100 x 2.5e-6
        assert event.cost is not None and event.cost.total == D("0.00555")

    def test_models_prefix_is_stripped(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A ``models/…`` model name is recorded bare."""
        model(f"models/{FLASH}").generate_content("hi")
        [event] = events
        assert (event.model, event.requested_model) == (FLASH, FLASH)

    def test_caller_sees_identical_response(self, fake: FakeProvider,
                                            events: list[CostEvent]) -> None:
        """The response is the same with and without instrumentation."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            plain = model().generate_content("hi")
        instrumented = model().generate_content("hi")
        assert type(instrumented) is type(plain) and instrumented.to_dict() == plain.to_dict()
        assert len(events) == 1

    def test_failure_records_error_and_reraises_original(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A 429 raises google.api_core's TooManyRequests and records one error event."""
        fake.fail_next(429, provider="google")
        with pytest.raises(core_exceptions.TooManyRequests):
            model().generate_content("hi")
        [event] = events
        assert (event.status, event.error_type, event.stream) == (
            "error", "TooManyRequests", False)
        assert (event.provider, event.model) == ("google", FLASH)


class TestStream:
    def test_stream_keeps_working_and_uses_last_usage(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """The streamed response iterates, then has .text and .usage_metadata; the event takes
        the last chunk's cumulative usage, not the sum of the chunks."""
        fake.configure("google", usage=USAGE, stream_chunks=3)
        response = model().generate_content("hi", stream=True)
        assert type(response).__name__ == "GenerateContentResponse"
        assert "".join(chunk.text for chunk in response) == TEXT
        assert response.text == TEXT and response.usage_metadata.candidates_token_count == 300
        [event] = events
        assert event.stream and event.ttfb_ms is not None and not event.estimated
        assert (event.usage.input_tokens, event.usage.output_tokens) == (2000, 420)
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_resolve_records_once(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """resolve() reads the rest of the stream and the call is recorded once."""
        fake.configure("google", usage=USAGE)
        response = model().generate_content("hi", stream=True)
        response.resolve()
        response.resolve()
        assert response.text == TEXT and list(c.text for c in response)
        assert len(events) == 1 and events[0].cost is not None
        assert events[0].cost.total == FLASH_COST

    def test_caller_sees_identical_stream(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """Chunks and the final response are the same with and without instrumentation."""
        fake.configure("google", usage=USAGE)

        def consume() -> tuple[list[Any], Any]:
            response = model().generate_content("hi", stream=True)
            return [chunk.to_dict() for chunk in response], response.to_dict()

        with uninstrumented():
            plain = consume()
        assert consume() == plain and len(events) == 1

    def test_broken_stream_records_one_error(self, fake: FakeProvider,
                                             events: list[CostEvent]) -> None:
        """A stream cut after the first chunk raises the transport's error, recorded once."""
        import requests

        fake.break_next_stream(after_chunks=1, provider="google")
        response = model().generate_content("hi", stream=True)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(response)
        [event] = events
        assert (event.status, event.error_type, event.stream) == (
            "error", "ChunkedEncodingError", True)

    def test_dropped_stream_recorded_once(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """A streamed response dropped after its first chunk is recorded once, after gc."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=300),
                       stream_chunks=3)
        response = model().generate_content("hi", stream=True)
        assert events == []
        del response
        gc.collect()
        [event] = events
        # the first chunk's running total: 1000 x 3e-7 + 100 x 2.5e-6
        assert event.stream and (event.usage.input_tokens, event.usage.output_tokens) == (1000, 100)
        assert event.cost is not None and event.cost.total == D("0.00055")


class TestChatSession:
    def test_send_message_counts_once(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """ChatSession.send_message, plain and streamed, is one event per message."""
        fake.configure("google", usage=USAGE)
        chat = model().start_chat()
        chat.send_message("hi")
        response = chat.send_message("more", stream=True)
        response.resolve()
        assert len(chat.history) == 4
        assert [e.stream for e in events] == [False, True]
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    def test_automatic_function_calling_counts_every_request(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A chat with automatic function calling records both billed requests."""
        fake.configure("google", usage=USAGE, function_call=FakeFunctionCall(args={"city": "Oslo"}))
        chat = model(tools=[get_weather]).start_chat(enable_automatic_function_calling=True)
        assert chat.send_message("weather?").text == TEXT
        assert len(fake.requests) == 2 and len(events) == 2
        assert sum((e.cost.total for e in events if e.cost), D(0)) == 2 * FLASH_COST


class TestAsync:
    def test_generate_content_async(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """generate_content_async, plain and streamed, records exact events over gRPC."""
        fake.configure("google", usage=USAGE, stream_chunks=3)

        async def body(m: Any) -> tuple[Any, list[str], Any]:
            response = await m.generate_content_async("hi")
            stream = await m.generate_content_async("hi", stream=True)
            return response, [chunk.text async for chunk in stream], stream

        response, pieces, stream = run_async(fake, body)
        assert response.text == TEXT and "".join(pieces) == TEXT
        assert stream.usage_metadata.candidates_token_count == 300
        plain, streamed = events
        assert (plain.stream, streamed.stream) == (False, True) and streamed.ttfb_ms is not None
        assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (2000, 420)
        assert all((e.provider, e.model, e.requested_model) == ("google", FLASH, FLASH)
                   for e in events)
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    def test_async_failures(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """Async errors, before and during a stream, re-raise the SDK's error and record once."""

        async def body(m: Any) -> None:
            fake.fail_next(429, provider="google")
            with pytest.raises(core_exceptions.ResourceExhausted):  # gRPC's 429
                await m.generate_content_async("hi")
            fake.break_next_stream(after_chunks=1, provider="google")
            with pytest.raises(core_exceptions.ServiceUnavailable):
                stream = await m.generate_content_async("hi", stream=True)
                _ = [chunk async for chunk in stream]

        run_async(fake, body)
        assert [(e.status, e.error_type, e.stream) for e in events] == [
            ("error", "ResourceExhausted", False), ("error", "ServiceUnavailable", True)]

    def test_async_resolve_and_identical_results(self, fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
        """An async stream resolved with resolve() matches the uninstrumented one."""
        fake.configure("google", usage=USAGE)

        async def body(m: Any) -> Any:
            stream = await m.generate_content_async("hi", stream=True)
            await stream.resolve()
            return stream.to_dict()

        with uninstrumented():
            plain = run_async(fake, body)
        assert run_async(fake, body) == plain
        assert len(events) == 1 and events[0].cost is not None
        assert events[0].cost.total == FLASH_COST


class TestWrapClient:
    def test_wrap_under_global_instrumentation_counts_once(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """llmlab.wrap on a GenerativeModel of a patched library records each call once."""
        fake.configure("google", usage=USAGE)
        wrapped = llmlab.wrap(model())
        wrapped.generate_content("hi")
        wrapped.generate_content("hi", stream=True).resolve()
        assert [e.stream for e in events] == [False, True]
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    def test_wrap_alone_instruments_the_instance(self, fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
        """Without global patching, a wrapped model is recorded and an unwrapped one is not."""
        with uninstrumented():
            wrapped = llmlab.wrap(model())
            llmlab.wrap(wrapped)  # wrapping twice does not double count
            wrapped.generate_content("hi")
            model().generate_content("hi")
        [event] = events
        assert (event.provider, event.model) == ("google", FLASH)

    def test_wrap_client_rejects_other_types(self) -> None:
        """wrap_client is False for anything but a GenerativeModel."""
        assert GoogleGenerativeAIIntegration().wrap_client(object()) is False
