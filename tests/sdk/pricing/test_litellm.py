"""Conversion of LiteLLM-format entries into catalogue models."""

from __future__ import annotations

import pytest

from llmlab.errors import PricingError
from llmlab.pricing._litellm import convert_entry, convert_table, model_name


class TestConvertEntry:
    def test_rates_tiers_service_tiers_and_multipliers(self) -> None:
        """Every kind of LiteLLM rate key lands in its place, as exact decimal strings."""
        entry = {
            "litellm_provider": "openai", "mode": "chat", "max_input_tokens": 1000,
            "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 2e-07, "cache_creation_input_token_cost_above_12hr": 5e-06,
            "input_cost_per_token_batches": 1e-06, "input_cost_per_token_above_272k_tokens": 4e-06,
            "output_cost_per_token_above_272k_tokens_priority": 3e-05,
            "regional_processing_uplift_multiplier_eu": 1.1,
            "provider_specific_entry": {"fast": 2, "note": "text"},
            "supports_vision": True, "search_context_cost_per_query": {"low": 0.01},
        }
        model = convert_entry("gpt-x", entry, "openai")
        period = model["prices"][0]
        assert period["rates"]["standard"] == {"input": "0.000002", "output": "0.00001",
                                               "cache_read": "0.0000002",
                                               "cache_write_long": "0.000005"}
        assert period["rates"]["batch"] == {"input": "0.000001"}
        assert period["tiers"] == {"272000": {"standard": {"input": "0.000004"},
                                              "priority": {"output": "0.00003"}}}
        assert period["multipliers"] == {"eu": "1.1", "fast": "2"}
        assert model["supports"] == ["vision"]
        assert model["max_input_tokens"] == 1000

    def test_listed_long_context_tiers_are_kept_for_every_model(self) -> None:
        """A model's own tiers stand whatever its family (no blanket "Claude 4.6+ is flat")."""
        entry = {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 1e-07,
                 "output_cost_per_token": 5e-07, "input_cost_per_token_above_100k_tokens": 5e-07}
        for key in ("claude-haiku-5-5", "claude-sonnet-4-5"):
            period = convert_entry(key, entry, "anthropic")["prices"][0]
            assert period["tiers"] == {"100000": {"standard": {"input": "0.0000005"}}}
            assert "tier_rule" not in period  # Anthropic: the tier starts above the threshold

    def test_provider_rules(self) -> None:
        """xAI tiers start at the threshold; Fireworks cache reads default to half the input."""
        entry = {"mode": "chat", "input_cost_per_token": 2e-06, "output_cost_per_token": 6e-06,
                 "input_cost_per_token_above_200k_tokens": 4e-06}
        assert convert_entry("xai/grok-x", entry, "xai")["prices"][0]["tier_rule"] == "reach"
        fireworks = convert_entry("fireworks_ai/m", entry, "fireworks")["prices"][0]
        assert fireworks["rates"]["standard"]["cache_read"] == "0.000001"  # $2/M x 50 %
        listed = convert_entry("fireworks_ai/m", {**entry, "cache_read_input_token_cost": 2e-07},
                               "fireworks")["prices"][0]
        assert listed["rates"]["standard"]["cache_read"] == "0.0000002"

    def test_off_peak_pricing_is_kept(self) -> None:
        """``off_peak_pricing`` becomes the period's off-peak rates and windows."""
        entry = {"mode": "chat", "input_cost_per_token": 3e-07, "output_cost_per_token": 1.2e-06,
                 "off_peak_pricing": {"input_cost_per_token": 1.5e-07,
                                      "cache_read_input_token_cost": 3e-09,
                                      "weekday_timezone": "Asia/Shanghai",
                                      "windows": [{"hours_utc": "00:00-00:00",
                                                   "weekdays": [6, 7]}]}}
        off_peak = convert_entry("deepseek-x", entry, "deepseek")["prices"][0]["off_peak"]
        assert off_peak == {"rates": {"input": "0.00000015", "cache_read": "0.000000003"},
                            "windows": [{"hours_utc": ["00:00-00:00"], "weekdays": [6, 7]}],
                            "weekday_timezone": "Asia/Shanghai"}

    def test_bad_rates_are_refused(self) -> None:
        """Negative or non-numeric rates, or no input price, raise PricingError."""
        with pytest.raises(PricingError, match="non-negative"):
            convert_entry("m", {"input_cost_per_token": -1}, "openai")
        with pytest.raises(PricingError, match="not a number"):
            convert_entry("m", {"input_cost_per_token": "cheap"}, "openai")
        with pytest.raises(PricingError, match="no input_cost_per_token"):
            convert_entry("m", {"output_cost_per_token": 1e-06}, "openai")


class TestConvertTable:
    def test_filters_providers_and_modes_and_prefers_prefixed_keys(self) -> None:
        """Only covered providers' token-priced models survive; outside a strict build an
        unsettled collision keeps the prefixed key."""
        table = {
            "sample_spec": {"mode": "one of: chat"},
            "gemini-pro": {"litellm_provider": "gemini", "mode": "chat",
                           "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
            "gemini/gemini-pro": {"litellm_provider": "gemini", "mode": "chat",
                                  "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-06},
            "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation",
                         "input_cost_per_token": 1e-06},
            "ollama/llama3": {"litellm_provider": "ollama", "mode": "chat",
                              "input_cost_per_token": 0},
        }
        models = convert_table(table)
        assert list(models) == ["google/gemini-pro"]
        assert models["google/gemini-pro"]["prices"][0]["rates"]["standard"]["input"] == "0.000002"

    def test_model_names_drop_litellm_prefixes_only(self) -> None:
        """LiteLLM routing prefixes are stripped; a model's own slashes are kept."""
        assert model_name("gemini/gemini-2.5-pro") == "gemini-2.5-pro"
        assert model_name("together_ai/meta-llama/Llama-3") == "meta-llama/llama-3"
        assert model_name("meta-llama/Llama-3") == "meta-llama/llama-3"
