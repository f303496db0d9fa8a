"""The LiteLLM integration: real litellm calls against the fake provider, every entry point."""

from __future__ import annotations

import asyncio
import gc
import os
from decimal import Decimal
from typing import Any

import pytest

import llmlab
from llmlab.errors import BudgetExceededError
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider, FakeUsage

# LiteLLM downloads its price map at import unless told not to: nothing leaves the machine.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

D = Decimal
MESSAGES = [{"role": "user", "content": "hello"}]
# gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M.
USAGE = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000, reasoning_tokens=120)
GPT_4O_COST = D("0.00475")  # 200 x 2.5e-6 + 1000 x 1.25e-6 + 300 x 1e-5
# claude-sonnet-4-5: input $3/M, cache read $0.30/M, 5-minute write $3.75/M, 1-hour write $6/M,
# output $15/M. Anthropic's input_tokens (200) leaves the cache out; LiteLLM adds it back.
CLAUDE_USAGE = FakeUsage(input_tokens=200, output_tokens=300, cached_tokens=1000,
                         cache_creation_5m_tokens=100, cache_creation_1h_tokens=50)
CLAUDE_COST = D("0.006075")  # 200 x 3e-6 + 1000 x 3e-7 + 100 x 3.75e-6 + 50 x 6e-6 + 300 x 1.5e-5
# gemini-2.5-pro (prompt under 200k): input $1.25/M, cache read $0.125/M, output $10/M; the
# 120 thinking tokens are billed as output.
GEMINI_COST = D("0.004575")  # 200 x 1.25e-6 + 1000 x 1.25e-7 + (300 + 120) x 1e-5
# text-embedding-3-small: $0.02/M.
EMBEDDING_COST = D("0.000024")  # 1200 x 2e-8


def openai_kwargs(fake: FakeProvider) -> dict[str, Any]:
    return {"api_base": fake.openai_base_url, "api_key": "sk-test"}


def anthropic_kwargs(fake: FakeProvider) -> dict[str, Any]:
    return {"api_base": fake.anthropic_base_url, "api_key": "sk-test"}


def strip_ids(value: Any) -> Any:
    """A response dump without the fields the fake or LiteLLM randomise per call."""
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items()
                if k not in ("id", "created", "created_at", "system_fingerprint")}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


def only(events: list[CostEvent]) -> CostEvent:
    [event] = events
    return event


class TestCompletion:
    def test_openai_completion_records_one_exact_event(self, fake: FakeProvider,
                                                       events: list[CostEvent]) -> None:
        """litellm.completion to OpenAI yields one event priced by llmlab from its usage."""
        fake.configure("openai", usage=USAGE)
        response = litellm.completion(model="openai/gpt-4o", messages=MESSAGES,
                                      **openai_kwargs(fake))
        assert response.choices[0].message.content == fake.openai.text
        event = only(events)
        assert (event.provider, event.model, event.requested_model, event.operation) == (
            "openai", "gpt-4o", "gpt-4o", "chat.completions")
        assert event.usage.cache_read_tokens == 1000 and event.usage.reasoning_tokens == 120
        assert event.cost is not None and event.cost.total == GPT_4O_COST
        assert event.status == "ok" and not event.stream and not event.estimated

    def test_positional_arguments_are_read(self, fake: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """A call passing the model and messages positionally is recorded the same way."""
        fake.configure("openai", usage=USAGE)
        litellm.completion("openai/gpt-4o", MESSAGES, **openai_kwargs(fake))
        event = only(events)
        assert event.requested_model == "gpt-4o" and event.cost is not None
        assert event.cost.total == GPT_4O_COST

    def test_anthropic_cache_writes_are_split_by_lifetime(self, fake: FakeProvider,
                                                          events: list[CostEvent]) -> None:
        """Claude through LiteLLM's own HTTP: cache reads and 5m / 1h writes priced apart."""
        fake.configure("anthropic", usage=CLAUDE_USAGE)
        litellm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES,
                           **anthropic_kwargs(fake))
        event = only(events)
        assert (event.provider, event.model) == ("anthropic", "claude-sonnet-4-5")
        assert (event.usage.input_tokens, event.usage.cache_read_tokens,
                event.usage.cache_write_tokens, event.usage.cache_write_1h_tokens) == (
            1350, 1000, 100, 50)
        assert event.cost is not None and event.cost.total == CLAUDE_COST

    def test_gemini_thinking_is_billed_as_output(self, fake: FakeProvider,
                                                 events: list[CostEvent]) -> None:
        """Gemini through LiteLLM: provider ``google``, thinking tokens inside the output."""
        fake.configure("google", usage=USAGE)
        litellm.completion(model="gemini/gemini-2.5-pro", messages=MESSAGES,
                           api_base=fake.google_base_url + "/v1beta", api_key="k")
        event = only(events)
        assert (event.provider, event.model) == ("google", "gemini-2.5-pro")
        assert (event.usage.output_tokens, event.usage.reasoning_tokens) == (420, 120)
        assert event.cost is not None and event.cost.total == GEMINI_COST

    @pytest.mark.parametrize(("model", "provider", "total"), [
        # deepseek-chat: input $0.28/M, output $0.42/M.
        ("deepseek/deepseek-chat", "deepseek", D("0.000322")),
        # mistral-large-latest: input $0.50/M, output $1.50/M.
        ("mistral/mistral-large-latest", "mistral", D("0.00065")),
        # Together's Llama 3.3 70B Turbo: $1.04/M in and out.
        ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", D("0.001144")),
        # OpenRouter bills OpenAI's list price for openai/gpt-4o.
        ("openrouter/openai/gpt-4o", "openrouter", D("0.0035")),
    ])
    def test_openai_compatible_providers(self, fake: FakeProvider, events: list[CostEvent],
                                         model: str, provider: str, total: Decimal) -> None:
        """Each provider LiteLLM names by prefix is recorded under its llmlab id and price."""
        fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
        litellm.completion(model=model, messages=MESSAGES, **openai_kwargs(fake))
        event = only(events)
        assert event.provider == provider and event.cost is not None and event.cost.priced
        assert event.cost.total == total


class TestStreams:
    def test_hidden_stream_usage_is_read(self, fake: FakeProvider,
                                         events: list[CostEvent]) -> None:
        """A stream whose caller did not ask for usage is still priced from the provider's."""
        fake.configure("anthropic", usage=CLAUDE_USAGE)
        chunks = list(litellm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES,
                                         stream=True, **anthropic_kwargs(fake)))
        assert all(getattr(c, "usage", None) is None for c in chunks)
        event = only(events)
        assert event.stream and not event.estimated and event.ttfb_ms is not None
        assert event.cost is not None and event.cost.total == CLAUDE_COST

    def test_requested_usage_chunk_reaches_the_caller(self, fake: FakeProvider,
                                                      events: list[CostEvent]) -> None:
        """With include_usage the usage chunk is passed on, and priced once."""
        fake.configure("openai", usage=USAGE)
        chunks = list(litellm.completion(model="openai/gpt-4o", messages=MESSAGES, stream=True,
                                         stream_options={"include_usage": True},
                                         **openai_kwargs(fake)))
        assert chunks[-1].usage.prompt_tokens == 1200 and not chunks[-1].choices
        event = only(events)
        assert event.cost is not None and event.cost.total == GPT_4O_COST

    def test_unreported_usage_is_estimated_not_taken_from_litellm(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """An OpenAI-compatible stream without usage is estimated (LiteLLM's guess is not usage)."""
        fake.configure("openai", text="abcdefghijklmnop")
        list(litellm.completion(model="openai/gpt-4o", messages=MESSAGES, stream=True,
                                **openai_kwargs(fake)))
        event = only(events)
        assert event.estimated and event.status == "ok"
        assert event.usage.output_tokens == 4  # 16 characters, ~4 a token

    def test_stream_closed_early_is_recorded_once(self, fake: FakeProvider,
                                                  events: list[CostEvent]) -> None:
        """Breaking off and closing a stream records one estimated, cancelled event."""
        fake.configure("openai", stream_chunks=5, text="abcdefghijklmnopqrst")
        stream = litellm.completion(model="openai/gpt-4o", messages=MESSAGES, stream=True,
                                    **openai_kwargs(fake))
        next(iter(stream))
        stream.close()
        event = only(events)
        assert event.estimated and event.status == "cancelled"

    def test_dropped_stream_is_recorded_on_garbage_collection(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A stream abandoned without close is still recorded, once."""
        stream = litellm.completion(model="openai/gpt-4o", messages=MESSAGES, stream=True,
                                    **openai_kwargs(fake))
        next(iter(stream))
        del stream
        gc.collect()
        assert len(events) == 1 and events[0].estimated

    def test_async_stream(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """acompletion(stream=True) is iterated with ``async for`` and priced once."""
        fake.configure("anthropic", usage=CLAUDE_USAGE)

        async def run() -> int:
            stream = await litellm.acompletion(model="anthropic/claude-sonnet-4-5",
                                               messages=MESSAGES, stream=True,
                                               **anthropic_kwargs(fake))
            return len([chunk async for chunk in stream])

        assert asyncio.run(run()) > 0
        event = only(events)
        assert event.stream and event.cost is not None and event.cost.total == CLAUDE_COST


class TestOtherEntries:
    def test_embedding_through_the_patched_openai_sdk_counts_once(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """LiteLLM embeds through the openai SDK, which llmlab patches too: one event."""
        fake.configure("openai", usage=USAGE)
        response = litellm.embedding(model="openai/text-embedding-3-small", input=["a"],
                                     **openai_kwargs(fake))
        assert len(response.data) == 1
        event = only(events)
        assert (event.provider, event.operation) == ("openai", "embeddings")
        assert event.cost is not None and event.cost.total == EMBEDDING_COST

    def test_async_embedding_counts_once(self, fake: FakeProvider,
                                         events: list[CostEvent]) -> None:
        """aembedding through the patched AsyncOpenAI SDK is recorded once."""
        fake.configure("openai", usage=USAGE)
        asyncio.run(litellm.aembedding(model="openai/text-embedding-3-small", input=["a"],
                                       **openai_kwargs(fake)))
        event = only(events)
        assert event.cost is not None and event.cost.total == EMBEDDING_COST

    def test_text_completion_plain_and_streamed(self, fake: FakeProvider,
                                                events: list[CostEvent]) -> None:
        """text_completion, plain and streamed, is recorded as ``completions`` once each."""
        fake.configure("openai", usage=USAGE)
        litellm.text_completion(model="openai/gpt-4o", prompt="hi", **openai_kwargs(fake))
        list(litellm.text_completion(model="openai/gpt-4o", prompt="hi", stream=True,
                                     stream_options={"include_usage": True},
                                     **openai_kwargs(fake)))
        assert [(e.operation, e.stream) for e in events] == [("completions", False),
                                                              ("completions", True)]
        assert [e.cost.total for e in events if e.cost] == [GPT_4O_COST, GPT_4O_COST]

    def test_responses_plain_and_streamed(self, fake: FakeProvider,
                                          events: list[CostEvent]) -> None:
        """litellm.responses, plain and streamed, is priced from the Responses usage."""
        fake.configure("openai", usage=USAGE)
        litellm.responses(model="openai/gpt-4o", input="hi", **openai_kwargs(fake))
        list(litellm.responses(model="openai/gpt-4o", input="hi", stream=True,
                               **openai_kwargs(fake)))
        assert [(e.operation, e.stream) for e in events] == [("responses", False),
                                                              ("responses", True)]
        assert [e.cost.total for e in events if e.cost] == [GPT_4O_COST, GPT_4O_COST]

    def test_async_entries(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """acompletion, atext_completion, aresponses (plain and streamed) and
        completion(acompletion=True) are each recorded once."""
        fake.configure("openai", usage=USAGE)
        kwargs = openai_kwargs(fake)

        async def run() -> None:
            await litellm.acompletion(model="openai/gpt-4o", messages=MESSAGES, **kwargs)
            await litellm.atext_completion(model="openai/gpt-4o", prompt="hi", **kwargs)
            await litellm.aresponses(model="openai/gpt-4o", input="hi", **kwargs)
            stream = await litellm.aresponses(model="openai/gpt-4o", input="hi", stream=True,
                                              **kwargs)
            [event async for event in stream]
            await litellm.completion(model="openai/gpt-4o", messages=MESSAGES,
                                     acompletion=True, **kwargs)

        asyncio.run(run())
        assert [e.operation for e in events] == ["chat.completions", "completions", "responses",
                                                 "responses", "chat.completions"]
        assert all(e.cost is not None and e.cost.total == GPT_4O_COST for e in events)


class TestRouter:
    def test_router_calls_are_attributed_once(self, fake: FakeProvider,
                                              events: list[CostEvent]) -> None:
        """Router.completion / acompletion (streams too) record one event per deployment call,
        under the deployment's model and the caller's scope."""
        fake.configure("openai", usage=USAGE)
        router = litellm.Router(model_list=[{"model_name": "smart", "litellm_params": {
            "model": "openai/gpt-4o", **openai_kwargs(fake)}}])

        async def run() -> None:
            await router.acompletion(model="smart", messages=MESSAGES)
            stream = await router.acompletion(model="smart", messages=MESSAGES, stream=True,
                                              stream_options={"include_usage": True})
            [chunk async for chunk in stream]

        with llmlab.track(job="routed") as scope:
            router.completion(model="smart", messages=MESSAGES)
            asyncio.run(run())
        assert len(fake.requests) == 3 == len(events) == scope.calls
        assert [(e.model, e.job_id, e.stream) for e in events] == [
            ("gpt-4o", "routed", False), ("gpt-4o", "routed", False), ("gpt-4o", "routed", True)]
        assert scope.cost == 3 * GPT_4O_COST

    def test_fallback_and_embedding_record_each_provider_call(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A failed deployment and its fallback are two events; Router.embedding is one."""
        fake.configure("openai", usage=USAGE)
        fake.configure("anthropic", usage=FakeUsage(input_tokens=200, output_tokens=300))
        router = litellm.Router(model_list=[
            {"model_name": "smart", "litellm_params": {"model": "openai/gpt-4o",
                                                       **openai_kwargs(fake)}},
            {"model_name": "backup", "litellm_params": {"model": "anthropic/claude-sonnet-4-5",
                                                        **anthropic_kwargs(fake)}},
            {"model_name": "embed", "litellm_params": {"model": "openai/text-embedding-3-small",
                                                       **openai_kwargs(fake)}},
        ], fallbacks=[{"smart": ["backup"]}], num_retries=0)
        fake.fail_next(400, provider="openai")
        assert router.completion(model="smart", messages=MESSAGES).model == "claude-sonnet-4-5"
        router.embedding(model="embed", input=["a"])
        assert len(fake.requests) == 3 == len(events)
        assert [(e.provider, e.status, e.cost.total if e.cost else None) for e in events] == [
            ("openai", "error", 0),
            ("anthropic", "ok", D("0.0051")),  # 200 x 3e-6 + 300 x 1.5e-5
            ("openai", "ok", EMBEDDING_COST)]


class TestAttributionAndBudgets:
    def test_scope_attribution(self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """Calls inside track() carry its job and tags and add up in the scope."""
        fake.configure("openai", usage=USAGE)
        with llmlab.track(job="ticket-1", tags={"feature": "triage"}) as scope:
            litellm.completion(model="openai/gpt-4o", messages=MESSAGES, **openai_kwargs(fake))
        event = only(events)
        assert (event.job_id, event.tags) == ("ticket-1", {"feature": "triage"})
        assert (scope.calls, scope.cost) == (1, GPT_4O_COST)

    def test_budget_blocks_before_the_call(self, fake: FakeProvider,
                                           events: list[CostEvent]) -> None:
        """A max_cost scope the worst case would pass raises before LiteLLM sends anything."""
        with pytest.raises(BudgetExceededError), llmlab.track(max_cost=D("0.0001")):
            litellm.completion(model="openai/gpt-4o", messages=MESSAGES, **openai_kwargs(fake))

        async def run() -> None:
            with llmlab.track(max_cost=D("0.0001")):
                await litellm.acompletion(model="anthropic/claude-sonnet-4-5",
                                          messages=MESSAGES, **anthropic_kwargs(fake))

        with pytest.raises(BudgetExceededError):
            asyncio.run(run())
        assert fake.requests == [] and events == []


class TestHostContract:
    def test_failed_call_reraises_litellm_error_and_records_it(
            self, fake: FakeProvider, events: list[CostEvent]) -> None:
        """A provider error reaches the caller as LiteLLM raised it; one error event, $0."""
        fake.fail_next(400, provider="openai")
        with pytest.raises(litellm.BadRequestError):
            litellm.completion(model="openai/gpt-4o", messages=MESSAGES, **openai_kwargs(fake))
        event = only(events)
        assert (event.status, event.error_type) == ("error", "BadRequestError")
        assert event.cost is not None and event.cost.total == 0

    def test_conflicting_arguments_raise_litellm_type_error(self, events: list[CostEvent]) -> None:
        """A model given twice fails as it does without llmlab, and nothing is recorded."""
        with pytest.raises(TypeError, match="multiple values"):
            litellm.completion("openai/gpt-4o", MESSAGES, model="openai/gpt-4o")
        assert events == []

    def test_mock_response_is_not_recorded(self, events: list[CostEvent]) -> None:
        """mock_response never reaches a provider, so nothing is billed or recorded."""
        response = litellm.completion(model="openai/gpt-4o", messages=MESSAGES,
                                      mock_response="canned")
        assert response.choices[0].message.content == "canned"
        assert events == []

    def test_caller_sees_identical_results(self, fake: FakeProvider) -> None:
        """Responses and streamed chunks are the same with and without llmlab."""
        fake.configure("openai", usage=USAGE)

        def run() -> tuple[Any, list[Any]]:
            plain = litellm.completion(model="openai/gpt-4o", messages=MESSAGES,
                                       **openai_kwargs(fake)).model_dump()
            chunks = [c.model_dump() for c in litellm.completion(
                model="openai/gpt-4o", messages=MESSAGES, stream=True, **openai_kwargs(fake))]
            return strip_ids(plain), strip_ids(chunks)

        bare = run()
        llmlab.init(ledger=False)
        try:
            assert run() == bare
        finally:
            llmlab.shutdown()
            llmlab.uninstrument()

    def test_no_op_before_init(self, fake: FakeProvider) -> None:
        """Instrumented calls before init() work and record nothing."""
        llmlab.instrument("litellm")
        try:
            response = litellm.completion(model="openai/gpt-4o", messages=MESSAGES,
                                          **openai_kwargs(fake))
        finally:
            llmlab.uninstrument()
        assert response.choices[0].message.content == fake.openai.text
