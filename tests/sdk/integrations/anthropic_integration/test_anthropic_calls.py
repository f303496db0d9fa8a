"""The anthropic integration: setup, ``messages.create`` and failures (real clients, the fake)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
import wrapt
from anthropic_helpers import (
    HAIKU,
    HAIKU_COST,
    KW,
    NORMALISED,
    STREAM_TYPES,
    TEXT,
    aclient,
    anthropic,
    assert_full,
    client,
    dump,
    httpx2,
    message_json,
    mock_client,
    only,
    uninstrumented,
)

import llmlab
from llmlab.integrations import installed
from llmlab.integrations.anthropic import AnthropicIntegration, _provider
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


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
