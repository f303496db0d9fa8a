"""``llmlab pricing update [--from URL|FILE] [--dry-run] [--json]``: fetch, validate, show the
diff, store the user catalogue. URLs are served by a local HTTP server, never the network."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmlab.pricing import _table

from .helpers import free_port, no_traceback, run

TABLE = {
    "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2e-06,
               "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06,
               "input_cost_per_token_batches": 1.25e-06, "output_cost_per_token_batches": 5e-06,
               "input_cost_per_token_priority": 4.25e-06,
               "output_cost_per_token_priority": 1.7e-05,
               "cache_read_input_token_cost_priority": 2.125e-06},
    "gpt-7": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06,
              "output_cost_per_token": 4e-06},
}


@pytest.fixture
def table_url() -> Iterator[str]:
    """A local HTTP server with TABLE at /prices.json and a malformed one at /bad.json."""
    bodies = {"/prices.json": json.dumps(TABLE).encode(),
              "/bad.json": json.dumps({"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                                                  "input_cost_per_token": "2e-06"}}).encode()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


class TestUpdate:
    def test_from_a_url_shows_the_diff_and_stores_it(self, table_url: str,
                                                     llmlab_home: Path) -> None:
        """Added models, each changed price with old and new, where it was stored; then the
        catalogue prices with it."""
        result = run("pricing", "update", "--from", f"{table_url}/prices.json",
                     "--effective-from", "2026-12-01")
        assert result.exit_code == 0, result.output
        out = result.output
        assert f"{table_url}/prices.json: 1 added, 1 changed, 0 unchanged" in out
        assert "New prices apply from 2026-12-01" in out
        assert "Added: openai/gpt-7" in out
        assert "No longer listed: openai/" in out and "kept for older events" in out
        row = next(line for line in out.splitlines() if line.startswith("openai/gpt-4o "))
        assert "input" in row and "2.5" in row and row.rstrip().endswith("2")
        assert f"Stored in {llmlab_home / 'catalogue.json'}" in out
        shown = json.loads(run("pricing", "show", "gpt-4o", "--json").stdout)
        assert shown["per_million"]["input"] == "2" and shown["effective_from"] == "2026-12-01"
        assert json.loads(run("pricing", "show", "gpt-7", "--json").stdout)["per_million"][
            "output"] == "4"

    def test_from_a_file_as_json(self, tmp_path: Path, llmlab_home: Path) -> None:
        source = tmp_path / "prices.json"
        source.write_text(json.dumps(TABLE))
        result = run("pricing", "update", "--from", str(source), "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["added"] == ["openai/gpt-7"] and data["source"] == str(source)
        assert data["changed"] == {"openai/gpt-4o": [
            {"component": "input", "old": "2.5", "new": "2"}]}
        assert data["saved_to"] == str(llmlab_home / "catalogue.json")

    def test_the_default_source_is_litellms_table(
            self, table_url: str, llmlab_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without --from the published table is read (pointed at the local server here);
        --dry-run shows the diff and stores nothing."""
        assert _table.DEFAULT_TABLE_URL.startswith("https://raw.githubusercontent.com/BerriAI/")
        monkeypatch.setattr(_table, "DEFAULT_TABLE_URL", f"{table_url}/prices.json")
        result = run("pricing", "update", "--dry-run")
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"{table_url}/prices.json: 1 added, 1 changed")
        assert "Dry run: nothing stored." in result.output
        assert not (llmlab_home / "catalogue.json").exists()

    def test_a_malformed_table_is_refused(self, table_url: str, llmlab_home: Path) -> None:
        result = run("pricing", "update", "--from", f"{table_url}/bad.json")
        no_traceback(result)
        assert ("malformed LiteLLM price table: 'gpt-4o'.input_cost_per_token: a rate must be "
                "a number, got '2e-06'") in result.output
        assert not (llmlab_home / "catalogue.json").exists()

    def test_an_unreachable_source(self, table_url: str) -> None:
        missing = run("pricing", "update", "--from", f"{table_url}/nothing.json")
        no_traceback(missing)
        assert "HTTP 404" in missing.output
        down = run("pricing", "update", "--from", f"http://127.0.0.1:{free_port()}/p.json")
        no_traceback(down)
        assert "cannot download" in down.output

    def test_help_names_the_command(self) -> None:
        result = run("pricing", "--help")
        assert "update" in result.output
        assert "--dry-run" in run("pricing", "update", "--help").output
