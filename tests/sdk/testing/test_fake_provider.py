"""FakeProvider against the real OpenAI, Anthropic and Google SDK clients (sync and async)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from provider_versions import (  # tests/sdk, on sys.path through its conftest
    anthropic_cut_stream_error,
    openai_cut_stream_error,
)
from pydantic import BaseModel

from llmlab.testing._fake_provider import (
    FakeFunctionCall,
    FakeProvider,
    FakeUsage,
    fake_provider,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")
genai_types = pytest.importorskip("google.genai.types")
genai_errors = pytest.importorskip("google.genai.errors")
httpx2 = pytest.importorskip("httpx2")  # the HTTP client under openai/anthropic/google-genai

# Distinct numbers so a field read from the wrong place cannot pass by accident.
USAGE = FakeUsage(
    input_tokens=2000,
    output_tokens=300,
    cached_tokens=1000,
    cache_creation_5m_tokens=40,
    cache_creation_1h_tokens=60,
    reasoning_tokens=120,
    input_audio_tokens=7,
    output_audio_tokens=9,
    tool_use_prompt_tokens=11,
)
TEXT = "The quick brown fox jumps over the lazy dog."
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProvider]:
    yield from fake_provider(usage=USAGE, text=TEXT, stream_chunks=4)


@pytest.fixture
def fp(server: FakeProvider) -> FakeProvider:
    server.reset()
    return server


def openai_client(fp: FakeProvider, **kwargs: Any) -> Any:
    return openai.OpenAI(api_key="sk-test", base_url=fp.openai_base_url, max_retries=0, **kwargs)


def anthropic_client(fp: FakeProvider) -> Any:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=fp.anthropic_base_url, max_retries=0)


def genai_client(fp: FakeProvider) -> Any:
    return genai.Client(api_key="test-key", http_options=genai_types.HttpOptions(base_url=fp.google_base_url))


class City(BaseModel):
    name: str
    population: int


# --------------------------------------------------------------------------- the fake itself


def test_url_requires_start_and_stop_is_idempotent() -> None:
    """A FakeProvider has no URL until started and can be stopped twice."""
    fake = FakeProvider()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        assert fake.url.startswith("http://127.0.0.1:")
        assert fake.openai_base_url == fake.url + "/v1"
    fake.stop()


def test_records_requests_and_reset_forgets_them(fp: FakeProvider) -> None:
    """Requests are recorded with parsed body and lower-cased headers; reset() clears them."""
    assert fp.requests == []
    with openai_client(fp) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (req,) = fp.requests
    assert (req.method, req.path, req.provider, req.endpoint) == (
        "POST",
        "/v1/chat/completions",
        "openai",
        "openai.chat",
    )
    assert req.body["messages"] == MESSAGES and req.headers["authorization"] == "Bearer sk-test"
    fp.reset()
    assert fp.requests == []


def test_unknown_route_is_a_404_with_provider_shaped_body(fp: FakeProvider) -> None:
    """An unknown path answers 404 with an OpenAI-style error body and is still recorded."""
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(fp.url + "/v1/nope", data=b"{}")
    with info.value:
        assert info.value.code == 404
        assert "error" in json.loads(info.value.read())
    assert fp.requests[0].endpoint is None


def test_configure_one_provider_leaves_the_others(fp: FakeProvider) -> None:
    """configure(provider=...) changes only that provider's answers."""
    fp.configure("anthropic", model="claude-reported", text="only anthropic")
    with anthropic_client(fp) as client:
        msg = client.messages.create(model=CLAUDE, max_tokens=5, messages=MESSAGES)
    with openai_client(fp) as oai:
        chat = oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert (msg.model, msg.content[0].text) == ("claude-reported", "only anthropic")
    assert (chat.model, chat.choices[0].message.content) == ("gpt-4o", TEXT)


def test_burst_of_concurrent_async_requests(fp: FakeProvider) -> None:
    """Fifty simultaneous async calls all succeed (the listen backlog does not reset them)."""

    async def main() -> list[Any]:
        async with openai.AsyncOpenAI(api_key="k", base_url=fp.openai_base_url, max_retries=0) as client:
            calls = [client.chat.completions.create(model="gpt-4o", messages=MESSAGES) for _ in range(50)]
            return list(await asyncio.gather(*calls))

    assert all(r.usage.total_tokens == 2300 for r in asyncio.run(main()))
    assert len(fp.requests) == 50


def test_count_tokens_endpoints(fp: FakeProvider) -> None:
    """Anthropic and Gemini token-counting endpoints answer with the configured input tokens."""
    with anthropic_client(fp) as client:
        counted = client.messages.count_tokens(model=CLAUDE, messages=MESSAGES)
    with genai_client(fp) as gclient:
        gcounted = gclient.models.count_tokens(model="gemini-2.5-flash", contents="hi")
    assert counted.input_tokens == 2000 and gcounted.total_tokens == 2000


def test_first_byte_and_chunk_delays_are_applied(fp: FakeProvider) -> None:
    """first_byte_delay and chunk_delay slow the answer down by at least the configured time."""
    fp.configure(first_byte_delay=0.05, chunk_delay=0.01)
    with openai_client(fp) as client:
        start = time.perf_counter()
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.05 + 0.01 * (len(chunks) - 1)


# --------------------------------------------------------------------------- OpenAI


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


# --------------------------------------------------------------------------- Anthropic


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


# --------------------------------------------------------------------------- google-genai


def test_genai_generate_content_usage(fp: FakeProvider) -> None:
    """generate_content parses every usageMetadata count and the modelVersion."""
    with genai_client(fp) as client:
        resp = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    u = resp.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.thoughts_token_count) == (
        2000,
        300,
        120,
    )
    assert (u.cached_content_token_count, u.tool_use_prompt_token_count) == (1000, 11)
    assert u.total_token_count == 2000 + 300 + 120 + 11
    assert resp.model_version == "gemini-2.5-flash" and resp.text == TEXT
    assert fp.requests[0].path == "/v1/models/gemini-2.5-flash:generateContent"
    assert fp.requests[0].headers["x-goog-api-key"] == "test-key"


def test_genai_stream_usage_is_cumulative(fp: FakeProvider) -> None:
    """generate_content_stream yields every chunk, each with the running usage, the last exact."""
    with genai_client(fp) as client:
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text for c in chunks) == TEXT and len(chunks) == 4
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 300
    assert all(c.usage_metadata.prompt_token_count == 2000 for c in chunks)
    assert fp.requests[0].query == {"alt": "sse"}


def test_genai_async(fp: FakeProvider) -> None:
    """client.aio.models parses usage for generate_content and generate_content_stream."""

    async def main() -> tuple[Any, list[Any]]:
        async with genai_client(fp).aio as aio:
            resp = await aio.models.generate_content(model="gemini-2.5-pro", contents="hi")
            chunks = [
                c
                async for c in await aio.models.generate_content_stream(model="gemini-2.5-pro", contents="hi")
            ]
            return resp, chunks

    resp, chunks = asyncio.run(main())
    assert resp.usage_metadata.thoughts_token_count == 120
    assert chunks[-1].usage_metadata.total_token_count == 2431


def test_genai_automatic_function_calling_makes_two_billed_calls(fp: FakeProvider) -> None:
    """With a configured functionCall, google-genai AFC makes two HTTP calls, each with usage."""
    fp.configure("google", function_call=FakeFunctionCall(args={"city": "Paris"}))
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Return the weather for a city."""
        calls.append(city)
        return f"sunny in {city}"

    with genai_client(fp) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resp = client.models.generate_content(
            model="gemini-2.5-flash",
            contents="weather in Paris?",
            config=genai_types.GenerateContentConfig(tools=[get_weather]),
        )
    assert calls == ["Paris"] and resp.text == TEXT
    first, second = fp.requests
    assert "functionResponse" in second.body["contents"][-1]["parts"][0]
    assert "functionResponse" not in json.dumps(first.body)
    assert resp.usage_metadata.prompt_token_count == 2000


def test_genai_error_is_api_error(fp: FakeProvider) -> None:
    """An injected 429 surfaces as google.genai.errors.ClientError (an APIError) with its status."""
    fp.fail_next(429, provider="google")
    with genai_client(fp) as client, pytest.raises(genai_errors.APIError) as info:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert isinstance(info.value, genai_errors.ClientError)
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")


def test_genai_broken_stream_raises(fp: FakeProvider) -> None:
    """A cut Gemini stream raises in the client (no continuation token, so no silent resume)."""
    fp.break_next_stream(after_chunks=1)
    received: list[Any] = []
    with genai_client(fp) as client, pytest.raises(httpx2.RemoteProtocolError):
        for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
            received.append(chunk)
    assert len(received) == 1 and len(fp.requests) == 1


# --------------------------------------------------------------------------- google-generativeai


# google-generativeai itself passes a protobuf argument that protobuf 5 deprecates.
pytestmark_legacy = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def legacy(fp: FakeProvider) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns that it is deprecated
        legacy_genai = pytest.importorskip("google.generativeai")
    legacy_genai.configure(
        api_key="test-key",
        transport="rest",
        client_options={"api_endpoint": fp.google_legacy_endpoint},
    )
    return legacy_genai


@pytestmark_legacy
def test_legacy_rest_generate_content(fp: FakeProvider, legacy: Any) -> None:
    """Legacy REST generate_content (plain and stream=True JSON-array) parses usage_metadata."""
    model = legacy.GenerativeModel("gemini-1.5-flash")
    resp = model.generate_content("hi")
    stream = model.generate_content("hi", stream=True)
    pieces = [chunk.text for chunk in stream]
    assert resp.text == TEXT and "".join(pieces) == TEXT and len(pieces) == 4
    for usage in (resp.usage_metadata, stream.usage_metadata):
        assert (usage.prompt_token_count, usage.candidates_token_count) == (2000, 300)
        assert usage.cached_content_token_count == 1000
    paths = [(r.path, r.query) for r in fp.requests]
    assert paths == [
        ("/v1beta/models/gemini-1.5-flash:generateContent", {"$alt": "json;enum-encoding=int"}),
        (
            "/v1beta/models/gemini-1.5-flash:streamGenerateContent",
            {"$alt": "json;enum-encoding=int"},
        ),
    ]


@pytestmark_legacy
def test_legacy_rest_error(fp: FakeProvider, legacy: Any) -> None:
    """An injected 429 surfaces from the legacy REST client as google.api_core TooManyRequests."""
    from google.api_core import exceptions as core_exceptions

    fp.fail_next(429)
    with pytest.raises(core_exceptions.TooManyRequests):
        legacy.GenerativeModel("gemini-1.5-flash").generate_content("hi")


@pytestmark_legacy
def test_legacy_async_rest_is_not_supported(fp: FakeProvider, legacy: Any) -> None:
    """Pins the quirk: with transport="rest" generate_content_async sends the request synchronously,
    then fails awaiting the result, so the async legacy path must use gRPC."""
    with pytest.raises(TypeError, match="await"):
        asyncio.run(legacy.GenerativeModel("gemini-1.5-flash").generate_content_async("hi"))
    assert len(fp.requests) == 1


@pytestmark_legacy
def test_legacy_async_via_grpc(fp: FakeProvider, legacy: Any) -> None:
    """generate_content_async (plain, stream, error, broken stream) works via the gRPC frontend."""
    from google.api_core import exceptions as core_exceptions
    from google.generativeai import client as legacy_client

    async def main() -> tuple[Any, list[str], Any]:
        async_client = fp.google_legacy_async_client()
        legacy_client._client_manager.clients["generative_async"] = async_client
        try:
            model = legacy.GenerativeModel("gemini-1.5-flash")
            resp = await model.generate_content_async("hi")
            stream = await model.generate_content_async("hi", stream=True)
            pieces = [chunk.text async for chunk in stream]
            fp.fail_next(429)
            with pytest.raises(core_exceptions.TooManyRequests):
                await model.generate_content_async("hi")
            fp.break_next_stream(after_chunks=1)
            with pytest.raises(core_exceptions.ServiceUnavailable):
                broken = await model.generate_content_async("hi", stream=True)
                _ = [chunk async for chunk in broken]
            return resp, pieces, stream
        finally:
            await async_client.transport.close()

    resp, pieces, stream = asyncio.run(main())
    assert resp.usage_metadata.prompt_token_count == 2000 and resp.text == TEXT
    assert "".join(pieces) == TEXT and stream.usage_metadata.candidates_token_count == 300
    assert fp.requests[0].path == "/google.ai.generativelanguage.v1beta.GenerativeService/GenerateContent"
    assert fp.requests[0].body["model"] == "models/gemini-1.5-flash"
    assert len(fp.requests) == 4
