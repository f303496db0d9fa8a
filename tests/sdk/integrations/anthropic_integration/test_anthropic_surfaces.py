"""The anthropic integration: ``parse``, ``client.beta.messages`` and raw responses."""

from __future__ import annotations

import asyncio
from typing import Any

from anthropic_helpers import (
    BETA,
    BETA_KW,
    KW,
    STREAM_TYPES,
    TEXT,
    Answer,
    aclient,
    assert_full,
    client,
    dump,
    only,
    uninstrumented,
)

from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider


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
