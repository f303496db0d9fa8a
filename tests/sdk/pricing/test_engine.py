"""The cost arithmetic, including regressions for wrong-cost bugs seen in other trackers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from anthropic.types import Usage as AnthropicUsage
from google.genai.types import GenerateContentResponseUsageMetadata
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import CompletionUsage
from openai.types.completion_usage import PromptTokensDetails

from llmlab.pricing import Catalogue, CostBreakdown, money
from llmlab.usage import Usage

D = Decimal
M = 1_000_000


class TestDesignExample:
    def test_gpt_4o_event_of_the_design(self, catalogue: Catalogue) -> None:
        """The DESIGN.md example prices to the exact decimal amounts of its wire cost."""
        usage = {"prompt_tokens": 1200, "completion_tokens": 300,
                 "prompt_tokens_details": {"cached_tokens": 1000},
                 "completion_tokens_details": {"reasoning_tokens": 120}}
        c = catalogue.cost("gpt-4o-2024-08-06", usage)
        assert (c.input, c.cache_read, c.output + c.reasoning, c.total) == (
            D("0.0005"), D("0.00125"), D("0.003"), D("0.00475"))
        assert c.to_wire() == {"input": "0.0005", "cache_read": "0.00125", "cache_write": "0",
                               "output": "0.0018", "reasoning": "0.0012", "total": "0.00475",
                               "currency": "USD", "priced": True, "pricing_version": "2026-11-12"}


class TestRegressions:
    def test_openai_cached_tokens_are_not_counted_twice(self, catalogue: Catalogue) -> None:
        """Cached prompt tokens are billed at the cache rate only, never also at the input rate."""
        c = catalogue.cost("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 0,
                                      "prompt_tokens_details": {"cached_tokens": 1000}})
        assert c.input == 0
        assert c.total == D("0.00125")  # 1000 x $1.25/M, not + 1000 x $2.50/M

    def test_anthropic_cache_writes_counted_once_at_write_rates(self, catalogue: Catalogue) -> None:
        """5m and 1h cache writes bill once each at their own rates (not zero, not twice)."""
        native = {"input_tokens": 100, "output_tokens": 0, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 3000,
                  "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                     "ephemeral_1h_input_tokens": 2000}}
        c = catalogue.cost("claude-sonnet-4-5", native)
        assert c.input == D("0.0003")                      # 100 x $3/M
        assert c.cache_write == D("0.00375") + D("0.012")  # 1000 x $3.75/M + 2000 x $6/M
        assert c.total == D("0.01605")

    def test_gemini_thinking_tokens_are_costed(self, catalogue: Catalogue) -> None:
        """Gemini thoughts are billed as output even though candidatesTokenCount excludes them."""
        c = catalogue.cost("gemini/gemini-2.5-flash", {"prompt_token_count": 0,
                                                       "candidates_token_count": 100,
                                                       "thoughts_token_count": 900})
        assert c.reasoning == D("0.00225")  # 900 x $2.50/M
        assert c.total == D("0.0025")

    def test_reasoning_does_not_drop_the_rest_of_the_output(self, catalogue: Catalogue) -> None:
        """With reasoning tokens present, the visible output is still billed."""
        c = catalogue.cost("o3", Usage(output_tokens=1000, reasoning_tokens=400))
        card = catalogue.resolve("o3").period_at(None).card()  # type: ignore[union-attr]
        assert c.output == 600 * card.output
        assert c.reasoning == 400 * card.reasoning
        assert c.total == 1000 * card.output

    def test_model_long_context_band_beats_a_family_rule(self, catalogue: Catalogue) -> None:
        """Claude Haiku 5.5's documented >100k band applies: no "Claude 4.6+ is flat" rule."""
        # Anthropic's Haiku 5.5 page: $0.10/$0.50 per 1M up to 100k prompt tokens,
        # $0.50/$2.50 per 1M for the whole request above.
        below = catalogue.cost("claude-haiku-5-5", AnthropicUsage(input_tokens=100_000,
                                                                  output_tokens=1_000))
        above = catalogue.cost("claude-haiku-5-5", AnthropicUsage(input_tokens=500_000,
                                                                  output_tokens=1_000))
        assert below.total == (100_000 * D("0.10") + 1_000 * D("0.50")) / M
        assert above.total == (500_000 * D("0.50") + 1_000 * D("2.50")) / M
        assert above.long_context_threshold == 100_000

    def test_xai_tier_starts_when_the_prompt_reaches_it(self, catalogue: Catalogue) -> None:
        """xAI bills a prompt of exactly 200k at the long-context rate ($2.50/M, not $1.25/M)."""
        def usage(prompt: int) -> CompletionUsage:
            return CompletionUsage(prompt_tokens=prompt, completion_tokens=0,
                                   total_tokens=prompt)

        at = catalogue.cost("grok-4.3", usage(200_000), "xai")
        under = catalogue.cost("grok-4.3", usage(199_999), "xai")
        assert at.total == 200_000 * D("2.50") / M
        assert under.total == 199_999 * D("1.25") / M

    def test_real_long_context_tier_bills_the_whole_request(self, catalogue: Catalogue) -> None:
        """Once the prompt, cache included, passes 200k, every token bills at the tier rate."""
        below = catalogue.cost("vertex_ai/claude-sonnet-4-5",
                               Usage(input_tokens=200_000, output_tokens=1000))
        above = catalogue.cost("vertex_ai/claude-sonnet-4-5",
                               Usage(input_tokens=200_001, output_tokens=1000,
                                     cache_read_tokens=150_000))
        assert below.total == D("0.6") + D("0.015")
        assert above.long_context_threshold == 200_000
        assert above.input == 50_001 * D("0.000006")
        assert above.cache_read == 150_000 * D("0.0000006")
        assert above.output == 1000 * D("0.0000225")


class TestFallbacksAndTiers:
    def test_fireworks_cache_reads_default_to_half_the_input_rate(
            self, catalogue: Catalogue) -> None:
        """Fireworks' documented 50 % cache discount applies where no cache rate is listed."""
        def usage() -> CompletionUsage:
            return CompletionUsage(prompt_tokens=1_000, completion_tokens=0, total_tokens=1_000,
                                   prompt_tokens_details=PromptTokensDetails(cached_tokens=1_000))

        # chronos-hermes-13b-v2 lists $0.20/M input only; minimax-m2p1 lists $0.03/M cached.
        unlisted = catalogue.cost("accounts/fireworks/models/chronos-hermes-13b-v2", usage(),
                                  "fireworks")
        listed = catalogue.cost("accounts/fireworks/models/minimax-m2p1", usage(), "fireworks")
        assert unlisted.cache_read == 1_000 * D("0.20") * D("0.5") / M
        assert listed.cache_read == 1_000 * D("0.03") / M

    def test_missing_cache_rate_falls_back_to_input(self, catalogue: Catalogue) -> None:
        """A model without a cache-read price bills cache reads at the input rate, never $0."""
        c = catalogue.cost("groq/llama-guard-3-8b", Usage(input_tokens=1000, cache_read_tokens=1000))
        assert c.cache_read == D("0.0002")

    def test_batch_uses_listed_batch_rates(self, catalogue: Catalogue) -> None:
        """With a batch price listed, batch calls use it."""
        c = catalogue.cost("gpt-4o", Usage(input_tokens=1_000_000), service_tier="batch")
        assert c.total == D("1.25")

    def test_batch_without_listed_rate_is_half(self, catalogue: Catalogue) -> None:
        """Without a batch price, batch calls cost half the standard rate."""
        std = catalogue.cost("chat-latest", Usage(input_tokens=1000, output_tokens=1000))
        batch = catalogue.cost("chat-latest", Usage(input_tokens=1000, output_tokens=1000),
                               service_tier="batch")
        assert batch.total * 2 == std.total

    def test_priority_and_flex_rates(self, catalogue: Catalogue) -> None:
        """Priority and flex service tiers use their own listed rates."""
        usage = Usage(input_tokens=1_000_000)
        assert catalogue.cost("gemini-2.5-flash", usage, "google", service_tier="priority").total \
            == D("0.54")
        assert catalogue.cost("gemini-2.5-flash", usage, "google", service_tier="flex").total \
            == D("0.15")

    @pytest.mark.parametrize(("tier", "output_rate"), [("flex", "1.25"), ("priority", "4.50")])
    def test_reasoning_bills_at_the_service_tier_rate(self, catalogue: Catalogue, tier: str,
                                                      output_rate: str) -> None:
        """Gemini thinking under flex or priority bills at that tier's output rate."""
        # gemini-2.5-flash output per 1M: $2.50 standard, $1.25 flex, $4.50 priority.
        usage = GenerateContentResponseUsageMetadata(
            prompt_token_count=0, candidates_token_count=100, thoughts_token_count=900)
        c = catalogue.cost("gemini-2.5-flash", usage, "google", service_tier=tier)
        assert c.reasoning == 900 * D(output_rate) / M
        assert c.total == 1_000 * D(output_rate) / M

    def test_reasoning_follows_a_long_context_tier(self) -> None:
        """A tier that lists output but not reasoning bills reasoning at its output rate."""
        cat = Catalogue({"pricing_version": "t", "models": {"google/m": {
            "provider": "google", "name": "m", "prices": [{"effective_from": None,
            "rates": {"standard": {"input": "0.000001", "output": "0.00001",
                                   "reasoning": "0.00001"}},
            "tiers": {"200000": {"standard": {"input": "0.000002", "output": "0.000015"}}}}]}}})
        c = cat.cost("m", Usage(input_tokens=200_001, output_tokens=1_000, reasoning_tokens=1_000))
        assert c.reasoning == 1_000 * D("15") / M

    def test_region_and_speed_multipliers(self, catalogue: Catalogue) -> None:
        """US inference and fast mode multiply every component, applied last."""
        usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
        base = catalogue.cost("claude-opus-5-5", usage).total
        assert base == D("24")
        assert catalogue.cost("claude-opus-5-5", usage, region="us").total == D("26.4")
        assert catalogue.cost("claude-opus-5-5", usage, service_tier="fast").total == D("48")
        assert catalogue.cost("gpt-6-astra", usage, region="eu").multiplier == D("1.1")
        assert catalogue.cost("claude-opus-5-5", usage, region="global").total == base


class TestUnknownModels:
    def test_unknown_model_is_unpriced_not_free(self, catalogue: Catalogue, caplog) -> None:  # type: ignore[no-untyped-def]
        """An unknown model gives priced=False and zero amounts, with one warning per model."""
        for _ in range(3):
            c = catalogue.cost("acme-secret-model", Usage(input_tokens=10))
        assert not c.priced and c.total == 0
        assert len([r for r in caplog.records if "acme-secret-model" in r.message]) == 1


class TestMoney:
    def test_money_strings_are_plain(self) -> None:
        """Wire amounts never use exponents and drop trailing zeros."""
        assert money(D("1E-9")) == "0.000000001"
        assert money(D("0.0047500")) == "0.00475"
        assert money(D("0E-7")) == "0"
        assert money(D("1200")) == "1200"


# Five input parts of at most 20k each: a + b stays at or below the smallest tier (200k).
_counts = st.integers(min_value=0, max_value=20_000)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Valid usages below every long-context threshold."""
    cache_read, cache_write, cache_long, audio_in = (draw(_counts) for _ in range(4))
    reasoning, audio_out = draw(_counts), draw(_counts)
    return Usage(
        input_tokens=cache_read + cache_write + cache_long + audio_in + draw(_counts),
        output_tokens=reasoning + audio_out + draw(_counts), cache_read_tokens=cache_read,
        cache_write_tokens=cache_write, cache_write_1h_tokens=cache_long,
        audio_input_tokens=audio_in, reasoning_tokens=reasoning, audio_output_tokens=audio_out)


MODELS = ["gpt-4o", "claude-sonnet-4-5", "gemini/gemini-2.5-pro", "gpt-6-sol", "o3",
          "mistral/mistral-large-latest", "deepseek/deepseek-chat", "claude-opus-5-5"]
_BUNDLED = Catalogue.bundled()


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(MODELS), usages(), usages())
    def test_cost_is_additive(self, model: str, a: Usage, b: Usage) -> None:
        """Below any tier threshold, cost(a) + cost(b) == cost(a + b) exactly."""
        assert _BUNDLED.cost(model, a).total + _BUNDLED.cost(model, b).total == \
            _BUNDLED.cost(model, a + b).total

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(MODELS), usages(),
           st.sampled_from(["input", "output", "cache_read", "cache_write", "cache_write_1h",
                            "reasoning", "audio_input", "audio_output"]),
           st.integers(1, 300_000))
    def test_cost_is_monotonic_in_every_token_count(self, model: str, u: Usage, kind: str,
                                                   extra: int) -> None:
        """Adding tokens of any kind (tier crossings included) never lowers the cost."""
        more = dict(u.to_dict())
        more[f"{kind}_tokens"] += extra
        if kind in ("cache_read", "cache_write", "cache_write_1h", "audio_input"):
            more["input_tokens"] += extra
        if kind in ("reasoning", "audio_output"):
            more["output_tokens"] += extra
        before = _BUNDLED.cost(model, u)
        after = _BUNDLED.cost(model, Usage(**more))
        assert isinstance(after, CostBreakdown)
        assert after.total >= before.total
        assert after.total == after.input + after.cache_read + after.cache_write + \
            after.output + after.reasoning
