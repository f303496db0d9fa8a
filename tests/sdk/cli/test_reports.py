"""``llmlab summary``, ``llmlab events`` and ``llmlab export`` against a real server."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest

from llmlab.cli._options import parse_since

from .helpers import Account, configured, free_port, no_traceback, run, seed


class TestSummary:
    """``llmlab summary``."""

    def test_summary_by_model_json(self, account: Account) -> None:
        """--by model --json is the server's summary, grouped."""
        seed(account, 2)
        seed(account, 1, model="gpt-4o-mini")
        result = run("summary", "--by", "model", "--since", "7d", "--json", env=configured(account))
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["group_by"] == "model" and data["totals"]["calls"] == 3
        assert {g["key"]: g["calls"] for g in data["groups"]} == {"gpt-4o": 2, "gpt-4o-mini": 1}

    def test_summary_table(self, account: Account) -> None:
        """Without --json, a table with a row per group and a TOTAL."""
        seed(account, 2)
        result = run("summary", "--by", "tag:feature", "--tz", "Europe/Paris",
                     env=configured(account))
        assert result.exit_code == 0, result.output
        assert "chat" in result.output and "TOTAL" in result.output
        assert "$0.0070" in result.output  # 2 * (1000 * $2.5/M + 100 * $10/M)

    def test_brackets_in_a_group_are_shown(self, account: Account) -> None:
        """A tag value with brackets is printed as is, not read as rich markup."""
        seed(account, 1, tags={"feature": "[beta]"})
        result = run("summary", "--by", "tag:feature", env=configured(account))
        assert result.exit_code == 0, result.output
        assert "[beta]" in result.output

    def test_summary_by_job_and_day(self, account: Account) -> None:
        """--by job and --by day group as the server does."""
        seed(account, 4)
        jobs = json.loads(run("summary", "--by", "job", "--json", env=configured(account)).stdout)
        assert {g["key"] for g in jobs["groups"]} == {"job-0", "job-1"}
        days = json.loads(run("summary", "--by", "day", "--json", env=configured(account)).stdout)
        assert sum(g["calls"] for g in days["groups"]) == 4

    def test_bad_group_by_is_a_usage_error(self, account: Account) -> None:
        """--by nonsense is refused before any request (exit status 2)."""
        result = run("summary", "--by", "colour", env=configured(account))
        assert result.exit_code == 2 and "tag:<key>" in result.output

    def test_bad_since_is_the_servers_message(self, account: Account) -> None:
        """An unparsable --since is reported with the server's explanation."""
        result = run("summary", "--since", "yesterday-ish", env=configured(account))
        no_traceback(result)
        assert "HTTP 4" in result.output

    @pytest.mark.usefixtures("llmlab_home")
    def test_missing_config(self) -> None:
        """No server anywhere: say how to configure one."""
        result = run("summary")
        no_traceback(result)
        assert "No llmlab server configured" in result.output and "llmlab init" in result.output

    def test_missing_key(self, account: Account) -> None:
        """A URL but no key: say how to log in."""
        result = run("summary", env={"LLMLAB_BASE_URL": account.url})
        no_traceback(result)
        assert "No API key configured" in result.output

    def test_bad_key(self, account: Account) -> None:
        """A key the server rejects: the bad-key message."""
        result = run("summary", env={**configured(account), "LLMLAB_CLI_API_KEY": "llm_wrong"})
        no_traceback(result)
        assert "rejected the API key" in result.output and "llmlab login" in result.output

    def test_ingest_key_lacks_read_scope(self, account: Account) -> None:
        """An ingest-only key gets one clean sentence naming the scope needed (no "..")."""
        result = run("summary", "--api-key", account.ingest_key,
                     env={**configured(account), "LLMLAB_PROJECT": ""})
        no_traceback(result)
        assert "lacks the 'read' scope. The key came from --api-key." in result.output
        assert ".." not in result.output and "`read` scope" in result.output

    def test_server_down(self) -> None:
        """A server that is not running: the cannot-reach message."""
        result = run("summary", env={"LLMLAB_BASE_URL": f"http://127.0.0.1:{free_port()}",
                                     "LLMLAB_CLI_API_KEY": "llm_x"})
        no_traceback(result)
        assert "Cannot reach the llmlab server" in result.output and "llmlab serve" in result.output

    def test_unknown_project(self, account: Account) -> None:
        """--project naming a project the key cannot see lists the ones it can."""
        result = run("summary", "--project", "other", env=configured(account))
        no_traceback(result)
        assert "Unknown project 'other' (from --project)" in result.output
        assert account.project in result.output

    def test_project_by_id(self, account: Account) -> None:
        """--project accepts a numeric id as well as a slug."""
        result = run("summary", "--project", str(account.project_id), "--json",
                     env=configured(account))
        assert result.exit_code == 0, result.output

    def test_parse_since(self) -> None:
        """Durations become ISO UTC times; anything else passes through to the server."""
        assert (parse_since("7d") or "").endswith("Z")
        assert parse_since("2026-11-01") == "2026-11-01" and parse_since(None) is None


class TestEvents:
    """``llmlab events``."""

    def test_events_json_filtered(self, account: Account) -> None:
        """--model filters, --json prints the server's page."""
        seed(account, 2)
        seed(account, 1, model="gpt-4o-mini")
        result = run("events", "--model", "gpt-4o-mini", "--json", env=configured(account))
        assert result.exit_code == 0, result.output
        page = json.loads(result.stdout)
        assert [e["model"] for e in page["events"]] == ["gpt-4o-mini"]

    def test_events_table_and_limit(self, account: Account) -> None:
        """The table shows the newest --limit events."""
        seed(account, 3)
        result = run("events", "--limit", "2", "--job", "job-0", env=configured(account))
        assert result.exit_code == 0, result.output
        assert result.output.count("gpt-4o") == 2 and "job-0" in result.output

    def test_follow_prints_new_events(self, account: Account) -> None:
        """-f polls and prints events that arrive later, once each, as JSON lines."""
        seed(account, 1)
        timer = threading.Timer(0.3, seed, args=(account, 2), kwargs={"model": "gpt-4.1"})
        timer.start()
        result = run("events", "-f", "--interval", "0.4", "--polls", "3", "--json",
                     env=configured(account))
        timer.join()
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [e["model"] for e in lines] == ["gpt-4o", "gpt-4.1", "gpt-4.1"]

    def test_bad_status_filter(self, account: Account) -> None:
        """--status accepts only ok, error and cancelled."""
        result = run("events", "--status", "weird", env=configured(account))
        assert result.exit_code == 2


class TestExport:
    """``llmlab export --csv``."""

    def test_export_writes_every_event(self, account: Account, tmp_path: Path) -> None:
        """The CSV has a header and one row per event, and the command says how many."""
        events = seed(account, 5)
        target = tmp_path / "costs.csv"
        result = run("export", "--csv", str(target), "--since", "2d", env=configured(account))
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(target.open()))
        assert sorted(r["id"] for r in rows) == sorted(e["id"] for e in events)
        assert "Wrote 5 events" in result.output
        assert not list(tmp_path.glob(".*.part"))

    def test_export_to_stdout_with_a_filter(self, account: Account) -> None:
        """--csv - streams to stdout; filters apply."""
        seed(account, 2)
        seed(account, 1, provider="anthropic", model="claude-sonnet-4-5")
        result = run("export", "--csv", "-", "--provider", "anthropic", env=configured(account))
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [r["model"] for r in rows] == ["claude-sonnet-4-5"]

    def test_export_with_a_bad_key_leaves_no_file(self, account: Account, tmp_path: Path) -> None:
        """A rejected key: the message, and no partial file."""
        target = tmp_path / "x.csv"
        result = run("export", "--csv", str(target),
                     env={**configured(account), "LLMLAB_CLI_API_KEY": "llm_bad"})
        no_traceback(result)
        assert "rejected the API key" in result.output
        assert not target.exists() and not list(tmp_path.glob("*x.csv*"))
