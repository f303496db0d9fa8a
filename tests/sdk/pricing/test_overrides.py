"""Pricing overrides read from ~/.llmlab/pricing.toml."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from llmlab.errors import ConfigurationError
from llmlab.pricing import Catalogue, cost, load_overrides
from llmlab.usage import Usage

TOML = '''
[models."ft:gpt-4o-mini:acme::abc123"]
provider = "openai"
input = 0.30
output = "1.20"
cache_read = 0.15

[models."gpt-4o"]
provider = "openai"
input = 2.0
output = 8.0
effective_from = "2027-01-01"

[aliases]
"prod-gpt" = "openai/gpt-4o"

[markup]
default = 0
"support-bot" = 12.5
'''


class TestPricingToml:
    def test_user_file_is_applied_to_the_default_catalogue(self, llmlab_home: Path) -> None:
        """Models, history, aliases and markups from pricing.toml shape llmlab.cost()."""
        (llmlab_home / "pricing.toml").write_text(TOML)
        million = Usage(input_tokens=1_000_000)
        assert cost("ft:gpt-4o-mini:acme::abc123", million).total == Decimal("0.3")
        assert cost("prod-gpt", million, at="2026-12-01").total == Decimal("2.5")
        assert cost("gpt-4o", million, at="2027-02-01").total == Decimal("2")
        assert cost("gpt-4o", million, project="support-bot", at="2026-12-01").total == \
            Decimal("2.8125")

    def test_broken_user_file_is_logged_not_raised(self, llmlab_home: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
        """A broken pricing.toml never breaks cost tracking: it is logged and skipped."""
        (llmlab_home / "pricing.toml").write_text("[models.x\n")
        with caplog.at_level(logging.ERROR, logger="llmlab"):
            assert cost("gpt-4o", Usage(input_tokens=1_000_000)).total == Decimal("2.5")
        assert "ignoring pricing overrides" in caplog.text

    @pytest.mark.parametrize(("text", "message"), [
        ("[models.x\n", "not valid TOML"),
        ("[modles]\n", "unknown section"),
        ('[models.x]\nprovider = "openai"\ninput = 1\n', "needs 'output'"),
        ('[models.x]\nprovider = "openai"\ninput = 1\noutput = 1\ncolour = 2\n', "unknown key"),
        ('[aliases]\n"a" = "openai/none"\n', "not in the pricing catalogue"),
        ('[markup]\ndefault = -150\n', "above -100"),
    ])
    def test_explicit_load_reports_the_problem(self, tmp_path: Path, text: str,
                                               message: str) -> None:
        """load_overrides raises ConfigurationError naming the file and the problem."""
        path = tmp_path / "pricing.toml"
        path.write_text(text)
        with pytest.raises(ConfigurationError, match=message) as info:
            load_overrides(Catalogue.bundled(), path)
        assert str(path) in str(info.value)
