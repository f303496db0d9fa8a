"""``llmlab demo``: the README's first command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

ENTRY = "from llmlab._cli_entry import main; raise SystemExit(main())"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                  float, Path]:
    """One ``llmlab demo --exit`` in a fresh LLMLAB_HOME, with its wall time."""
    home = tmp_path_factory.mktemp("demo-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMLAB_")}
    env.update(LLMLAB_HOME=str(home), COLUMNS="160")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", ENTRY, "demo", "--exit"], env=env,
                          capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - started, home


def _rows(output: str, title: str) -> dict[str, Decimal]:
    """Key → cost of the table under ``title``."""
    block = output.split(title, 1)[1].split("TOTAL", 1)[0]
    rows = {}
    for line in block.splitlines():
        match = re.match(r"^(\S+)\s+│\s+\$([\d,.]+)\s+│", line)
        if match:
            rows[match[1]] = Decimal(match[2].replace(",", ""))
    return rows


class TestDemo:
    """The offline demo end to end."""

    def test_it_succeeds_in_under_30_seconds(self, demo_run: tuple) -> None:
        """The demo exits 0 within 30 s on a 2-core machine."""
        proc, seconds, _ = demo_run
        assert proc.returncode == 0, proc.stderr
        assert seconds < 30, seconds
        assert "Traceback" not in proc.stderr

    def test_every_provider_costs_something(self, demo_run: tuple) -> None:
        """The by-provider table has a non-zero cost for OpenAI, Anthropic and Google."""
        proc, _, _ = demo_run
        rows = _rows(proc.stdout, "Cost by provider")
        assert set(rows) == {"openai", "anthropic", "google"}, proc.stdout
        assert all(cost > 0 for cost in rows.values()), rows

    def test_models_features_and_the_block(self, demo_run: tuple) -> None:
        """Models of the three providers are priced, and max_cost stopped the runaway agent."""
        proc, _, _ = demo_run
        models = _rows(proc.stdout, "Cost by model")
        assert {"gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"} <= set(models)
        assert all(cost > 0 for cost in models.values())
        assert "research-agent stopped by max_cost" in proc.stdout

    def test_budget_recommendations_and_login_are_printed(self, demo_run: tuple) -> None:
        """The budget status, recommendations and the dashboard login are shown."""
        proc, _, _ = demo_run
        assert "Budget 'Demo shop monthly'" in proc.stdout
        assert "Recommendations" in proc.stdout
        assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/\s+login demo@llmlab\.dev / \S+",
                         proc.stdout)

    def test_it_leaves_the_home_directory_alone(self, demo_run: tuple) -> None:
        """The demo keeps its database, spool and ledger in a temporary directory."""
        _, _, home = demo_run
        assert not (home / "config.toml").exists() and not (home / "ledger").exists()
