"""Name collisions in a LiteLLM table: settled by name with a reason, or the build fails."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.errors import PricingError
from llmlab.pricing._collisions import KNOWN_COLLISIONS
from llmlab.pricing._litellm import convert_table

ROOT = Path(__file__).resolve().parents[3]


def _entry(provider: str, input_rate: float) -> dict[str, object]:
    return {"litellm_provider": provider, "mode": "chat", "input_cost_per_token": input_rate,
            "output_cost_per_token": input_rate}


class TestCollisions:
    def test_strict_build_fails_on_an_unsettled_collision(self) -> None:
        """Two keys pricing one model differently stop the bundled build, naming both."""
        table = {"acme-1": _entry("mistral", 1e-06), "mistral/acme-1": _entry("mistral", 2e-06)}
        with pytest.raises(PricingError, match="acme-1, mistral/acme-1"):
            convert_table(table, strict=True)

    def test_import_keeps_the_prefixed_key_and_says_so(self, caplog: pytest.LogCaptureFixture,
                                                       ) -> None:
        """A user's import settles an unknown collision as before, with a warning, not silently."""
        table = {"acme-1": _entry("mistral", 1e-06), "mistral/acme-1": _entry("mistral", 2e-06)}
        with caplog.at_level(logging.WARNING, logger="llmlab"):
            models = convert_table(table)
        assert models["mistral/acme-1"]["prices"][0]["rates"]["standard"]["input"] == "0.000002"
        assert "mistral/acme-1 is priced differently" in caplog.text

    def test_alike_copies_are_no_collision(self) -> None:
        """Copies with the same prices pass a strict build."""
        table = {"acme-1": _entry("mistral", 1e-06), "mistral/acme-1": _entry("mistral", 1e-06)}
        assert list(convert_table(table, strict=True)) == ["mistral/acme-1"]

    def test_known_collision_picks_the_named_key(self) -> None:
        """The free codestral/ copy loses to the paid mistral/ one, whatever the key order."""
        table = {"codestral/codestral-latest": _entry("codestral", 0.0),
                 "mistral/codestral-latest": _entry("mistral", 3e-07)}
        model = convert_table(table, strict=True)["mistral/codestral-latest"]
        assert model["prices"][0]["rates"]["standard"]["input"] == "0.0000003"

    def test_every_known_collision_is_real_and_explained(self) -> None:
        """Each settled collision names a key of the bundled table, with a reason."""
        table = json.loads((ROOT / "scripts" / "data" / "litellm_model_prices.json").read_text())
        for ref, (key, reason) in KNOWN_COLLISIONS.items():
            assert key in table, ref
            assert len(reason) > 20, ref

    def test_build_script_fails_loudly_and_writes_nothing(self, tmp_path: Path) -> None:
        """scripts/build_catalogue.py exits 1 naming the collision and leaves no catalogue."""
        table = tmp_path / "table.json"
        table.write_text(json.dumps({"acme-1": _entry("mistral", 1e-06),
                                     "mistral/acme-1": _entry("mistral", 2e-06)}))
        out = tmp_path / "catalogue.json"
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_catalogue.py"),
                                 str(table), "--output", str(out)], capture_output=True, text=True)
        assert result.returncode == 1
        assert "mistral/acme-1 is priced differently" in result.stderr
        assert not out.exists()
