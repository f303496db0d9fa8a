"""The OpenAI integration: real openai clients against the fake provider, every surface."""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal
from typing import Any

import openai
import pytest

# tests/sdk, on sys.path through its conftest
from provider_versions import openai_cut_stream_error, openai_http
from pydantic import BaseModel

import llmlab
from llmlab.integrations.openai import provider_for_base_url, region_for_base_url
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

D = Decimal
MESSAGES = [{"role": "user", "content": "hello"}]
# gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M.
USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
GPT_4O_COST = D("0.00475")  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5


def client(fake: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)


def aclient(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=fake.openai_base_url, max_retries=0)


def strip_ids(value: Any) -> Any:
    """A response dump without the fields the fake randomises per call."""
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items()
                if k not in ("id", "created", "created_at", "item_id", "system_fingerprint")}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


class TestChatCompletions:
    def test_create_records_one_exact_event(self, fake: FakeProvider,
                                            events: list[CostEvent]) -> None:
        """A chat completion yields one event with normalised usage and the exact cost."""
        fake.configure("openai", usage=USAGE)
        response = client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert response.usage is not None and response.usage.prompt_tokens == 1200
        [event] = events
        assert (event.provider, event.model, event.requested_model, event.operation) == (
            "openai", "gpt-4o", "gpt-4o", "chat.completions")
        assert event.usage.cache_read_tokens == 1000 and event.usage.reasoning_tokens == 120
        assert event.cost is not None and event.cost.total == GPT_4O_COST
        assert event.status == "ok" and not event.stream and event.latency_ms is not None

    def test_stream_without_usage_request_gets_usage_and_hides_the_extra_chunk(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """llmlab asks for stream usage but the caller iterates only the chunks it asked for."""
        fake.configure("openai", usage=USAGE, stream_chunks=3)
        chunks = list(client(fake).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True))
        assert all(chunk.choices for chunk in chunks)
        assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
        [event] = events
        assert event.stream and not event.estimated and event.ttfb_ms is not None
        assert event.cost is not None and event.cost.total == GPT_4O_COST

    def test_stream_with_usage_requested_passes_the_usage_chunk(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """When the caller asked for usage, the usage chunk reaches the caller as usual."""
        fake.configure("openai", usage=USAGE)
        chunks = list(client(fake).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True,
            stream_options={"include_usage": True}))
        assert chunks[-1].usage is not None and not chunks[-1].choices
        assert events[0].cost is not None and events[0].cost.total == GPT_4O_COST

    def test_stream_helper_records_once(self, fake: FakeProvider,
                                        events: list[CostEvent]) -> None:
        """chat.completions.stream() goes through create and is recorded once."""
        fake.configure("openai", usage=USAGE)
        with client(fake).chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
            text = "".join(e.delta for e in stream if e.type == "content.delta")
        assert text == fake.openai.text
        assert len(events) == 1 and events[0].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_stream_closed_early_is_recorded_once_as_estimated(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """Breaking out of a stream and closing it records one estimated, cancelled event."""
        fake.configure("openai", stream_chunks=5, text="abcdefghijklmnopqrst")
        stream = client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                      stream=True)
        seen = ""
        for chunk in stream:
            seen += chunk.choices[0].delta.content or ""
            if seen:
                break
        stream.close()
        stream.close()
        [event] = events
        assert event.estimated and event.status == "cancelled"
        assert event.usage.output_tokens == -(-len(seen) // 4)  # ~4 characters a token
        assert event.usage.input_tokens > 0

    def test_dropped_stream_is_recorded_on_garbage_collection(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A stream abandoned without close is still recorded, once."""
        stream = client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                      stream=True)
        next(iter(stream))
        del stream
        gc.collect()
        assert len(events) == 1 and events[0].estimated

    def test_parse_is_recorded(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """chat.completions.parse (which bypasses create) is recorded once."""

        class Answer(BaseModel):
            answer: str

        fake.configure("openai", usage=USAGE)
        parsed = client(fake).chat.completions.parse(model="gpt-4o", messages=MESSAGES,
                                                      response_format=Answer)
        assert isinstance(parsed.choices[0].message.parsed, Answer)
        assert [e.operation for e in events] == ["chat.completions.parse"]
        assert events[0].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_with_raw_response_keeps_working_and_is_costed(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """with_raw_response returns the raw response; parse() works; one event is recorded."""
        fake.configure("openai", usage=USAGE)
        raw = client(fake).chat.completions.with_raw_response.create(model="gpt-4o",
                                                                     messages=MESSAGES)
        assert raw.headers.get("content-type", "").startswith("application/json")
        assert raw.parse().usage.prompt_tokens == 1200  # type: ignore[union-attr]
        assert len(events) == 1 and events[0].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_with_streaming_response_is_costed_when_parsed(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """with_streaming_response works as before and its parsed body is costed once."""
        fake.configure("openai", usage=USAGE)
        with client(fake).chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES) as response:
            completion = response.parse()
        assert completion.usage is not None
        assert len(events) == 1 and events[0].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_failed_call_records_error_and_reraises_the_original(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A 429 raises the SDK's own RateLimitError untouched and records an error event."""
        fake.fail_next(429, provider="openai", retry_after=2)
        with pytest.raises(openai.RateLimitError) as info:
            client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert info.value.status_code == 429
        [event] = events
        assert (event.status, event.error_type) == ("error", "RateLimitError")
        assert event.cost is not None and event.cost.total == 0

    def test_broken_stream_records_error_and_reraises(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A stream cut mid-way raises the SDK's own error to the caller and records an error."""
        fake.break_next_stream(after_chunks=1, provider="openai")
        with pytest.raises(openai_cut_stream_error()):
            list(client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                      stream=True))
        assert [e.status for e in events] == ["error"]


class TestResponsesAndEmbeddings:
    def test_responses_create(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """responses.create is recorded with the Responses usage shape."""
        fake.configure("openai", usage=USAGE)
        client(fake).responses.create(model="gpt-4o", input="hello")
        assert [e.operation for e in events] == ["responses"]
        assert events[0].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_responses_stream_helper(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """responses.stream() yields its events as before and records once from the final one."""
        fake.configure("openai", usage=USAGE)
        with client(fake).responses.stream(model="gpt-4o", input="hello") as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
        assert kinds[-1] == "response.completed" and final.usage is not None
        assert len(events) == 1 and events[0].stream
        assert events[0].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_responses_parse(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """responses.parse is recorded once."""

        class Answer(BaseModel):
            answer: str

        client(fake).responses.parse(model="gpt-4o", input="hello", text_format=Answer)
        assert [e.operation for e in events] == ["responses.parse"]

    def test_embeddings(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """embeddings.create is priced on its prompt tokens ($0.02/M for 3-small)."""
        fake.configure("openai", usage=FakeUsage(input_tokens=5000, output_tokens=0))
        result = client(fake).embeddings.create(model="text-embedding-3-small", input="hello")
        assert len(result.data[0].embedding) == fake.openai.embedding_dimensions
        assert events[0].operation == "embeddings"
        assert events[0].cost.total == D("0.0001")  # type: ignore[union-attr]


class TestAsync:
    def test_async_create_and_stream(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """AsyncOpenAI calls, plain and streamed, are recorded like sync ones."""
        fake.configure("openai", usage=USAGE)

        async def run() -> list[str]:
            ac = aclient(fake)
            await ac.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            stream = await ac.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                      stream=True)
            texts = [c.choices[0].delta.content or "" async for c in stream]
            await ac.responses.create(model="gpt-4o", input="hi")
            await ac.embeddings.create(model="text-embedding-3-small", input="hi")
            await ac.close()
            return texts

        texts = asyncio.run(run())
        assert "".join(texts) == fake.openai.text
        assert [(e.operation, e.stream) for e in events] == [
            ("chat.completions", False), ("chat.completions", True), ("responses", False),
            ("embeddings", False)]
        assert events[1].cost.total == GPT_4O_COST  # type: ignore[union-attr]

    def test_async_failure(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """An async failure re-raises the SDK error and records an error event."""
        fake.fail_next(500, provider="openai")

        async def run() -> None:
            async with aclient(fake) as ac:
                await ac.chat.completions.create(model="gpt-4o", messages=MESSAGES)

        with pytest.raises(openai.InternalServerError):
            asyncio.run(run())
        assert events[0].status == "error"


class TestTransparencyAndOnce:
    def test_caller_sees_identical_results(self, fake: FakeProvider) -> None:
        """Responses and streamed chunks are the same with and without llmlab."""
        fake.configure("openai", usage=USAGE)

        def run() -> tuple[Any, list[Any]]:
            c = client(fake)
            plain = c.chat.completions.create(model="gpt-4o", messages=MESSAGES).model_dump()
            chunks = [ch.model_dump() for ch in c.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True)]
            return strip_ids(plain), strip_ids(chunks)

        bare = run()
        llmlab.init(ledger=False)
        try:
            assert run() == bare
        finally:
            llmlab.shutdown()
            llmlab.uninstrument()

    def test_wrapped_client_under_global_patch_counts_once(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """llmlab.wrap() on a client whose class is already patched does not double count."""
        wrapped = llmlab.wrap(client(fake))
        wrapped.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert len(events) == 1

    def test_wrap_alone_instruments_one_client(self, fake: FakeProvider) -> None:
        """Without global patching, only the wrapped client's calls are recorded."""
        recorded: list[CostEvent] = []
        llmlab.init(ledger=False, auto_instrument=False, on_event=recorded.append)
        try:
            llmlab.wrap(client(fake)).chat.completions.create(model="gpt-4o", messages=MESSAGES)
            client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        finally:
            llmlab.shutdown()
        assert len(recorded) == 1

    def test_no_op_before_init(self, fake: FakeProvider) -> None:
        """Instrumented calls before init() work and record nothing."""
        llmlab.instrument("openai")
        try:
            response = client(fake).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        finally:
            llmlab.uninstrument()
        assert response.choices[0].message.content == fake.openai.text


class TestProviderDetection:
    @pytest.mark.parametrize(("host", "provider"), [
        ("api.openai.com", "openai"), ("myres.openai.azure.com", "azure"),
        ("api.groq.com", "groq"), ("api.deepseek.com", "deepseek"), ("openrouter.ai", "openrouter"),
        ("api.together.xyz", "together"), ("api.fireworks.ai", "fireworks"), ("api.x.ai", "xai"),
        ("api.mistral.ai", "mistral"), ("127.0.0.1", "openai"),
    ])
    def test_openai_compatible_hosts(self, host: str, provider: str) -> None:
        """OpenAI-compatible providers are recognised by their base URL host."""
        assert provider_for_base_url(host) == provider

    def test_client_base_url_decides_the_provider(self) -> None:
        """A client pointed at Groq or Azure is attributed to that provider, not to OpenAI."""
        from llmlab.integrations.openai import _provider

        groq = openai.OpenAI(api_key="k", base_url="https://api.groq.com/openai/v1")
        azure = openai.AzureOpenAI(api_key="k", api_version="2024-10-21",
                                   azure_endpoint="https://acme.openai.azure.com")
        assert _provider(groq.chat.completions) == "groq"
        assert _provider(azure.chat.completions) == "azure"
        assert _provider(openai.OpenAI(api_key="k").embeddings) == "openai"


class TestRegionalHosts:
    @pytest.mark.parametrize(("host", "region"), [
        ("eu.api.openai.com", "eu"), ("us.api.openai.com", "us"), ("api.openai.com", None),
        ("api.groq.com", None), ("eu.api.openai.com.evil.test", None),
    ])
    def test_region_of_a_host(self, host: str, region: str | None) -> None:
        """Only OpenAI's regional API hosts name a data-residency region."""
        assert region_for_base_url(host) == region

    @pytest.mark.parametrize("stream", [False, True])
    def test_regional_host_bills_the_uplift(self, fake: FakeProvider, events: list[CostEvent],
                                            stream: bool) -> None:
        """A client on eu.api.openai.com is billed gpt-5.5's 10 % EU regional uplift."""
        httpx = openai_http()  # the HTTP library the installed openai is built on

        target = httpx.URL(fake.openai_base_url)

        class ToFake(httpx.HTTPTransport):
            """Sends what the client addresses to eu.api.openai.com to the fake provider."""

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                request.url = request.url.copy_with(scheme=target.scheme, host=target.host,
                                                    port=target.port)
                return super().handle_request(request)

        fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
        eu = openai.OpenAI(api_key="sk-test", base_url="https://eu.api.openai.com/v1",
                           max_retries=0, http_client=httpx.Client(transport=ToFake()))
        result = eu.chat.completions.create(model="gpt-5.5", messages=MESSAGES, stream=stream)
        if stream:
            list(result)
        [event] = events
        # gpt-5.5: $5/M input, $30/M output; OpenAI's regional processing: x 1.1.
        assert event.cost is not None
        assert event.cost.total == (1000 * D("5") + 100 * D("30")) / 1_000_000 * D("1.1")
