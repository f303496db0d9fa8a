"""The google-genai integration: ``generate_content`` and its stream, with real clients and the fake."""

from __future__ import annotations

import gc
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
)

from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage


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
