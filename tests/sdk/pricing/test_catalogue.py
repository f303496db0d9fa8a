"""The bundled catalogue, model name resolution, overrides in code, history and imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from llmlab.errors import ConfigurationError, PricingError
from llmlab.pricing import Catalogue, cost, import_litellm
from llmlab.usage import Usage

ROOT = Path(__file__).resolve().parents[3]
MILLION = Usage(input_tokens=1_000_000)


class TestBundledCatalogue:
    def test_covers_every_required_provider(self, catalogue: Catalogue) -> None:
        """Well over 1,000 models, from every provider the catalogue promises."""
        providers = Counter(m.provider for m in catalogue.models.values())
        assert len(catalogue.models) > 1000
        for provider in ("openai", "anthropic", "google", "mistral", "cohere", "deepseek", "xai",
                         "groq", "together", "fireworks", "azure", "bedrock", "vertex"):
            assert providers[provider] > 0, provider
        modes = {m.mode for m in catalogue.models.values()}
        assert {"chat", "responses", "embedding"} <= modes

    def test_records_its_source(self, catalogue: Catalogue) -> None:
        """The catalogue names its source, licence, date and the table's sha256."""
        assert catalogue.pricing_version == "2026-11-12"
        assert catalogue.source["license"] == "MIT"
        assert catalogue.source["sha256"] == (
            "8f8060d8ce7a40c91b995c74d6a27657543d49e3c1c53430dabd556f244392c6")

    def test_committed_file_is_what_the_script_builds(self, tmp_path: Path) -> None:
        """scripts/build_catalogue.py regenerates the committed catalogue byte for byte."""
        out = tmp_path / "catalogue.json"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build_catalogue.py"),
                        "--output", str(out)], check=True, capture_output=True)
        committed = ROOT / "sdk" / "llmlab" / "pricing" / "catalogue.json"
        assert out.read_bytes() == committed.read_bytes()


class TestResolution:
    @pytest.mark.parametrize(("name", "provider", "expected"), [
        ("gpt-4o", None, "openai/gpt-4o"),
        ("GPT-4o", None, "openai/gpt-4o"),
        ("openai/gpt-4o", None, "openai/gpt-4o"),
        ("gpt-4o-2024-08-06", None, "openai/gpt-4o-2024-08-06"),
        ("gpt-4o-2031-01-01", None, "openai/gpt-4o"),
        ("claude-sonnet-4-5-20250929", None, "anthropic/claude-sonnet-4-5-20250929"),
        ("claude-opus-5-5-20261101", "anthropic", "anthropic/claude-opus-5-5"),
        ("gemini/gemini-2.5-pro", None, "google/gemini-2.5-pro"),
        ("models/gemini-2.5-pro", "google", "google/gemini-2.5-pro"),
        ("gemini-2.5-pro", None, "google/gemini-2.5-pro"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock",
         "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("vertex_ai/claude-sonnet-4-5@20250929", None, "vertex/claude-sonnet-4-5@20250929"),
        ("gpt-6-sol", "azure", "azure/gpt-6-sol"),
        ("daybreak-blue-latest", "azure", "openai/daybreak-blue-latest"),
        ("ft:gpt-4.1-2025-04-14:acme::x1", "openai", "openai/ft:gpt-4.1-2025-04-14"),
        ("deepseek/deepseek-chat", None, "deepseek/deepseek-chat"),
        ("accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks",
         "fireworks/accounts/fireworks/models/llama-v3p1-8b-instruct"),
    ])
    def test_names_resolve(self, catalogue: Catalogue, name: str, provider: str | None,
                           expected: str) -> None:
        """Bare, prefixed, dated, cased, Bedrock, Vertex and Azure names find their price."""
        found = catalogue.resolve(name, provider)
        assert found is not None and found.key == expected

    def test_bare_name_prefers_first_party(self, catalogue: Catalogue) -> None:
        """A bare name served by several providers is priced as the first-party model."""
        assert catalogue.resolve("claude-sonnet-4-5").provider == "anthropic"  # type: ignore[union-attr]

    def test_model_id_starting_with_a_provider_prefix(self, catalogue: Catalogue) -> None:
        """Together's own id ``together/Tev1-4B-experimental`` is priced, its prefix kept."""
        for provider in ("together", None):
            c = catalogue.cost("together/Tev1-4B-experimental", Usage(input_tokens=1_000_000),
                               provider)
            assert c.priced and c.total == Decimal("0.042")  # the table's $0.042 per 1M

    def test_codestral_latest_bills_the_api_price(self, catalogue: Catalogue) -> None:
        """``codestral-latest`` bills Mistral's $0.30/$0.90 per 1M, not the free endpoint's $0."""
        c = catalogue.cost("codestral-latest", Usage(input_tokens=1_000, output_tokens=1_000))
        assert c.total == (1_000 * Decimal("0.30") + 1_000 * Decimal("0.90")) / 1_000_000

    def test_provider_does_not_borrow_unrelated_prices(self, catalogue: Catalogue) -> None:
        """Groq is not priced with OpenAI's list price for a model it does not list."""
        assert catalogue.resolve("gpt-6-sol", "groq") is None


class TestOverridesInCode:
    def test_custom_price(self, catalogue: Catalogue) -> None:
        """set_price adds a model priced per 1M tokens by default."""
        catalogue.set_price("ft:acme", provider="openai", input="3", output="12", cache_read="1.5")
        c = catalogue.cost("ft:acme", Usage(input_tokens=2_000_000, cache_read_tokens=1_000_000,
                                            output_tokens=1_000_000))
        assert c.total == Decimal("3") + Decimal("1.5") + Decimal("12")

    def test_price_history_prices_each_event_at_its_time(self, catalogue: Catalogue) -> None:
        """A new price with effective_from applies from that date; earlier events keep the old."""
        catalogue.set_price("gpt-4o", provider="openai", input="5", output="15",
                            effective_from="2026-12-01")
        assert catalogue.cost("gpt-4o", MILLION, at=date(2026, 11, 30)).total == Decimal("2.5")
        assert catalogue.cost("gpt-4o", MILLION, at=datetime(2026, 12, 1, tzinfo=UTC)).total \
            == Decimal("5")
        assert catalogue.cost("gpt-4o", MILLION, at="2027-01-01T00:00:00Z").total == Decimal("5")

    def test_alias(self, catalogue: Catalogue) -> None:
        """An alias (an Azure deployment name) is priced as its target."""
        catalogue.add_alias("prod-chat", "openai/gpt-4o")
        assert catalogue.cost("prod-chat", MILLION, "azure").total == Decimal("2.5")

    def test_alias_to_unknown_model_is_refused(self, catalogue: Catalogue) -> None:
        """An alias to a model that is not in the catalogue is a configuration error."""
        with pytest.raises(ConfigurationError, match="not in the pricing catalogue"):
            catalogue.add_alias("x", "openai/no-such-model")

    def test_markup_per_project(self, catalogue: Catalogue) -> None:
        """A project's markup scales its costs; other projects use the default markup."""
        catalogue.set_markup(10, project="support-bot")
        catalogue.set_markup("1")
        assert catalogue.cost("gpt-4o", MILLION, project="support-bot").total == Decimal("2.75")
        assert catalogue.cost("gpt-4o", MILLION, project="other").total == Decimal("2.525")

    @pytest.mark.parametrize("kwargs", [
        {"provider": "nope", "input": 1, "output": 1},
        {"provider": "openai", "input": -1, "output": 1},
        {"provider": "openai", "input": "abc", "output": 1},
        {"provider": "openai", "input": 1, "output": 1, "cache_reed": 1},
    ])
    def test_bad_overrides_are_refused(self, catalogue: Catalogue, kwargs: dict) -> None:  # type: ignore[type-arg]
        """Unknown providers or components and negative or non-numeric prices are refused."""
        with pytest.raises(ConfigurationError):
            catalogue.set_price("m", **kwargs)


class TestImport:
    def _table(self, tmp_path: Path, **entries: dict) -> Path:  # type: ignore[type-arg]
        path = tmp_path / "prices.json"
        path.write_text(json.dumps(entries))
        return path

    def test_import_adds_and_updates_with_history(self, catalogue: Catalogue,
                                                  tmp_path: Path) -> None:
        """Imported changes add a price period; calls before it keep the old price."""
        table = self._table(
            tmp_path,
            **{"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                          "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06},
               "gpt-7": {"litellm_provider": "openai", "mode": "chat",
                         "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06},
               "gpt-4o-mini": catalogue_entry_as_litellm()})
        report = catalogue.import_litellm(table, effective_from="2027-01-01")
        assert (report.added, report.updated, report.unchanged) == (1, 1, 1)
        assert catalogue.cost("gpt-4o", MILLION, at="2026-12-31").total == Decimal("2.5")
        assert catalogue.cost("gpt-4o", MILLION, at="2027-01-02").total == Decimal("2")
        assert catalogue.cost("gpt-7", MILLION).priced

    def test_import_and_save_is_used_by_later_processes(self, tmp_path: Path,
                                                        llmlab_home: Path) -> None:
        """import_litellm(save=True) writes ~/.llmlab/catalogue.json, which a reload uses."""
        table = self._table(tmp_path, **{"gpt-7": {
            "litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06}})
        import_litellm(table, effective_from="2027-01-01", save=True)
        assert (llmlab_home / "catalogue.json").exists()
        Catalogue.reset_default()
        assert cost("gpt-7", MILLION).total == Decimal("1")
        assert cost("gpt-4o", MILLION).total == Decimal("2.5")

    def test_unreadable_table_is_a_pricing_error(self, catalogue: Catalogue,
                                                 tmp_path: Path) -> None:
        """A missing or malformed table raises PricingError with the path."""
        with pytest.raises(PricingError, match="cannot read"):
            catalogue.import_litellm(tmp_path / "missing.json")
        bad = tmp_path / "bad.json"
        bad.write_text("[1, 2]")
        with pytest.raises(PricingError):
            catalogue.import_litellm(bad)


def catalogue_entry_as_litellm() -> dict:  # type: ignore[type-arg]
    """gpt-4o-mini exactly as the bundled table lists it (an unchanged entry)."""
    table = json.loads((ROOT / "scripts" / "data" / "litellm_model_prices.json").read_text())
    return table["gpt-4o-mini"]  # type: ignore[no-any-return]
