"""Reading a LiteLLM table for an update (``_table.py``): files and URLs (a local HTTP server,
never the network), validation with clear messages, and the diff an update shows."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmlab.errors import PricingError
from llmlab.pricing import Catalogue
from llmlab.pricing._diff import PriceChange, diff_models
from llmlab.pricing._litellm import convert_table
from llmlab.pricing._table import load_table, validate_table

GOOD = {"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                   "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06}}


@pytest.fixture
def http_files() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    """A local HTTP server answering paths from a dict: path -> (status, body)."""
    files: dict[str, tuple[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = files.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", files
    httpd.shutdown()
    httpd.server_close()


class TestLoad:
    def test_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "prices.json"
        path.write_text(json.dumps(GOOD))
        table, origin = load_table(path)
        assert table == GOOD and origin == str(path)

    def test_a_url(self, http_files: tuple[str, dict[str, tuple[int, bytes]]]) -> None:
        url, files = http_files
        files["/prices.json"] = (200, json.dumps(GOOD).encode())
        table, origin = load_table(f"{url}/prices.json")
        assert table == GOOD and origin == f"{url}/prices.json"

    def test_a_url_that_fails(self, http_files: tuple[str, dict[str, tuple[int, bytes]]]) -> None:
        url, files = http_files
        with pytest.raises(PricingError, match=r"cannot download .*/missing.json: HTTP 404"):
            load_table(f"{url}/missing.json")
        files["/page"] = (200, b"<html>not a table</html>")
        with pytest.raises(PricingError, match="not JSON"):
            load_table(f"{url}/page")

    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(PricingError, match=r"cannot read LiteLLM table .*missing\.json"):
            load_table(tmp_path / "missing.json")


class TestValidation:
    """Malformed tables are refused with the entry and the field named."""

    @pytest.mark.parametrize(("entry", "message"), [
        ({"input_cost_per_token": "cheap"}, "'gpt-4o'.input_cost_per_token: a rate must be a "
                                            "number, got 'cheap'"),
        ({"input_cost_per_token": -1e-06}, "'gpt-4o'.input_cost_per_token: a rate must be a "
                                           "finite number >= 0"),
        ({"input_cost_per_token": 1e-06, "cache_read_input_token_cost": True},
         "'gpt-4o': cache_read_input_token_cost: a rate must be a number, got True"),
        ({"input_cost_per_token": 1e-06, "output_cost_per_token_batches": [1]},
         "'gpt-4o': output_cost_per_token_batches: a rate must be a number"),
    ])
    def test_bad_rates(self, entry: dict[str, Any], message: str) -> None:
        table = {"gpt-4o": {"litellm_provider": "openai", "mode": "chat", **entry}}
        with pytest.raises(PricingError) as caught:
            validate_table(table, "prices.json")
        assert f"prices.json: malformed LiteLLM price table: {message}" in str(caught.value)

    def test_not_an_object(self) -> None:
        with pytest.raises(PricingError, match="a JSON object of model entries, not list"):
            validate_table([1, 2], "prices.json")

    def test_an_entry_that_is_not_an_object(self) -> None:
        with pytest.raises(PricingError, match="'gpt-4o': an entry must be a JSON object"):
            validate_table({**GOOD, "gpt-4o": 3}, "prices.json")

    def test_no_priced_model(self) -> None:
        """A catalogue document or an unrelated JSON object is not taken for a table."""
        with pytest.raises(PricingError, match="is this a LiteLLM price table"):
            validate_table({"format": {"x": 1}, "models": {}}, "catalogue.json")

    def test_many_problems_are_counted(self) -> None:
        table = {f"m{i}": {"litellm_provider": "openai", "mode": "chat",
                           "input_cost_per_token": "x"} for i in range(8)}
        with pytest.raises(PricingError, match=r"\(and 3 more\)"):
            validate_table(table)

    def test_entries_llmlab_does_not_price_are_not_checked(self) -> None:
        """Other providers and modes may hold anything (LiteLLM's table does)."""
        table = {**GOOD, "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation",
                                      "input_cost_per_pixel": "varies"},
                 "sample_spec": {"litellm_provider": "one of …", "input_cost_per_token": 0.0}}
        assert validate_table(table) == table

    def test_the_bundled_source_table_is_valid(self) -> None:
        root = Path(__file__).resolve().parents[3]
        table, _ = load_table(root / "scripts" / "data" / "litellm_model_prices.json")
        from llmlab.pricing._media_prices import with_media_models  # images/audio (#15)

        models = with_media_models({"models": convert_table(table)})["models"]
        assert len(models) == len(Catalogue.bundled().identities())


class TestDiff:
    """What an update shows: added, no longer listed, and every changed component."""

    def test_components_old_and_new(self, catalogue: Catalogue) -> None:
        table = {
            "gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                       "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                       "cache_read_input_token_cost": 1.25e-06,
                       "input_cost_per_token_batches": 1e-06,
                       "output_cost_per_token_batches": 5e-06,
                       "input_cost_per_token_priority": 4.25e-06,
                       "output_cost_per_token_priority": 1.7e-05,
                       "cache_read_input_token_cost_priority": 2.125e-06},
            "gpt-7": {"litellm_provider": "openai", "mode": "chat",
                      "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06},
            "claude-sonnet-4-5": {"litellm_provider": "anthropic", "mode": "chat",
                                  "input_cost_per_token": 3e-06},
            "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat",
                                      "input_cost_per_token": 1.25e-06,
                                      "output_cost_per_token": 1e-05,
                                      "input_cost_per_token_above_200k_tokens": 3e-06},
        }
        models = convert_table(table)
        current = {key: catalogue.entry(key) for key in models}
        covered = {k for k, (p, _) in catalogue.identities().items() if p == "openai"}
        diff = diff_models(current, models, covered)
        assert diff.added == ["openai/gpt-7"]
        assert diff.changed["openai/gpt-4o"] == [
            PriceChange("input", "2.5", "2"), PriceChange("input (batch)", "1.25", "1")]
        assert "openai/gpt-4o-mini" in diff.removed and "openai/gpt-4o" not in diff.removed
        sonnet = {c.component: (c.old, c.new) for c in diff.changed["anthropic/claude-sonnet-4-5"]}
        assert sonnet["output"] == ("15", "0")
        assert sonnet["cache_write_long"] == ("6", None)  # no longer listed: falls back
        gemini = {c.component: (c.old, c.new) for c in diff.changed["google/gemini-2.5-pro"]}
        assert gemini["input (>200k)"] == ("2.5", "3")
        assert gemini["output (>200k)"] == ("15", None)
        assert diff.to_dict()["changed"]["openai/gpt-4o"][0] == {
            "component": "input", "old": "2.5", "new": "2"}
