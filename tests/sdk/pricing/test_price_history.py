"""Price history through refreshes: an update appends a period instead of overwriting, events
re-price at their own time, and the layers (bundled, user catalogue, overrides) stack."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import llmlab
from llmlab.pricing import Catalogue, cost
from llmlab.pricing._update import update_catalogue
from llmlab.transport import InMemoryTransport

MILLION_IN = {"input_tokens": 1_000_000, "output_tokens": 0}


def gpt_4o(input_rate: float, output_rate: float) -> dict[str, Any]:
    return {"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                       "input_cost_per_token": input_rate, "output_cost_per_token": output_rate}}


def write(tmp_path: Path, table: dict[str, Any], name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(table))
    return path


class TestRefreshAppendsPeriods:
    """Each refresh that changes a price adds a period from its date; none is lost."""

    def test_two_refreshes_keep_three_prices(self, tmp_path: Path, llmlab_home: Path) -> None:
        """$2.50 (bundled) until 2027-01-01, $2 until 2027-03-01, $1.50 after."""
        update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)), effective_from="2027-01-01")
        update_catalogue(write(tmp_path, gpt_4o(1.5e-06, 6e-06)), effective_from="2027-03-01")
        assert cost("gpt-4o", MILLION_IN, at="2026-12-31").total == Decimal("2.5")
        assert cost("gpt-4o", MILLION_IN, at="2027-01-01T00:00:00Z").total == Decimal("2")
        assert cost("gpt-4o", MILLION_IN, at="2027-02-28T23:59:59Z").total == Decimal("2")
        assert cost("gpt-4o", MILLION_IN, at="2027-03-01").total == Decimal("1.5")
        assert cost("gpt-4o", MILLION_IN).total == Decimal("1.5")
        stored = json.loads((llmlab_home / "catalogue.json").read_text())
        periods = stored["models"]["openai/gpt-4o"]["prices"]
        assert [p["effective_from"] for p in periods] == [None, "2027-01-01", "2027-03-01"]
        # only what an update touched is stored: the bundled catalogue supplies the rest
        assert list(stored["models"]) == ["openai/gpt-4o"]
        assert cost("gpt-4o-mini", MILLION_IN).priced

    def test_an_unchanged_refresh_adds_no_period(self, tmp_path: Path,
                                                 llmlab_home: Path) -> None:
        """The same prices again: nothing is appended, the diff says unchanged."""
        table = write(tmp_path, gpt_4o(2e-06, 8e-06))
        update_catalogue(table, effective_from="2027-01-01")
        again = update_catalogue(table, effective_from="2027-02-01")
        assert again.diff.changed == {} and again.diff.unchanged == 1
        stored = json.loads((llmlab_home / "catalogue.json").read_text())
        assert len(stored["models"]["openai/gpt-4o"]["prices"]) == 2

    def test_a_dry_run_stores_nothing(self, tmp_path: Path, llmlab_home: Path) -> None:
        result = update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)), dry_run=True)
        assert result.saved_to is None and "openai/gpt-4o" in result.diff.changed
        assert not (llmlab_home / "catalogue.json").exists()
        assert cost("gpt-4o", MILLION_IN).total == Decimal("2.5")

    def test_the_default_date_is_today_in_utc(self, tmp_path: Path) -> None:
        result = update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)))
        assert result.effective_from == datetime.now(UTC).date()

    def test_an_sdk_event_at_an_old_timestamp_keeps_the_old_price(
            self, tmp_path: Path) -> None:
        """llmlab.record with an old timestamp is priced by the period in force then."""
        update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)), effective_from="2026-11-15")
        llmlab.init(transport=InMemoryTransport(), ledger=False, auto_instrument=False)
        try:
            usage = {"prompt_tokens": 1000, "completion_tokens": 100}
            old = llmlab.record("openai", "gpt-4o", usage,
                                timestamp=datetime(2026, 11, 2, 10, tzinfo=UTC))
            new = llmlab.record("openai", "gpt-4o", usage,
                                timestamp=datetime(2026, 11, 20, 10, tzinfo=UTC))
        finally:
            llmlab.shutdown()
        assert old is not None and new is not None
        assert old.cost.total == Decimal("0.0035") and new.cost.total == Decimal("0.0028")


class TestLayers:
    """Where the user catalogue lives and what beats what."""

    def test_the_environment_names_the_user_catalogue(
            self, tmp_path: Path, llmlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        target = tmp_path / "team" / "prices-catalogue.json"
        monkeypatch.setenv("LLMLAB_PRICING_CATALOGUE", str(target))
        result = update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)))
        assert result.saved_to == target and target.exists()
        assert not (llmlab_home / "catalogue.json").exists()
        assert cost("gpt-4o", MILLION_IN).total == Decimal("2")

    def test_overrides_beat_the_user_catalogue(self, tmp_path: Path,
                                               llmlab_home: Path) -> None:
        """pricing.toml is applied last: a negotiated price wins over a refreshed one."""
        update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)))
        (llmlab_home / "pricing.toml").write_text(
            '[models."gpt-4o"]\nprovider = "openai"\ninput = 1\noutput = 4\n')
        Catalogue.reset_default()
        assert cost("gpt-4o", MILLION_IN).total == Decimal("1")

    def test_per_model_data_wins_over_the_bundled_entry(self, tmp_path: Path) -> None:
        """A model in the user catalogue replaces the bundled entry as a whole (here: its
        batch rates go with it, batch falls back to half the standard rate)."""
        update_catalogue(write(tmp_path, gpt_4o(2e-06, 8e-06)), effective_from="2020-01-01")
        assert cost("gpt-4o", MILLION_IN, service_tier="batch").total == Decimal("1")

    @pytest.mark.parametrize(("content", "reason"), [
        ("{not json", "Expecting property name"),
        ('{"pricing_version": "2027-01-01", "models": {"openai/gpt-4o": {"provider": "openai"}}}',
         "models.openai/gpt-4o.name: Field required"),
    ])
    def test_a_broken_user_catalogue_falls_back_to_the_bundled_one(
            self, llmlab_home: Path, caplog: pytest.LogCaptureFixture, content: str,
            reason: str) -> None:
        (llmlab_home / "catalogue.json").write_text(content)
        Catalogue.reset_default()
        with caplog.at_level(logging.ERROR, logger="llmlab"):
            assert cost("gpt-4o", MILLION_IN).total == Decimal("2.5")
        assert "ignoring the user pricing catalogue" in caplog.text and reason in caplog.text

    def test_import_litellm_save_writes_only_the_changes(self, tmp_path: Path,
                                                         llmlab_home: Path) -> None:
        """The Python API stores what `pricing update` stores (no overrides baked in)."""
        (llmlab_home / "pricing.toml").write_text(
            '[models."acme"]\nprovider = "openai"\ninput = 1\noutput = 4\n')
        Catalogue.reset_default()
        report = llmlab.pricing.import_litellm(write(tmp_path, gpt_4o(2e-06, 8e-06)),
                                               effective_from="2027-01-01", save=True)
        assert (report.added, report.updated) == (0, 1)
        stored = json.loads((llmlab_home / "catalogue.json").read_text())
        assert list(stored["models"]) == ["openai/gpt-4o"]
