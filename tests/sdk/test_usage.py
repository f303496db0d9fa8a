"""Normalised usage and the adapters from each provider's native usage objects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmlab.errors import UsageError
from llmlab.usage import MAX_TOKENS, Usage


class TestUsageValidation:
    def test_negative_counts_are_refused(self) -> None:
        """A negative token count raises a UsageError that is also a ValueError."""
        with pytest.raises(ValueError, match="must not be negative"):
            Usage(input_tokens=-1)

    def test_absurd_counts_are_refused(self) -> None:
        """More than MAX_TOKENS in one call is refused as absurd."""
        with pytest.raises(UsageError, match="absurd"):
            Usage(output_tokens=MAX_TOKENS + 1)

    def test_non_integers_are_refused(self) -> None:
        """Floats with a fraction, booleans and junk strings are not token counts."""
        for bad in ({"input_tokens": 1.5}, {"input_tokens": True}, {"input_tokens": "ten"}):
            with pytest.raises(UsageError):
                Usage.from_any(bad)

    def test_cache_larger_than_input_is_refused(self) -> None:
        """Cache reads are a subset of input tokens, so more cache than input is an error."""
        with pytest.raises(UsageError, match="exceed input_tokens"):
            Usage(input_tokens=10, cache_read_tokens=11)

    def test_reasoning_larger_than_output_is_refused(self) -> None:
        """Reasoning tokens are a subset of output tokens."""
        with pytest.raises(UsageError, match="exceed output_tokens"):
            Usage(output_tokens=10, reasoning_tokens=11)

    def test_unknown_normalised_field_is_refused(self) -> None:
        """A typo in a normalised usage dict is an error, not a silently ignored count."""
        with pytest.raises(UsageError, match="unknown usage field"):
            Usage.from_any({"input_tokens": 1, "outptu_tokens": 2})

    def test_none_is_refused(self) -> None:
        """Missing usage is an error with a clear message."""
        with pytest.raises(UsageError, match="required"):
            Usage.from_any(None)

    @given(st.lists(st.integers(0, 10**6), min_size=4, max_size=4))
    def test_addition_adds_every_field(self, counts: list[int]) -> None:
        """Usage + Usage adds field by field."""
        a = Usage(input_tokens=counts[0] + counts[1], cache_read_tokens=counts[1])
        b = Usage(input_tokens=counts[2], output_tokens=counts[3])
        total = a + b
        assert total.input_tokens == counts[0] + counts[1] + counts[2]
        assert total.cache_read_tokens == counts[1]
        assert total.output_tokens == counts[3]


class TestOpenAIAdapters:
    def test_chat_completion_usage_object(self) -> None:
        """OpenAI's CompletionUsage is taken as is: cached and reasoning are subsets."""
        from openai.types import CompletionUsage
        from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails

        native = CompletionUsage(
            prompt_tokens=1200, completion_tokens=300, total_tokens=1500,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1000, audio_tokens=50),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=120, audio_tokens=7),
        )
        assert Usage.from_any(native) == Usage(
            input_tokens=1200, output_tokens=300, cache_read_tokens=1000, audio_input_tokens=50,
            reasoning_tokens=120, audio_output_tokens=7)

    def test_responses_usage_object(self) -> None:
        """OpenAI's ResponseUsage maps input/output details onto the same fields."""
        from openai.types.responses import ResponseUsage
        from openai.types.responses.response_usage import (
            InputTokensDetails,
            InputTokensDetailsCacheWriteTokensDetails,
            OutputTokensDetails,
        )

        native = ResponseUsage(
            input_tokens=900, output_tokens=400, total_tokens=1300,
            input_tokens_details=InputTokensDetails(
                cached_tokens=512, cache_write_tokens=300,
                cache_write_tokens_details=InputTokensDetailsCacheWriteTokensDetails(
                    ttl_30m_tokens=100, ttl_12h_tokens=200)),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=256),
        )
        assert Usage.from_any(native) == Usage(
            input_tokens=900, output_tokens=400, cache_read_tokens=512, cache_write_tokens=100,
            cache_write_1h_tokens=200, reasoning_tokens=256)

    def test_embeddings_usage_dict(self) -> None:
        """An embeddings usage dict has prompt tokens only."""
        assert Usage.from_any({"prompt_tokens": 8, "total_tokens": 8}) == Usage(input_tokens=8)


class TestAnthropicAdapter:
    def test_cache_reads_and_writes_join_the_input(self) -> None:
        """Anthropic input_tokens excludes the cache: reads and writes are added back once."""
        from anthropic.types import CacheCreation
        from anthropic.types import Usage as AnthropicUsage

        native = AnthropicUsage(
            input_tokens=100, output_tokens=50, cache_read_input_tokens=2000,
            cache_creation_input_tokens=3000,
            cache_creation=CacheCreation(ephemeral_5m_input_tokens=1000,
                                         ephemeral_1h_input_tokens=2000),
        )
        assert Usage.from_any(native) == Usage(
            input_tokens=5100, output_tokens=50, cache_read_tokens=2000,
            cache_write_tokens=1000, cache_write_1h_tokens=2000)

    def test_cache_writes_without_breakdown_count_once_as_5m(self) -> None:
        """Without the TTL breakdown every cache write is a 5-minute write, counted once."""
        native = {"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 500,
                  "cache_read_input_tokens": 0}
        usage = Usage.from_any(native)
        assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (
            510, 500, 0)

    def test_thinking_tokens_are_reasoning(self) -> None:
        """output_tokens_details.thinking_tokens is the reasoning subset of output."""
        from anthropic.types import Usage as AnthropicUsage
        from anthropic.types.output_tokens_details import OutputTokensDetails

        native = AnthropicUsage(input_tokens=5, output_tokens=80,
                                output_tokens_details=OutputTokensDetails(thinking_tokens=60))
        assert Usage.from_any(native).reasoning_tokens == 60


class TestGeminiAdapters:
    def test_google_genai_thoughts_and_tool_prompt(self) -> None:
        """Gemini output = candidates + thoughts; tool-use prompt tokens join the input."""
        from google.genai import types

        native = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=1000, candidates_token_count=200, thoughts_token_count=300,
            cached_content_token_count=400, tool_use_prompt_token_count=50, total_token_count=1550,
        )
        assert Usage.from_any(native) == Usage(input_tokens=1050, output_tokens=500,
                                               cache_read_tokens=400, reasoning_tokens=300)

    def test_google_genai_audio_modality(self) -> None:
        """Audio prompt tokens (not cached) are read from the per-modality details."""
        from google.genai import types

        native = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=100, candidates_token_count=1,
            prompt_tokens_details=[types.ModalityTokenCount(modality="AUDIO", token_count=60),
                                   types.ModalityTokenCount(modality="TEXT", token_count=40)],
        )
        assert Usage.from_any(native).audio_input_tokens == 60

    def test_google_generativeai_proto(self) -> None:
        """The legacy google-generativeai proto-plus UsageMetadata is read too."""
        from google.ai.generativelanguage_v1beta.types import GenerateContentResponse

        native = GenerateContentResponse.UsageMetadata(
            prompt_token_count=70, candidates_token_count=30, cached_content_token_count=20)
        assert Usage.from_any(native) == Usage(input_tokens=70, output_tokens=30,
                                               cache_read_tokens=20)

    def test_rest_camel_case_dict(self) -> None:
        """The REST wire form (camelCase) is accepted."""
        native = {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6}
        assert Usage.from_any(native) == Usage(input_tokens=10, output_tokens=10,
                                               reasoning_tokens=6)
