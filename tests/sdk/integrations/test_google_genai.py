"""The google-genai integration: real genai clients against the fake provider, every surface."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types  # noqa: E402

import llmlab  # noqa: E402
from llmlab import integrations  # noqa: E402
from llmlab.integrations.google_genai import GoogleGenAIIntegration, model_name  # noqa: E402
from llmlab.schema import CostEvent  # noqa: E402
from llmlab.testing import FakeFunctionCall, FakeProvider, FakeUsage  # noqa: E402

D = Decimal
FLASH = "gemini-2.5-flash"
TEXT = "Hello from FakeProvider!"
# gemini-2.5-flash: input $0.30/M, cache read $0.03/M, output (thoughts included) $2.50/M.
USAGE = FakeUsage(input_tokens=2000, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
# 1000 uncached x 3e-7 + 1000 cached x 3e-8 + (300 + 120) x 2.5e-6
FLASH_COST = D("0.00138")


_CLIENTS: list[Any] = []


def client(fake: FakeProvider, **options: Any) -> Any:
    """A client against the fake, kept alive until the test ends (a dropped genai.Client closes
    its HTTP client in __del__, even while ``client.models`` is still in use)."""
    made = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.google_base_url),
                        **options)
    _CLIENTS.append(made)
    return made


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


@contextmanager
def uninstrumented() -> Iterator[None]:
    """Run a block with google-genai unpatched (to compare what the caller sees)."""
    integrations.uninstrument("google_genai")
    try:
        yield
    finally:
        integrations.instrument("google_genai")


def comparable(response: Any) -> Any:
    """A response dump without what the fake randomises per call."""
    return response.model_dump(exclude={"response_id", "sdk_http_response"})


def weather_tool(calls: list[str], then: Any = None) -> Any:
    def get_weather(city: str) -> str:
        """Return the weather for a city."""
        calls.append(city)
        if then is not None:
            then()
        return f"sunny in {city}"

    return get_weather


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
        response = client(fake).models.generate_content(model=FLASH, contents="hi")
        assert response.text == TEXT
        [event] = events
        assert (event.provider, event.model, event.requested_model, event.operation) == (
            "google", FLASH, FLASH, "generate_content")
        assert (event.usage.input_tokens, event.usage.output_tokens) == (2000, 420)
        assert (event.usage.cache_read_tokens, event.usage.reasoning_tokens) == (1000, 120)
        assert event.cost is not None and event.cost.total == FLASH_COST
        assert event.status == "ok" and not event.stream and not event.estimated
        assert event.ttfb_ms is None and event.latency_ms is not None

    def test_thinking_tokens_are_costed_as_output(self, fake: FakeProvider,
                                                  events: list[CostEvent]) -> None:
        """Thoughts are billed at the output rate even though candidates exclude them."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=0,
                                                 reasoning_tokens=2000))
        client(fake).models.generate_content(model=FLASH, contents="hi")
        [event] = events
        assert event.usage.output_tokens == 2000 and event.usage.reasoning_tokens == 2000
        # 1000 x 3e-7 + 2000 x 2.5e-6
        assert event.cost is not None and event.cost.total == D("0.0053")

    def test_tool_use_prompt_tokens_are_input(self, fake: FakeProvider,
                                              events: list[CostEvent]) -> None:
        """toolUsePromptTokenCount joins the input tokens and is priced as input."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=100,
                                                 tool_use_prompt_tokens=500))
        client(fake).models.generate_content(model=FLASH, contents="hi")
        [event] = events
        assert event.usage.input_tokens == 1500
        # 1500 x 3e-7 + 100 x 2.5e-6
        assert event.cost is not None and event.cost.total == D("0.0007")

    def test_audio_input_is_priced_at_the_audio_rate(self, fake: FakeProvider,
                                                     events: list[CostEvent]) -> None:
        """Audio prompt tokens (promptTokensDetails AUDIO) are billed at the audio input rate."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=100,
                                                 input_audio_tokens=400))
        client(fake).models.generate_content(model=FLASH, contents="hi")
        [event] = events
        assert event.usage.audio_input_tokens == 400
        # 600 x 3e-7 + 400 x 1e-6 (audio input) + 100 x 2.5e-6
        assert event.cost is not None and event.cost.total == D("0.00083")

    def test_models_prefix_is_stripped(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A ``models/…`` request is recorded under the bare model name, and priced."""
        fake.configure("google", usage=USAGE)
        client(fake).models.generate_content(model=f"models/{FLASH}", contents="hi")
        [event] = events
        assert (event.model, event.requested_model) == (FLASH, FLASH)
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_response_model_version_wins(self, fake: FakeProvider,
                                         events: list[CostEvent]) -> None:
        """The model the response reports (modelVersion) is the event's model."""
        fake.configure("google", usage=USAGE, model="gemini-2.5-flash-lite")
        client(fake).models.generate_content(model=FLASH, contents="hi")
        [event] = events
        assert (event.model, event.requested_model) == ("gemini-2.5-flash-lite", FLASH)
        # flash-lite: input $0.10/M, cache read $0.01/M, output $0.40/M
        assert event.cost is not None and event.cost.total == D("0.000278")

    def test_caller_sees_identical_response(self, fake: FakeProvider,
                                            events: list[CostEvent]) -> None:
        """The response is the same with and without instrumentation."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            plain = client(fake).models.generate_content(model=FLASH, contents="hi")
        assert events == []
        instrumented = client(fake).models.generate_content(model=FLASH, contents="hi")
        assert type(instrumented) is type(plain)
        assert comparable(instrumented) == comparable(plain)
        assert len(events) == 1

    def test_failure_records_error_and_reraises_original(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A 429 raises the SDK's own ClientError and records one error event."""
        fake.fail_next(429, provider="google")
        with pytest.raises(genai_errors.ClientError) as info:
            client(fake).models.generate_content(model=FLASH, contents="hi")
        assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")
        [event] = events
        assert (event.status, event.error_type, event.stream) == ("error", "ClientError", False)
        assert (event.provider, event.model) == ("google", FLASH)
        assert event.usage.input_tokens == event.usage.output_tokens == 0 and event.cost is not None
        assert event.cost.total == 0

    def test_http_response_mode_reads_usage_from_the_body(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """With should_return_http_response the usage is read from the raw JSON body."""
        fake.configure("google", usage=USAGE)
        config = types.GenerateContentConfig(should_return_http_response=True)
        response = client(fake).models.generate_content(model=FLASH, contents="hi",
                                                        config=config)
        assert response.usage_metadata is None and response.sdk_http_response is not None
        [event] = events
        assert not event.estimated and event.cost is not None
        assert event.cost.total == FLASH_COST

    def test_chat_send_message_counts_once(self, fake: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """client.chats goes through the same per-request method: one event per message."""
        fake.configure("google", usage=USAGE)
        chat = client(fake).chats.create(model=FLASH)
        chat.send_message("hi")
        chat.send_message("again")
        assert len(events) == 2 and all(e.cost is not None and e.cost.total == FLASH_COST
                                        for e in events)


class TestGenerateContentStream:
    def test_stream_uses_last_cumulative_usage(self, fake: FakeProvider,
                                               events: list[CostEvent]) -> None:
        """Each chunk carries the running usage: the last one is taken, never the sum."""
        fake.configure("google", usage=USAGE, stream_chunks=3)
        chunks = list(client(fake).models.generate_content_stream(model=FLASH, contents="hi"))
        assert "".join(c.text for c in chunks) == TEXT and len(chunks) == 3
        assert all(c.usage_metadata.prompt_token_count == 2000 for c in chunks)
        [event] = events
        assert event.stream and event.ttfb_ms is not None and not event.estimated
        assert (event.provider, event.model, event.requested_model, event.operation) == (
            "google", FLASH, FLASH, "generate_content")
        assert (event.usage.input_tokens, event.usage.output_tokens) == (2000, 420)
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_caller_sees_identical_chunks(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """The streamed chunks are the same with and without instrumentation."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            plain = list(client(fake).models.generate_content_stream(model=FLASH, contents="a"))
        instrumented = list(client(fake).models.generate_content_stream(model=FLASH, contents="a"))
        assert [comparable(c) for c in instrumented] == [comparable(c) for c in plain]
        assert len(events) == 1

    def test_stream_failure_records_error(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """A rejected stream raises the SDK's ClientError on iteration and records one error."""
        fake.fail_next(503, provider="google")
        with pytest.raises(genai_errors.ServerError) as info:
            list(client(fake).models.generate_content_stream(model=FLASH, contents="hi"))
        assert info.value.code == 503
        [event] = events
        assert (event.status, event.error_type, event.stream) == ("error", "ServerError", True)

    def test_broken_stream_records_one_error(self, fake: FakeProvider,
                                             events: list[CostEvent]) -> None:
        """A stream cut mid-way raises the transport's error unchanged and records once."""
        import httpx2

        fake.break_next_stream(after_chunks=1, provider="google")
        received: list[Any] = []
        with pytest.raises(httpx2.RemoteProtocolError):
            for chunk in client(fake).models.generate_content_stream(model=FLASH, contents="hi"):
                received.append(chunk)
        assert len(received) == 1
        [event] = events
        assert (event.status, event.error_type, event.stream) == (
            "error", "RemoteProtocolError", True)

    def test_dropped_stream_recorded_once(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """A stream abandoned after one chunk is recorded once, with the usage seen so far."""
        fake.configure("google", usage=FakeUsage(input_tokens=1000, output_tokens=300),
                       stream_chunks=3)
        stream = client(fake).models.generate_content_stream(model=FLASH, contents="hi")
        next(stream)
        del stream
        gc.collect()
        [event] = events
        assert event.stream and not event.estimated and event.status == "ok"
        # the first chunk's running total: 100 of 300 output tokens; 1000 x 3e-7 + 100 x 2.5e-6
        assert (event.usage.input_tokens, event.usage.output_tokens) == (1000, 100)
        assert event.cost is not None and event.cost.total == D("0.00055")

    def test_closed_stream_recorded_once(self, fake: FakeProvider,
                                         events: list[CostEvent]) -> None:
        """Closing the stream generator early records the call once, not again on gc."""
        fake.configure("google", usage=USAGE)
        stream = client(fake).models.generate_content_stream(model=FLASH, contents="hi")
        next(stream)
        stream.close()
        del stream
        assert len(events) == 1 and events[0].stream

    def test_unstarted_stream_records_nothing(self, fake: FakeProvider,
                                              events: list[CostEvent]) -> None:
        """A stream never iterated sends no request, so nothing is billed or recorded."""
        stream = client(fake).models.generate_content_stream(model=FLASH, contents="hi")
        del stream
        assert events == [] and fake.requests == []


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


class TestWrapClient:
    def test_wrap_under_global_instrumentation_counts_once(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """llmlab.wrap on an already patched library still records each call once."""
        fake.configure("google", usage=USAGE)
        wrapped = llmlab.wrap(client(fake))
        wrapped.models.generate_content(model=FLASH, contents="hi")
        list(wrapped.models.generate_content_stream(model=FLASH, contents="hi"))

        async def main() -> None:
            await wrapped.aio.models.generate_content(model=FLASH, contents="hi")

        asyncio.run(main())
        assert [e.stream for e in events] == [False, True, False]
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    def test_wrap_alone_instruments_the_instance(self, fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
        """Without global patching, a wrapped client is recorded and an unwrapped one is not."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            wrapped = llmlab.wrap(client(fake))
            wrapped.models.generate_content(model=FLASH, contents="hi")
            llmlab.wrap(wrapped)  # wrapping twice does not double count
            wrapped.models.generate_content(model=FLASH, contents="hi")
            client(fake).models.generate_content(model=FLASH, contents="hi")
        assert len(events) == 2 and events[0].cost is not None
        assert events[0].cost.total == FLASH_COST

    def test_wrap_async_client_alone(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """``llmlab.wrap(client.aio)`` instruments that async client only."""
        fake.configure("google", usage=USAGE)
        with uninstrumented():
            made = client(fake)
            assert llmlab.wrap(made.aio) is made.aio

            async def main() -> None:
                await made.aio.models.generate_content(model=FLASH, contents="hi")

            asyncio.run(main())
            made.models.generate_content(model=FLASH, contents="hi")  # the sync side: not wrapped
        [event] = events
        assert event.cost is not None and event.cost.total == FLASH_COST

    def test_wrap_client_rejects_other_types(self) -> None:
        """wrap_client is False for anything but a genai.Client or its AsyncClient."""
        assert GoogleGenAIIntegration().wrap_client(object()) is False


class TestProvider:
    def test_vertex_call_is_priced_as_vertex(self, fake: FakeProvider,
                                             events: list[CostEvent]) -> None:
        """A Vertex AI call (plain and streamed) is priced from the vertex catalogue entries."""
        fake.configure("google", usage=USAGE)
        vertex = client(fake, vertexai=True)
        assert vertex.models.generate_content(model=FLASH, contents="hi").text == TEXT
        list(vertex.models.generate_content_stream(model=FLASH, contents="hi"))
        assert [(e.provider, e.model, e.stream, e.status) for e in events] == [
            ("vertex", FLASH, False, "ok"), ("vertex", FLASH, True, "ok")]
        # vertex/gemini-2.5-flash has the same list prices as the Gemini API
        assert all(e.cost is not None and e.cost.total == FLASH_COST for e in events)

    @pytest.mark.parametrize(("raw", "name"), [
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("projects/p/locations/l/publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("tunedModels/abc-123", "tunedModels/abc-123"),
        ("", None),
        (None, None),
    ])
    def test_model_name(self, raw: Any, name: str | None) -> None:
        """Resource paths are reduced to the bare model name; tuned models are kept whole."""
        assert model_name(raw) == name


class TestVersionGate:
    def test_falls_back_to_public_methods(self, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
        """Without the per-request methods the public ones are patched and a note is logged."""
        import google.genai.models as models_module

        def method(self: Any, **kwargs: Any) -> None:
            return None

        public = {"generate_content": method, "generate_content_stream": method}
        monkeypatch.setattr(models_module, "Models", type("Models", (), dict(public)))
        monkeypatch.setattr(models_module, "AsyncModels", type("AsyncModels", (), dict(public)))
        monkeypatch.setattr(GoogleGenAIIntegration, "_noted_fallback", False)
        with caplog.at_level(logging.INFO, logger="llmlab"):
            targets = GoogleGenAIIntegration._targets()
        assert sorted({name for _, name, _, _ in targets}) == [
            "generate_content", "generate_content_stream"]
        assert "patching the public ones" in caplog.text

    def test_patches_the_per_request_methods(self) -> None:
        """On google-genai 3.x the private per-request methods are the ones patched."""
        names = {(owner.__name__, name) for owner, name, _, _ in GoogleGenAIIntegration._targets()}
        assert names == {("Models", "_generate_content"), ("Models", "_generate_content_stream"),
                         ("AsyncModels", "_generate_content"),
                         ("AsyncModels", "_generate_content_stream")}
