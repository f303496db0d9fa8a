"""``llmlab pricing show | list | import``: the local catalogue, no server."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import no_traceback, run


class TestPricing:
    """The pricing commands."""

    def test_show_table(self) -> None:
        """show prints the model's rates per million tokens, with its service tiers."""
        result = run("pricing", "show", "gpt-4o")
        assert result.exit_code == 0, result.output
        assert "openai/gpt-4o" in result.output and "$2.5" in result.output
        assert "batch" in result.output

    def test_show_json_accepts_aliases(self) -> None:
        """show --json resolves a dated snapshot to its catalogue entry."""
        result = run("pricing", "show", "gpt-4o-2024-08-06", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["provider"] == "openai" and data["per_million"]["input"] == "2.5"

    def test_unknown_model(self) -> None:
        """An unknown model is an error that says how to search."""
        result = run("pricing", "show", "gpt-nonexistent-9")
        no_traceback(result)
        assert "Unknown model 'gpt-nonexistent-9'" in result.output
        assert "llmlab pricing list --search" in result.output

    def test_list_filters(self) -> None:
        """list --provider --search narrows the catalogue; --json counts all matches."""
        result = run("pricing", "list", "--provider", "anthropic", "--search", "sonnet", "--json")
        data = json.loads(result.stdout)
        assert data["count"] >= 1
        assert all(m["provider"] == "anthropic" and "sonnet" in m["key"] for m in data["models"])
        table_result = run("pricing", "list", "--search", "gpt-4o", "--limit", "2")
        assert "--limit for more" in table_result.output

    def test_import_refreshes_the_catalogue(self, tmp_path: Path, llmlab_home: Path) -> None:
        """import reads a LiteLLM table, saves it in $LLMLAB_HOME, and show uses it."""
        table_file = tmp_path / "prices.json"
        table_file.write_text(json.dumps({"my-private-model": {
            "litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 0.000001,
            "output_cost_per_token": 0.000002}}))
        result = run("pricing", "import", str(table_file), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["added"] == 1
        assert (llmlab_home / "catalogue.json").exists()
        shown = run("pricing", "show", "my-private-model", "--json")
        assert json.loads(shown.stdout)["per_million"] == {"input": "1", "output": "2",
                                                           "cache_read": "1", "cache_write": "1",
                                                           "cache_write_long": "1"}

    def test_import_a_bad_file(self, tmp_path: Path) -> None:
        """A file that is not JSON, or is missing, is a clear error."""
        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        result = run("pricing", "import", str(bad))
        no_traceback(result)
        assert "cannot read LiteLLM table" in result.output
        missing = run("pricing", "import", str(tmp_path / "missing.json"))
        no_traceback(missing)
        assert "No such file" in missing.output
