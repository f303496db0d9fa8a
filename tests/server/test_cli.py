"""The ``llmlab`` CLI: ``server`` commands, and every user command against a real server.

The user commands run through click's `CliRunner` against a real llmlab server on SQLite,
served by werkzeug on a free port in a thread, so `llmlab.Client` talks HTTP to it.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from werkzeug.serving import make_server

from llmlab._spool import Spool
from llmlab.client import Client
from llmlab_server import create_app, db
from llmlab_server.cli import cli, server_cli
from llmlab_server.cli_config import load_file, resolve, save_file
from llmlab_server.config import TestConfig


class TestDbUpgrade:
    """``server db upgrade`` and ``server db current``."""

    def test_upgrade_migrates_an_empty_database(self, tmp_path: Path) -> None:
        """upgrade takes an empty database to the newest revision and says so."""
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        result = CliRunner().invoke(server_cli, ["db", "upgrade", "--database", url])
        assert result.exit_code == 0, result.output
        assert f"empty -> {db.head_revision()}" in result.output
        engine = db.make_engine(url)
        assert db.current_revision(engine) == db.head_revision()
        engine.dispose()
        current = CliRunner().invoke(server_cli, ["db", "current", "--database", url])
        assert f"current: {db.head_revision()}" in current.output

    def test_upgrade_reads_the_environment(self, tmp_path: Path) -> None:
        """Without --database, LLMLAB_DATABASE_URL names the database."""
        url = f"sqlite:///{tmp_path / 'env.db'}"
        result = CliRunner().invoke(server_cli, ["db", "upgrade"],
                                    env={"LLMLAB_DATABASE_URL": url})
        assert result.exit_code == 0 and (tmp_path / "env.db").exists()


class TestServe:
    """``server serve``."""

    def test_serve_runs_the_app_in_development(self, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """serve builds a development app on --database and runs it on --host/--port."""
        calls: dict[str, object] = {}

        def fake_run(self: Flask, **kwargs: object) -> None:
            calls.update(kwargs, env=self.config["ENV"], url=self.config["DATABASE_URL"])

        monkeypatch.setattr(Flask, "run", fake_run)
        monkeypatch.delenv("LLMLAB_ENV", raising=False)
        monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
        url = f"sqlite:///{tmp_path / 'serve.db'}"
        result = CliRunner().invoke(server_cli, ["serve", "--port", "8123", "--database", url])
        assert result.exit_code == 0, result.output
        assert calls["port"] == 8123 and calls["host"] == "127.0.0.1"
        assert calls["env"] == "development" and calls["url"] == url
        monkeypatch.delenv("LLMLAB_ENV", raising=False)
        monkeypatch.delenv("LLMLAB_DATABASE_URL", raising=False)

    def test_serve_in_production_without_secret_fails_clearly(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """serve with LLMLAB_ENV=production and no secret exits with the config message."""
        monkeypatch.setenv("LLMLAB_ENV", "production")
        monkeypatch.delenv("LLMLAB_SECRET_KEY", raising=False)
        result = CliRunner().invoke(server_cli, [
            "serve", "--database", f"sqlite:///{tmp_path / 'p.db'}"])
        assert result.exit_code != 0 and "LLMLAB_SECRET_KEY" in result.output
        monkeypatch.delenv("LLMLAB_DATABASE_URL", raising=False)


# -- the llmlab CLI against a real server over HTTP -----------------------------------------

@dataclass
class Account:
    """A user with a project on the live server, and the CLI's view of it."""

    url: str
    email: str
    password: str
    project: str
    project_id: int
    admin_key: str
    ingest_key: str


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server (SQLite, werkzeug in a thread) the CLI reaches over HTTP."""
    config = TestConfig()
    config.DATABASE_URL = f"sqlite:///{tmp_path_factory.mktemp('cli-db') / 'cli.db'}"
    config.AUTO_MIGRATE = True
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    app.extensions["llmlab_db"][0].dispose()


@pytest.fixture
def account(live_url: str) -> Account:
    """A fresh account with project, admin (CLI) key and ingest key."""
    email, password = f"u{secrets.token_hex(4)}@example.com", "correct horse battery"
    with Client(None, live_url) as anonymous:
        token = anonymous.signup(email, password)["access_token"]
    with Client(token, live_url) as user:
        slug = f"p-{secrets.token_hex(3)}"
        project = user.create_project("CLI test", slug)
        admin = user.create_key(project["id"], name="cli", scopes=["admin"])["key"]
        ingest = user.create_key(project["id"], name="app", scopes=["ingest"])["key"]
    return Account(live_url, email, password, slug, int(project["id"]), admin, ingest)


def seed(account: Account, count: int = 3, **fields: Any) -> list[dict[str, Any]]:
    """POST ``count`` events (an hour ago) with the account's ingest key."""
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    events = []
    for i in range(count):
        event = {"id": str(uuid.uuid4()), "timestamp": when, "provider": "openai",
                 "model": "gpt-4o", "usage": {"input_tokens": 1000, "output_tokens": 100},
                 "latency_ms": 100.0, "status": "ok", "job_id": f"job-{i % 2}",
                 "user_id": "cust-1", "tags": {"feature": "chat"}}
        event.update(fields)
        events.append(event)
    response = httpx.post(f"{account.url}/api/events/track", json={"events": events},
                          headers={"Authorization": f"Bearer {account.ingest_key}"})
    assert response.status_code == 207 and response.json()["data"]["accepted"] == count
    return events


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Invoke ``llmlab ARGS`` in-process."""
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def configured(account: Account) -> dict[str, str]:
    """Environment that points the CLI at ``account``."""
    return {"LLMLAB_BASE_URL": account.url, "LLMLAB_API_KEY": account.admin_key,
            "LLMLAB_PROJECT": account.project}


def no_traceback(result: Result) -> None:
    """An error exit: non-zero, a message, no Python traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output


class TestInit:
    """``llmlab init`` and ``llmlab login`` write ~/.llmlab/config.toml."""

    def test_init_signs_up_creates_project_and_keys(self, live_url: str, llmlab_home: Path) -> None:
        """init with email and password signs up, creates the project, an admin CLI key and an
        ingest key, and writes a 0600 config."""
        result = run("init", "--url", live_url, "--email", "new@example.com", "--password",
                     "correct horse battery", "--project", "shop", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["created_account"] and data["created_project"]
        assert data["project"] == "shop" and data["ingest_key"].startswith("llm_")
        path = llmlab_home / "config.toml"
        assert path.stat().st_mode & 0o777 == 0o600
        saved = load_file(path)
        assert saved["base_url"] == live_url and saved["project"] == "shop"
        assert saved["api_key"].startswith("llm_") and saved["ingest_key"] == data["ingest_key"]
        with Client(saved["api_key"], live_url) as client:
            assert client.me()["api_key"]["scopes"] == ["admin"]

    def test_init_prints_the_app_settings(self, live_url: str) -> None:
        """Without --json, init prints the export lines for the app's ingest key."""
        result = run("init", "--url", live_url, "--email", "table@example.com", "--password",
                     "correct horse battery")
        assert result.exit_code == 0, result.output
        assert "export LLMLAB_API_KEY=llm_" in result.output
        assert "export LLMLAB_PROJECT=table" in result.output

    def test_init_with_an_existing_email_logs_in(self, account: Account, llmlab_home: Path) -> None:
        """init for an account that exists logs in and reuses its project."""
        result = run("init", "--url", account.url, "--email", account.email, "--password",
                     account.password, "--project", account.project, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert not data["created_account"] and not data["created_project"]
        assert load_file(llmlab_home / "config.toml")["project"] == account.project

    def test_init_with_a_pasted_key(self, account: Account, llmlab_home: Path) -> None:
        """init --api-key stores a read/admin key and its project."""
        result = run("init", "--url", account.url, "--api-key", account.admin_key, "--json")
        assert result.exit_code == 0, result.output
        saved = load_file(llmlab_home / "config.toml")
        assert saved["api_key"] == account.admin_key and saved["project"] == account.project

    def test_init_interactive_prompts(self, live_url: str, llmlab_home: Path) -> None:
        """Without flags, init asks for the URL, the method, email and password."""
        answers = f"{live_url}\nemail\nasked@example.com\ncorrect horse battery\n" \
                  "correct horse battery\n"
        result = run("init", input=answers)
        assert result.exit_code == 0, result.output
        assert load_file(llmlab_home / "config.toml")["email"] == "asked@example.com"

    def test_init_refuses_an_ingest_only_key(self, account: Account) -> None:
        """An ingest key cannot read costs, so init explains and stores nothing."""
        result = run("init", "--url", account.url, "--api-key", account.ingest_key)
        no_traceback(result)
        assert "needs `read`" in result.output

    def test_init_with_a_bad_key(self, account: Account) -> None:
        """A key the server does not know gives the bad-key message."""
        result = run("init", "--url", account.url, "--api-key", "llm_nope")
        no_traceback(result)
        assert "rejected the API key" in result.output

    def test_init_with_the_server_down(self) -> None:
        """init against a port nothing listens on says the server cannot be reached."""
        result = run("init", "--url", f"http://127.0.0.1:{free_port()}", "--email",
                     "a@example.com", "--password", "correct horse battery")
        no_traceback(result)
        assert "Cannot reach the llmlab server" in result.output

    def test_login_creates_a_new_cli_key(self, account: Account, llmlab_home: Path) -> None:
        """login with email and password stores a new admin key for the existing project."""
        result = run("login", "--url", account.url, "--email", account.email, "--password",
                     account.password, "--json")
        assert result.exit_code == 0, result.output
        saved = load_file(llmlab_home / "config.toml")
        assert saved["project"] == account.project and saved["api_key"] != account.admin_key

    def test_login_with_a_wrong_password(self, account: Account) -> None:
        """A wrong password is a clear 401 message."""
        result = run("login", "--url", account.url, "--email", account.email, "--password",
                     "wrong password!")
        no_traceback(result)
        assert "rejected" in result.output

    def test_login_to_a_project_that_does_not_exist(self, account: Account) -> None:
        """login --project names an unknown project: the message lists the user's projects."""
        result = run("login", "--url", account.url, "--email", account.email, "--password",
                     account.password, "--project", "nope")
        no_traceback(result)
        assert account.project in result.output

    def test_login_without_a_server(self) -> None:
        """login with no URL anywhere says to run init."""
        result = run("login", "--email", "a@example.com", "--password", "x" * 10)
        no_traceback(result)
        assert "llmlab init" in result.output


class TestSettings:
    """Precedence: flags over environment over the config file."""

    def test_flags_beat_env_beat_file(self, llmlab_home: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
        """Each setting comes from the highest layer that has it."""
        save_file({"base_url": "http://file", "api_key": "llm_file", "project": "fromfile"})
        monkeypatch.setenv("LLMLAB_API_KEY", "llm_env")
        monkeypatch.setenv("LLMLAB_PROJECT", "fromenv")
        settings = resolve({"project": "fromflag"})
        assert (settings.base_url, settings.api_key, settings.project) == (
            "http://file", "llm_env", "fromflag")
        assert settings.sources == {"base_url": str(llmlab_home / "config.toml"),
                                    "api_key": "env", "project": "flag"}

    def test_the_config_file_is_used(self, account: Account) -> None:
        """With no flags and no environment, commands read config.toml."""
        save_file({"base_url": account.url, "api_key": account.admin_key,
                   "project": account.project})
        seed(account, 1)
        result = run("summary", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["totals"]["calls"] == 1

    def test_a_flag_overrides_a_bad_environment(self, account: Account) -> None:
        """--api-key on the command wins over a wrong LLMLAB_API_KEY."""
        env = {**configured(account), "LLMLAB_API_KEY": "llm_wrong"}
        result = run("summary", "--api-key", account.admin_key, "--json", env=env)
        assert result.exit_code == 0, result.output

    def test_a_broken_config_file(self, llmlab_home: Path) -> None:
        """An unparsable config.toml is named in the error."""
        (llmlab_home / "config.toml").write_text("base_url = [unclosed")
        result = run("summary")
        no_traceback(result)
        assert "config.toml is not valid TOML" in result.output


class TestStatus:
    """``llmlab status``: server, auth, spool and ledger."""

    def test_status_json_reports_everything(self, account: Account, llmlab_home: Path) -> None:
        """status --json shows the server healthy, the key's scopes, spool and ledger counts."""
        Spool(llmlab_home / "spool").write(['{"id": "a"}', '{"id": "b"}'])
        ledger = llmlab_home / "ledger"
        ledger.mkdir()
        (ledger / "2026-11-02.jsonl").write_text(
            json.dumps({"id": "x", "cost": {"total": "0.25"}}) + "\n")
        result = run("status", "--json", env=configured(account))
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["server"]["reachable"] is True
        assert data["server"]["auth"] == {"kind": "api_key", "scopes": ["admin"],
                                          "projects": [account.project]}
        assert data["spool"]["events"] == 2 and data["spool"]["files"] == 1
        assert data["ledger"] == {"directory": str(ledger), "events": 1, "cost": "0.25"}
        assert data["config"]["api_key"].startswith(account.admin_key[:8])
        assert account.admin_key not in result.stdout  # masked

    def test_status_table(self, account: Account) -> None:
        """status without --json prints one line per part."""
        result = run("status", env=configured(account))
        assert result.exit_code == 0, result.output
        assert f"{account.url}  ok" in result.output and "spool    0 events" in result.output

    def test_status_with_the_server_down(self) -> None:
        """A configured but unreachable server: the report, then exit status 1."""
        result = run("status", env={"LLMLAB_BASE_URL": f"http://127.0.0.1:{free_port()}",
                                    "LLMLAB_API_KEY": "llm_x"})
        no_traceback(result)
        assert "UNREACHABLE" in result.output and "Cannot reach" in result.output

    def test_status_with_a_bad_key(self, account: Account) -> None:
        """A rejected key: exit status 1 and the bad-key message."""
        result = run("status", env={**configured(account), "LLMLAB_API_KEY": "llm_bad"})
        no_traceback(result)
        assert "rejected the API key" in result.output

    def test_status_unconfigured(self) -> None:
        """With no server configured, status shows the local state and how to configure."""
        result = run("status")
        assert result.exit_code == 0, result.output
        assert "not configured" in result.output


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
        result = run("summary", env={**configured(account), "LLMLAB_API_KEY": "llm_wrong"})
        no_traceback(result)
        assert "rejected the API key" in result.output and "llmlab login" in result.output

    def test_ingest_key_lacks_read_scope(self, account: Account) -> None:
        """An ingest-only key gets the permission message naming the scope needed."""
        result = run("summary", env={**configured(account), "LLMLAB_API_KEY": account.ingest_key,
                                     "LLMLAB_PROJECT": ""})
        no_traceback(result)
        assert "`read` scope" in result.output

    def test_server_down(self) -> None:
        """A server that is not running: the cannot-reach message."""
        result = run("summary", env={"LLMLAB_BASE_URL": f"http://127.0.0.1:{free_port()}",
                                     "LLMLAB_API_KEY": "llm_x"})
        no_traceback(result)
        assert "Cannot reach the llmlab server" in result.output and "llmlab serve" in result.output

    def test_unknown_project(self, account: Account) -> None:
        """--project naming a project the key cannot see lists the ones it can."""
        result = run("summary", "--project", "other", env=configured(account))
        no_traceback(result)
        assert "Unknown project 'other'" in result.output and account.project in result.output

    def test_project_by_id(self, account: Account) -> None:
        """--project accepts a numeric id as well as a slug."""
        result = run("summary", "--project", str(account.project_id), "--json",
                     env=configured(account))
        assert result.exit_code == 0, result.output


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
                     env={**configured(account), "LLMLAB_API_KEY": "llm_bad"})
        no_traceback(result)
        assert "rejected the API key" in result.output
        assert not target.exists() and not list(tmp_path.glob("*x.csv*"))


class TestPricing:
    """``llmlab pricing show | list | import``: the local catalogue."""

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


class TestBudgets:
    """``llmlab budgets list | set | status`` and ``llmlab recommendations``."""

    def test_set_list_and_status(self, account: Account) -> None:
        """set creates a budget that list and status then show."""
        seed(account, 2)
        created = run("budgets", "set", "--amount", "10", "--period", "monthly", "--action",
                      "block", "--name", "cap", "--json", env=configured(account))
        assert created.exit_code == 0, created.output
        listed = json.loads(run("budgets", "list", "--json", env=configured(account)).stdout)
        items = listed["budgets"] if isinstance(listed, dict) else listed
        assert [b["name"] for b in items] == ["cap"]
        table_out = run("budgets", "list", env=configured(account)).output
        assert "cap" in table_out and "block" in table_out
        status = json.loads(run("budgets", "status", "--json", env=configured(account)).stdout)
        assert status["budgets"][0]["name"] == "cap"
        assert status["budgets"][0]["spent"].startswith("0.007")
        status_table = run("budgets", "status", env=configured(account)).output
        assert "cap" in status_table and "$10.00" in status_table

    def test_set_scoped_to_a_tag(self, account: Account) -> None:
        """--tag KEY=VALUE scopes a budget; a bad amount is a usage error."""
        result = run("budgets", "set", "--amount", "1", "--tag", "feature=chat", "--json",
                     env=configured(account))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["scope"]["tag"] == "feature=chat"
        bad = run("budgets", "set", "--amount", "-1", env=configured(account))
        assert bad.exit_code == 2

    def test_recommendations(self, account: Account) -> None:
        """recommendations prints the server's list (JSON and table)."""
        seed(account, 20, usage={"input_tokens": 20000, "output_tokens": 4000})
        result = run("recommendations", "--json", env=configured(account))
        assert result.exit_code == 0, result.output
        json.loads(result.stdout)
        assert run("recommendations", env=configured(account)).exit_code == 0

    def test_budgets_with_the_server_down(self) -> None:
        """budgets status against a dead server: the cannot-reach message."""
        result = run("budgets", "status", env={
            "LLMLAB_BASE_URL": f"http://127.0.0.1:{free_port()}", "LLMLAB_API_KEY": "llm_x"})
        no_traceback(result)
        assert "Cannot reach" in result.output


class TestErrors:
    """Whatever goes wrong, one message and a non-zero exit."""

    def test_unexpected_errors_have_no_traceback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unexpected exception becomes a one-line error naming LLMLAB_DEBUG."""
        from llmlab.pricing import Catalogue

        def boom() -> None:
            raise RuntimeError("kaboom")

        monkeypatch.setattr(Catalogue, "default", boom)
        result = CliRunner().invoke(cli, ["pricing", "show", "gpt-4o"])
        no_traceback(result)
        assert "unexpected error: RuntimeError: kaboom" in result.output
        assert "LLMLAB_DEBUG" in result.output

    def test_version(self) -> None:
        """--version prints the package version."""
        result = run("--version")
        assert result.exit_code == 0 and "llmlab" in result.output

    def test_every_command_has_help(self) -> None:
        """Every command and group answers --help."""
        for args in (["init"], ["login"], ["status"], ["summary"], ["events"], ["export"],
                     ["budgets", "list"], ["budgets", "set"], ["budgets", "status"],
                     ["recommendations"], ["pricing", "show"], ["pricing", "list"],
                     ["pricing", "import"], ["serve"], ["demo"]):
            result = run(*args, "--help")
            assert result.exit_code == 0 and "Usage:" in result.output, args
