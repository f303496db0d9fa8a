"""Capability tiers, replacement choice from the pricing catalogue, output caps."""

from __future__ import annotations

from datetime import date

import pytest

from llmlab.pricing import Catalogue
from llmlab_server.services.recommendations import Mix, cheaper_model, output_cap, percentile, tier_of

TODAY = date(2026, 11, 22)
MIX = Mix(calls=100, input=1_000_000, output=100_000, cache_read=0, cache_write=0)


class TestTiers:
    """Name families map to tiers."""

    @pytest.mark.parametrize(("name", "tier"), [
        ("gpt-4", 3), ("gpt-4o", 3), ("gpt-4.1", 3), ("gpt-5", 3), ("o3", 3), ("gpt-4-0613", 3),
        ("gpt-4o-mini", 1), ("gpt-4.1-mini", 1), ("gpt-3.5-turbo", 1), ("gpt-4.1-nano", 0),
        ("claude-opus-4-1", 3), ("claude-sonnet-4-5", 2), ("claude-3-5-haiku", 1),
        ("gemini-2.5-pro", 3), ("gemini-2.5-flash", 2), ("gemini-2.5-flash-lite", 1),
        ("mistral-large-latest", 3), ("gpt-4o-audio-preview", None), ("whisper-1", None)])
    def test_tier_of(self, name: str, tier: int | None) -> None:
        """Known families get their tier; unknown names get None."""
        assert tier_of(name) == tier


class TestCheaperModel:
    """Replacements keep tier, capabilities, reasoning, context and provider."""

    def test_gpt4_goes_to_a_non_reasoning_flagship(self) -> None:
        """gpt-4 is replaced by gpt-4.1 (cheapest flagship without reasoning), not a mini."""
        cat = Catalogue.default()
        cand, ratio = cheaper_model(cat, cat.resolve("gpt-4"), MIX, 8000, 4000, TODAY)
        assert cand.name == "gpt-4.1" and ratio < 1

    def test_context_window_is_respected(self) -> None:
        """A prompt larger than every candidate's window yields no replacement."""
        cat = Catalogue.default()
        assert cheaper_model(cat, cat.resolve("gpt-4"), MIX, 5_000_000, 100, TODAY) is None

    def test_same_provider_and_capabilities(self) -> None:
        """A vision+tools Anthropic model is replaced by an Anthropic model with both."""
        cat = Catalogue.default()
        entry = cat.resolve("claude-opus-4-5")
        found = cheaper_model(cat, entry, MIX, 1000, 1000, TODAY)
        assert found is not None
        cand, _ = found
        assert cand.provider == entry.provider and tier_of(cand.name) == 3
        assert {"tools", "vision"} <= cand.supports

    def test_deprecated_models_are_not_suggested(self) -> None:
        """No suggestion is deprecated on the day of the analysis."""
        cat = Catalogue.default()
        for name in ("gpt-4", "gpt-3.5-turbo", "claude-sonnet-4-5", "gemini-2.5-pro"):
            found = cheaper_model(cat, cat.resolve(name), MIX, 1000, 1000, TODAY)
            if found is not None:
                dep = found[0].deprecation_date
                assert dep is None or date.fromisoformat(dep[:10]) > TODAY


class TestOutputCap:
    """Percentiles and the cap from a distribution of output tokens."""

    def test_nearest_rank_percentiles(self) -> None:
        """Percentiles are nearest-rank: the smallest value with pct % of values at or below."""
        values = list(range(1, 101))
        assert [percentile(values, q) for q in (1, 50, 90, 95, 100)] == [1, 50, 90, 95, 100]
        assert percentile([7], 50) == 7

    def test_rare_long_outputs_are_capped_at_p95(self) -> None:
        """5 % of calls at 8,000 tokens and the rest at 300 give a cap of 300."""
        assert output_cap(sorted([8_000] * 5 + [300] * 95)) == 300

    def test_p90_is_used_when_p95_is_in_the_tail(self) -> None:
        """8 % long calls put the 95th percentile in the tail, so the cap is the 90th, rounded up."""
        assert output_cap(sorted([8_000] * 8 + [250] * 92)) == 300

    @pytest.mark.parametrize("values", [[300] * 100, [8_000] * 20 + [300] * 80, []])
    def test_no_cap(self, values: list[int]) -> None:
        """Uniform output, common long output and no calls give no cap."""
        assert output_cap(sorted(values)) is None
