"""FakeProvider against the real OpenAI clients (sync and async)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fake_provider_helpers import MESSAGES, TEXT, City, openai, openai_client
from provider_versions import (  # tests/sdk, on sys.path through its conftest
    openai_cut_stream_error,
)

from llmlab.testing._fake_provider import (
    FakeProvider,
)


def test_openai_chat_usage_is_parsed(fp: FakeProvider) -> None:
    """A non-streamed chat completion carries every configured usage number and the echoed model."""
    with openai_client(fp) as client:
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    u = resp.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (2000, 300, 2300)
    assert u.prompt_tokens_details.cached_tokens == 1000
    assert u.prompt_tokens_details.audio_tokens == 7
    assert u.completion_tokens_details.reasoning_tokens == 120
    assert u.completion_tokens_details.audio_tokens == 9
    assert resp.model == "gpt-4o-mini" and resp.choices[0].message.content == TEXT


def test_openai_round_trip_is_fast(fp: FakeProvider) -> None:
    """Keep-alive + TCP_NODELAY keep a plain call at a few ms (printed, not asserted)."""
    with openai_client(fp) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # warm the connection
        n = 20
        start = time.perf_counter()
        for _ in range(n):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        per_call_ms = (time.perf_counter() - start) / n * 1000
    print(f"openai non-streaming round trip: {per_call_ms:.2f} ms")


def test_openai_chat_stream_with_include_usage(fp: FakeProvider) -> None:
    """With include_usage, all text deltas arrive and only a final empty-choices chunk has usage."""
    with openai_client(fp) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 1000
    assert fp.requests[0].stream and fp.requests[0].body["stream_options"] == {"include_usage": True}


def test_openai_chat_stream_without_include_usage(fp: FakeProvider) -> None:
    """Without stream_options the stream carries no usage at all, like the real API."""
    with openai_client(fp) as client:
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_chat_parse_structured_output(fp: FakeProvider) -> None:
    """chat.completions.parse gets JSON: the configured text, or a schema-derived instance."""
    with openai_client(fp) as client:
        fp.configure("openai", text='{"name": "Paris", "population": 2100000}')
        parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=City)
        assert parsed.choices[0].message.parsed == City(name="Paris", population=2100000)
        fp.configure("openai", text="not json")
        synthesized = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=City)
        assert isinstance(synthesized.choices[0].message.parsed, City)
    assert fp.requests[0].body["response_format"]["type"] == "json_schema"
    assert parsed.usage.prompt_tokens == 2000


def test_openai_responses_create_usage(fp: FakeProvider) -> None:
    """responses.create parses usage including cached and reasoning token details."""
    with openai_client(fp) as client:
        resp = client.responses.create(model="gpt-5", input="hi")
    u = resp.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (2000, 300, 2300)
    assert u.input_tokens_details.cached_tokens == 1000
    assert u.output_tokens_details.reasoning_tokens == 120
    assert resp.output_text == TEXT and resp.model == "gpt-5"


def test_openai_responses_raw_stream_event_sequence(fp: FakeProvider) -> None:
    """responses.create(stream=True) yields created..completed, ending with the usage."""
    with openai_client(fp) as client:
        events = list(client.responses.create(model="gpt-5", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types.count("response.output_text.delta") == 4
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.usage.input_tokens_details.cached_tokens == 1000


def test_openai_responses_stream_helper(fp: FakeProvider) -> None:
    """The responses.stream() helper accumulates the text and returns the final usage."""
    with openai_client(fp) as client, client.responses.stream(model="gpt-5", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == TEXT == final.output_text
    assert final.usage.output_tokens_details.reasoning_tokens == 120


def test_openai_responses_parse(fp: FakeProvider) -> None:
    """responses.parse(text_format=...) parses the schema-shaped output."""
    fp.configure("openai", text='{"name": "Lyon", "population": 500000}')
    with openai_client(fp) as client:
        resp = client.responses.parse(model="gpt-5", input="hi", text_format=City)
    assert resp.output_parsed == City(name="Lyon", population=500000)
    assert fp.requests[0].body["text"]["format"]["type"] == "json_schema"


def test_openai_embeddings_default_base64(fp: FakeProvider) -> None:
    """The SDK silently asks for base64 embeddings and decodes the fake's float32 payload."""
    with openai_client(fp) as client:
        resp = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        explicit = client.embeddings.create(
            model="text-embedding-3-small", input="a", encoding_format="float"
        )
    assert fp.requests[0].body["encoding_format"] == "base64"
    assert (resp.usage.prompt_tokens, resp.usage.total_tokens) == (2000, 2000)
    assert len(resp.data) == 2 and len(resp.data[1].embedding) == 8
    assert resp.data[0].embedding == pytest.approx(explicit.data[0].embedding, rel=1e-6)


def test_openai_async_chat_stream_and_responses(fp: FakeProvider) -> None:
    """AsyncOpenAI parses usage from a chat call, a chat stream and a responses stream."""

    async def main() -> tuple[Any, Any, Any]:
        async with openai.AsyncOpenAI(api_key="k", base_url=fp.openai_base_url, max_retries=0) as client:
            chat = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [c async for c in stream]
            async with client.responses.stream(model="gpt-5", input="hi") as rs:
                final = await rs.get_final_response()
            return chat, chunks, final

    chat, chunks, final = asyncio.run(main())
    assert chat.usage.prompt_tokens_details.cached_tokens == 1000
    assert chunks[-1].usage.completion_tokens == 300
    assert final.usage.total_tokens == 2300


def test_openai_error_is_rate_limit_error_with_retry_after(fp: FakeProvider) -> None:
    """An injected 429 surfaces as openai.RateLimitError with OpenAI's body and Retry-After."""
    fp.fail_next(429, retry_after=3, message="slow down")
    with openai_client(fp) as client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.body["code"] == "rate_limit_exceeded" and "slow down" in info.value.message
    assert info.value.response.headers["retry-after"] == "3"


def test_openai_retries_then_succeeds(fp: FakeProvider) -> None:
    """With max_retries=1, one injected 503 is retried and both HTTP attempts are recorded."""
    fp.fail_next(503, retry_after=0.01)
    with openai.OpenAI(api_key="k", base_url=fp.openai_base_url, max_retries=1) as client:
        resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp.usage.total_tokens == 2300 and len(fp.requests) == 2


def test_openai_broken_stream_raises(fp: FakeProvider) -> None:
    """A stream cut mid-way raises (openai's error for it in this version) after the first
    chunks."""
    fp.break_next_stream(after_chunks=2)
    with openai_client(fp) as client:
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        received = []
        with pytest.raises(openai_cut_stream_error()):
            for chunk in stream:
                received.append(chunk)
        assert len(received) == 2
        # The server survives: the next call on the same client succeeds.
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).usage.total_tokens == 2300
