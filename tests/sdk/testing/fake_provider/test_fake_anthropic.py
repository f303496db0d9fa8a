"""FakeProvider against the real Anthropic clients (sync and async)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fake_provider_helpers import CLAUDE, MESSAGES, TEXT, City, anthropic, anthropic_client
from provider_versions import (  # tests/sdk, on sys.path through its conftest
    anthropic_cut_stream_error,
)

from llmlab.testing._fake_provider import (
    FakeProvider,
)


def test_anthropic_messages_usage(fp: FakeProvider) -> None:
    """messages.create parses input, cache read/creation (5m/1h), output and thinking tokens."""
    with anthropic_client(fp) as client:
        msg = client.messages.create(model=CLAUDE, max_tokens=10, messages=MESSAGES)
    u = msg.usage
    assert (u.input_tokens, u.output_tokens) == (2000, 300)
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (1000, 100)
    assert (
        u.cache_creation.ephemeral_5m_input_tokens,
        u.cache_creation.ephemeral_1h_input_tokens,
    ) == (40, 60)
    assert u.output_tokens_details.thinking_tokens == 120
    assert msg.content[0].text == TEXT and msg.model == CLAUDE


def test_anthropic_raw_stream_events(fp: FakeProvider) -> None:
    """create(stream=True) yields message_start..message_stop; message_delta has total output."""
    with anthropic_client(fp) as client:
        events = list(client.messages.create(model=CLAUDE, max_tokens=10, messages=MESSAGES, stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_delta") == 4
    assert events[0].message.usage.cache_creation.ephemeral_1h_input_tokens == 60
    assert events[0].message.usage.output_tokens == 1  # placeholder, like the real API
    assert events[-2].usage.output_tokens == 300


def test_anthropic_stream_helper(fp: FakeProvider) -> None:
    """messages.stream() delivers every text chunk and a final message with the full usage."""
    with (
        anthropic_client(fp) as client,
        client.messages.stream(model=CLAUDE, max_tokens=10, messages=MESSAGES) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 4 and "".join(pieces) == TEXT
    assert (
        final.usage.input_tokens,
        final.usage.output_tokens,
        final.usage.cache_read_input_tokens,
    ) == (
        2000,
        300,
        1000,
    )


def test_anthropic_beta_messages(fp: FakeProvider) -> None:
    """client.beta.messages create and stream parse usage; the anthropic-beta header is recorded."""
    with anthropic_client(fp) as client:
        msg = client.beta.messages.create(
            model=CLAUDE, max_tokens=10, messages=MESSAGES, betas=["context-1m-2025-08-07"]
        )
        with client.beta.messages.stream(model=CLAUDE, max_tokens=10, messages=MESSAGES) as stream:
            final = stream.get_final_message()
    assert msg.usage.cache_creation.ephemeral_5m_input_tokens == 40
    assert final.usage.output_tokens == 300
    assert fp.requests[0].headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert fp.requests[0].path == "/v1/messages"


def test_anthropic_messages_parse(fp: FakeProvider) -> None:
    """messages.parse(output_format=...) sends output_config and parses the schema-shaped text."""
    with anthropic_client(fp) as client:
        parsed = client.messages.parse(model=CLAUDE, max_tokens=10, messages=MESSAGES, output_format=City)
    assert isinstance(parsed.parsed_output, City)
    assert fp.requests[0].body["output_config"]["format"]["type"] == "json_schema"
    assert parsed.usage.cache_read_input_tokens == 1000


def test_anthropic_async(fp: FakeProvider) -> None:
    """AsyncAnthropic parses usage from create, create(stream=True) and the stream helper."""

    async def main() -> tuple[Any, list[Any], Any]:
        async with anthropic.AsyncAnthropic(api_key="k", base_url=fp.anthropic_base_url, max_retries=0) as c:
            msg = await c.messages.create(model=CLAUDE, max_tokens=10, messages=MESSAGES)
            raw = [
                e
                async for e in await c.messages.create(
                    model=CLAUDE, max_tokens=10, messages=MESSAGES, stream=True
                )
            ]
            async with c.beta.messages.stream(model=CLAUDE, max_tokens=10, messages=MESSAGES) as s:
                final = await s.get_final_message()
            return msg, raw, final

    msg, raw, final = asyncio.run(main())
    assert msg.usage.cache_read_input_tokens == 1000
    assert raw[-2].usage.output_tokens == 300
    assert final.usage.input_tokens == 2000


@pytest.mark.parametrize(
    ("status", "exc_name", "error_type"),
    [(429, "RateLimitError", "rate_limit_error"), (529, "OverloadedError", "overloaded_error")],
)
def test_anthropic_errors(fp: FakeProvider, status: int, exc_name: str, error_type: str) -> None:
    """Injected errors surface as the anthropic SDK's own APIStatusError subclasses."""
    fp.fail_next(status, provider="anthropic")
    with anthropic_client(fp) as client, pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=CLAUDE, max_tokens=10, messages=MESSAGES)
    assert type(info.value).__name__ == exc_name and info.value.status_code == status
    assert info.value.body["error"]["type"] == error_type


def test_anthropic_broken_stream_raises(fp: FakeProvider) -> None:
    """A cut Anthropic stream raises in the stream helper, with the error this anthropic
    version raises for a peer that closed mid-body, after the chunks sent before the cut."""
    fp.break_next_stream(after_chunks=4)
    pieces: list[str] = []
    with anthropic_client(fp) as client, pytest.raises(anthropic_cut_stream_error()) as info:  # noqa: SIM117
        with client.messages.stream(model=CLAUDE, max_tokens=10, messages=MESSAGES) as stream:
            pieces.extend(stream.text_stream)
    assert "incomplete chunked read" in str(info.value)
    assert pieces == [TEXT[:11]]  # message_start, content_block_start, ping, first delta
