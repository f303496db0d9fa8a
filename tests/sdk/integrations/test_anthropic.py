"""The anthropic integration against real ``anthropic`` clients talking to the FakeProvider.

Shapes the fake cannot produce (``inference_geo``, ``speed``, cumulative input counts in
``message_delta``, Vertex URLs) come from an ``httpx2.MockTransport`` behind a real client.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import wrapt
from pydantic import BaseModel

import llmlab
from llmlab.integrations import installed
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider
from llmlab.testing._fake_wire import FakeUsage
from llmlab.usage import Usage

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")

from llmlab.integrations.anthropic import AnthropicIntegration, _provider  # noqa: E402

HAIKU = "claude-haiku-4-5"
OPUS = "claude-opus-5-5"
TEXT = "Hello from FakeProvider!"
#: Anthropic's own fields: input excludes the 300 cache reads and 150 cache writes.
USAGE = FakeUsage(input_tokens=1000, output_tokens=200, cached_tokens=300,
                  cache_creation_5m_tokens=100, cache_creation_1h_tokens=50, reasoning_tokens=40)
#: claude-haiku-4-5 by hand: 1000 * $1/M + 300 * $0.10/M + 100 * $1.25/M + 50 * $2/M
#: + 200 * $5/M = 0.001 + 0.00003 + 0.000125 + 0.0001 + 0.001.
HAIKU_COST = Decimal("0.002255")
NORMALISED = Usage(input_tokens=1450, output_tokens=200, cache_read_tokens=300,
                   cache_write_tokens=100, cache_write_1h_tokens=50, reasoning_tokens=40)
KW: dict[str, Any] = {"model": HAIKU, "max_tokens": 256,
                      "messages": [{"role": "user", "content": "Say hello"}]}
BETA = "context-management-2025-06-27"
BETA_KW: dict[str, Any] = {**KW, "betas": [BETA]}
STREAM_TYPES = ["message_start", "content_block_start", "content_block_delta",
                "content_block_delta", "content_block_delta", "content_block_stop",
                "message_delta", "message_stop"]


class Answer(BaseModel):
    """A structured output."""

    city: str
    population: int


@pytest.fixture
def fp(fake: FakeProvider) -> FakeProvider:
    """The fake, reporting USAGE for Anthropic."""
    fake.configure("anthropic", usage=USAGE)
    return fake


_CLIENTS: dict[str, Any] = {}


def client(fp: FakeProvider, *, fresh: bool = False) -> Any:
    """A sync client of the fake; shared between tests unless ``fresh`` (they are costly)."""
    if fresh or fp.anthropic_base_url not in _CLIENTS:
        made = anthropic.Anthropic(api_key="k", base_url=fp.anthropic_base_url, max_retries=0)
        if fresh:
            return made
        _CLIENTS[fp.anthropic_base_url] = made
    return _CLIENTS[fp.anthropic_base_url]


def aclient(fp: FakeProvider) -> Any:
    return anthropic.AsyncAnthropic(api_key="k", base_url=fp.anthropic_base_url, max_retries=0)


@contextlib.contextmanager
def uninstrumented() -> Iterator[None]:
    """Run the block with llmlab's anthropic patches removed."""
    llmlab.uninstrument("anthropic")
    try:
        yield
    finally:
        llmlab.instrument("anthropic")


def dump(message: Any) -> dict[str, Any]:
    """A response without its per-call id."""
    data: dict[str, Any] = message.model_dump()
    data.pop("id")
    return data


def only(events: list[CostEvent]) -> CostEvent:
    """The single event recorded."""
    assert len(events) == 1, events
    return events[0]


def assert_full(event: CostEvent, *, operation: str, stream: bool) -> None:
    """The event of a completed call reporting USAGE on claude-haiku-4-5."""
    assert (event.provider, event.model, event.requested_model) == ("anthropic", HAIKU, HAIKU)
    assert event.operation == operation
    assert event.status == "ok" and event.error_type is None and not event.estimated
    assert event.stream is stream
    assert event.usage.model_dump() == NORMALISED.to_dict()
    assert event.cost is not None and event.cost.total == HAIKU_COST
    assert event.cost.cache_write == Decimal("0.000225")
    assert event.service_tier == "standard"
    assert event.latency_ms is not None and event.latency_ms > 0
    if stream:
        assert event.ttfb_ms is not None and 0 < event.ttfb_ms <= event.latency_ms
    else:
        assert event.ttfb_ms is None


# -- MockTransport helpers (shapes the fake cannot produce) ---------------------------------------


def message_json(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage}


def message_start(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_start",
            "message": {**message_json(model, usage), "content": [], "stop_reason": None}}


def sse_body(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def mock_client(body: dict[str, Any] | list[dict[str, Any]], *, cls: Any = None,
                **kwargs: Any) -> Any:
    """A real client whose HTTP layer answers every request with ``body`` (JSON or SSE)."""

    def handler(request: Any) -> Any:
        if isinstance(body, list):
            return httpx2.Response(200, content=sse_body(body),
                                   headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=body)

    factory = cls or anthropic.Anthropic
    is_async = factory.__name__.startswith("Async")
    http = (httpx2.AsyncClient if is_async else httpx2.Client)(
        transport=httpx2.MockTransport(handler))
    defaults = {"api_key": "k", "base_url": "http://mock.test"} if cls is None else {}
    return factory(http_client=http, max_retries=0, **{**defaults, **kwargs})


class TestSetup:
    """Registration, client wrapping and provider ids."""

    def test_registered_and_patched(self, events: list[CostEvent]) -> None:
        """`init(auto_instrument=True)` patches anthropic's create, stream and parse."""
        assert "anthropic" in installed()
        from anthropic.resources.beta.messages.messages import Messages as Beta
        from anthropic.resources.messages.messages import AsyncMessages, Messages

        for owner in (Messages, AsyncMessages, Beta):
            for name in ("create", "stream", "parse"):
                assert isinstance(vars(owner)[name], wrapt.FunctionWrapper), (owner, name)

    def test_teardown_restores_originals(self, events: list[CostEvent]) -> None:
        """Uninstrumenting puts the SDK's own functions back."""
        from anthropic.resources.messages.messages import Messages

        llmlab.uninstrument("anthropic")
        try:
            assert not isinstance(vars(Messages)["create"], wrapt.FunctionWrapper)
        finally:
            llmlab.instrument("anthropic")

    def test_wrap_client_rejects_other_types(self) -> None:
        """`wrap_client` returns False for objects that are not anthropic clients."""
        assert AnthropicIntegration().wrap_client(object()) is False

    def test_bedrock_provider_id(self) -> None:
        """An `AnthropicBedrock` client's calls are attributed to provider "bedrock"."""
        bedrock = anthropic.AnthropicBedrock(aws_access_key="a", aws_secret_key="b",
                                             aws_region="us-east-1")
        assert _provider(bedrock.messages) == "bedrock"
        assert _provider(anthropic.Anthropic(api_key="k").messages) == "anthropic"

    def test_vertex_calls_are_costed_as_vertex(self, events: list[CostEvent]) -> None:
        """A real `AnthropicVertex` call records provider "vertex" at Vertex's rates."""
        usage = {"input_tokens": 100, "output_tokens": 10}
        vertex = mock_client(message_json(HAIKU, usage), cls=anthropic.AnthropicVertex,
                             region="us-east5", project_id="p", access_token="t")
        vertex.messages.create(**KW)
        event = only(events)
        assert event.provider == "vertex"
        # 100 * $1/M + 10 * $5/M
        assert event.cost is not None and event.cost.total == Decimal("0.00015")


class TestCreate:
    """`messages.create`, plain and `stream=True`, sync and async."""

    def test_sync(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """A plain create is costed exactly and returns what the SDK returns."""
        with uninstrumented():
            expected = dump(client(fp).messages.create(**KW))
        assert not events
        assert dump(client(fp).messages.create(**KW)) == expected
        assert_full(only(events), operation="messages", stream=False)
        assert llmlab.cost(HAIKU, NORMALISED).total == HAIKU_COST

    def test_sync_stream(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`stream=True` yields the same events and records once when exhausted."""
        with uninstrumented():
            expected = [e.type for e in client(fp).messages.create(stream=True, **KW)]
        stream = client(fp).messages.create(stream=True, **KW)
        assert isinstance(stream, anthropic.Stream)
        assert not events
        assert [e.type for e in stream] == expected == STREAM_TYPES
        assert_full(only(events), operation="messages", stream=True)

    def test_sync_stream_context_manager(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """A `stream=True` result used as a context manager streams the same text."""
        with client(fp).messages.create(stream=True, **KW) as stream:
            text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
        assert text == TEXT
        assert_full(only(events), operation="messages", stream=True)

    def test_reported_model_differs_from_requested(self, fp: FakeProvider,
                                                   events: list[CostEvent]) -> None:
        """The model the API reports is recorded, next to the one requested."""
        fp.configure("anthropic", model="claude-haiku-4-5-20251001")
        client(fp).messages.create(**KW)
        event = only(events)
        assert (event.model, event.requested_model) == ("claude-haiku-4-5-20251001", HAIKU)
        assert event.cost is not None and event.cost.total == HAIKU_COST

    def test_async(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """An async create is costed exactly and returns what the SDK returns."""

        async def run() -> dict[str, Any]:
            async with aclient(fp) as c:
                return dump(await c.messages.create(**KW))

        with uninstrumented():
            expected = asyncio.run(run())
        assert asyncio.run(run()) == expected
        assert_full(only(events), operation="messages", stream=False)

    def test_async_stream(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """An async `stream=True` yields the same events and records once."""

        async def run() -> list[str]:
            async with aclient(fp) as c:
                stream = await c.messages.create(stream=True, **KW)
                assert isinstance(stream, anthropic.AsyncStream)
                return [e.type async for e in stream]

        with uninstrumented():
            expected = asyncio.run(run())
        assert asyncio.run(run()) == expected == STREAM_TYPES
        assert_full(only(events), operation="messages", stream=True)


class TestFailures:
    """Errors are recorded and the caller gets the SDK's own exception."""

    @pytest.mark.parametrize(("status", "error"), [(429, "RateLimitError"),
                                                   (529, "OverloadedError")])
    def test_sync_error(self, fp: FakeProvider, events: list[CostEvent], status: int,
                        error: str) -> None:
        """A 429 / 529 raises the SDK's exception and records an error event."""
        fp.fail_next(status, provider="anthropic")
        with pytest.raises(anthropic.APIStatusError) as info:
            client(fp).messages.create(**KW)
        assert type(info.value).__name__ == error and info.value.status_code == status
        event = only(events)
        assert (event.status, event.error_type, event.provider) == ("error", error, "anthropic")
        assert event.requested_model == HAIKU and not event.estimated
        assert event.usage.input_tokens == event.usage.output_tokens == 0
        assert event.cost is not None and event.cost.total == Decimal(0)

    def test_async_error(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """An async 429 raises `RateLimitError` and records an error event."""

        async def run() -> None:
            async with aclient(fp) as c:
                await c.messages.create(**KW)

        fp.fail_next(429, provider="anthropic")
        with pytest.raises(anthropic.RateLimitError):
            asyncio.run(run())
        assert (only(events).status, events[0].error_type) == ("error", "RateLimitError")

    def test_original_exception_object_is_reraised(self, fp: FakeProvider,
                                                   events: list[CostEvent]) -> None:
        """The very exception object the SDK raised reaches the caller, unwrapped."""
        c = client(fp, fresh=True)
        original = anthropic.APIConnectionError(request=httpx2.Request("POST", "http://x"))

        def boom(*args: Any, **kwargs: Any) -> Any:
            raise original

        c.messages._post = boom
        with pytest.raises(anthropic.APIConnectionError) as info:
            c.messages.create(**KW)
        assert info.value is original
        assert only(events).error_type == "APIConnectionError"

    def test_stream_helper_error_on_enter(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """A 529 when `messages.stream()` is entered raises and records a stream error."""
        fp.fail_next(529, provider="anthropic")
        manager = client(fp).messages.stream(**KW)
        with pytest.raises(anthropic.OverloadedError), manager:
            pass
        event = only(events)
        assert (event.status, event.error_type, event.stream) == ("error", "OverloadedError", True)

    def test_async_stream_helper_error_on_enter(self, fp: FakeProvider,
                                                events: list[CostEvent]) -> None:
        """A 429 when the async `messages.stream()` is entered raises and records an error."""

        async def run() -> None:
            async with aclient(fp) as c, c.messages.stream(**KW):
                pass

        fp.fail_next(429, provider="anthropic")
        with pytest.raises(anthropic.RateLimitError):
            asyncio.run(run())
        assert (only(events).status, events[0].stream) == ("error", True)

    def test_broken_helper_stream(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """A `messages.stream()` cut mid-way records one error, not a second event on exit."""
        fp.break_next_stream(after_chunks=2, provider="anthropic")
        with pytest.raises(Exception) as info, client(fp).messages.stream(**KW) as stream:
            stream.get_final_message()
        event = only(events)
        assert (event.status, event.error_type) == ("error", type(info.value).__name__)
        assert event.operation == "messages.stream"

    def test_broken_stream(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """A stream cut mid-way raises the SDK's error and records one error event."""
        fp.break_next_stream(after_chunks=3, provider="anthropic")
        with pytest.raises(Exception) as info:
            list(client(fp).messages.create(stream=True, **KW))
        event = only(events)
        assert (event.status, event.error_type) == ("error", type(info.value).__name__)
        assert event.stream is True


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


class TestParse:
    """`messages.parse` (structured outputs) posts directly and is costed on its own."""

    def test_sync(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`parse` returns the same parsed output and records one event."""
        with uninstrumented():
            expected = client(fp).messages.parse(output_format=Answer, **KW)
        parsed = client(fp).messages.parse(output_format=Answer, **KW)
        assert parsed.parsed_output == expected.parsed_output
        assert isinstance(parsed.parsed_output, Answer)
        assert_full(only(events), operation="messages.parse", stream=False)

    def test_async(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """Async `parse` returns the parsed output and records one event."""

        async def run() -> Any:
            async with aclient(fp) as c:
                return (await c.messages.parse(output_format=Answer, **KW)).parsed_output

        assert isinstance(asyncio.run(run()), Answer)
        assert_full(only(events), operation="messages.parse", stream=False)


class TestBeta:
    """`beta.messages`: create, stream=True, stream() and parse, sync and async."""

    def test_sync_surfaces(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """Every sync beta surface behaves as without llmlab and records once."""

        def run() -> list[Any]:
            beta = client(fp).beta.messages
            out: list[Any] = [dump(beta.create(**BETA_KW))]
            out.append([e.type for e in beta.create(stream=True, **BETA_KW)])
            with beta.stream(**BETA_KW) as stream:
                out.append(dump(stream.get_final_message()))
            out.append(beta.parse(output_format=Answer, **BETA_KW).parsed_output)
            return out

        with uninstrumented():
            expected = run()
        assert run() == expected
        assert [(e.operation, e.stream) for e in events] == [
            ("messages", False), ("messages", True), ("messages.stream", True),
            ("messages.parse", False)]
        for event in events:
            assert_full(event, operation=event.operation, stream=event.stream)
        assert [r.headers.get("anthropic-beta") for r in fp.requests] == [BETA] * 8

    def test_async_surfaces(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """Every async beta surface behaves as without llmlab and records once."""

        async def run() -> list[Any]:
            async with aclient(fp) as c:
                beta = c.beta.messages
                out: list[Any] = [dump(await beta.create(**BETA_KW))]
                out.append([e.type async for e in await beta.create(stream=True, **BETA_KW)])
                async with beta.stream(**BETA_KW) as stream:
                    out.append(await stream.get_final_text())
                out.append((await beta.parse(output_format=Answer, **BETA_KW)).parsed_output)
                return out

        with uninstrumented():
            expected = asyncio.run(run())
        assert asyncio.run(run()) == expected
        assert len(events) == 4
        for event in events:
            assert_full(event, operation=event.operation, stream=event.stream)


class TestRawResponses:
    """`with_raw_response` / `with_streaming_response` keep working and are costed once."""

    def test_raw_create_parse(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`with_raw_response.create(...).parse()` works and is costed once."""
        raw = client(fp).messages.with_raw_response.create(**KW)
        assert raw.http_response.status_code == 200
        first = raw.parse()
        assert raw.parse() is first
        assert first.content[0].text == TEXT
        assert_full(only(events), operation="messages", stream=False)

    def test_raw_create_never_parsed_is_costed(self, fp: FakeProvider,
                                               events: list[CostEvent]) -> None:
        """A raw response whose body was read is costed even if never parsed."""
        raw = client(fp).messages.with_raw_response.create(**KW)
        assert raw.headers.get("request-id")
        assert_full(only(events), operation="messages", stream=False)

    def test_raw_stream(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """A raw `stream=True` response is costed once its parsed stream is consumed."""
        raw = client(fp).messages.with_raw_response.create(stream=True, **KW)
        assert not events
        assert [e.type for e in raw.parse()] == STREAM_TYPES
        assert_full(only(events), operation="messages", stream=True)

    def test_streaming_response(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`with_streaming_response.create` is costed when parsed inside its block."""
        with client(fp).messages.with_streaming_response.create(**KW) as response:
            assert not events
            assert response.parse().content[0].text == TEXT
        assert_full(only(events), operation="messages", stream=False)

    def test_streaming_response_stream(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`with_streaming_response.create(stream=True)` streams and is costed once."""
        with client(fp).messages.with_streaming_response.create(stream=True, **KW) as response:
            assert [e.type for e in response.parse()] == STREAM_TYPES
        assert_full(only(events), operation="messages", stream=True)

    def test_beta_raw_parse(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """`beta.messages.with_raw_response.parse(...).parse()` works and is costed once."""
        raw = client(fp).beta.messages.with_raw_response.parse(output_format=Answer, **KW)
        assert isinstance(raw.parse().parsed_output, Answer)
        assert_full(only(events), operation="messages.parse", stream=False)

    def test_async_raw(self, fp: FakeProvider, events: list[CostEvent]) -> None:
        """Async `with_raw_response` and `with_streaming_response` work and cost once each."""

        async def run() -> list[Any]:
            async with aclient(fp) as c:
                raw = await c.messages.with_raw_response.create(**KW)
                text = (await raw.parse()).content[0].text
                raw_stream = await c.messages.with_raw_response.create(stream=True, **KW)
                types = [e.type async for e in await raw_stream.parse()]
                async with c.messages.with_streaming_response.create(**KW) as response:
                    streamed = (await response.parse()).content[0].text
                return [text, types, streamed]

        assert asyncio.run(run()) == [TEXT, STREAM_TYPES, TEXT]
        assert [e.stream for e in events] == [False, True, False]
        for event in events:
            assert_full(event, operation="messages", stream=event.stream)


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
