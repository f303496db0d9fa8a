"""The CLI's settings: flags over its own environment over config.toml, never the app's key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.cli._config import load_file, resolve, save_file
from llmlab.cli._options import open_client

from .helpers import Account, configured, no_traceback, run, seed


class TestResolve:
    """`resolve` and where each setting came from."""

    def test_flags_beat_env_beat_file(self, llmlab_home: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
        """Each setting comes from the highest layer that has it, and its source is named: the
        flag, the environment variable, or the file's path."""
        save_file({"base_url": "http://file", "api_key": "llm_file", "project": "fromfile"})
        monkeypatch.setenv("LLMLAB_CLI_API_KEY", "llm_env")
        monkeypatch.setenv("LLMLAB_PROJECT", "fromenv")
        settings = resolve({"project": "fromflag"})
        assert (settings.base_url, settings.api_key, settings.project) == (
            "http://file", "llm_env", "fromflag")
        assert settings.sources == {"base_url": str(llmlab_home / "config.toml"),
                                    "api_key": "LLMLAB_CLI_API_KEY", "project": "--project"}

    def test_the_apps_key_is_never_read(self, llmlab_home: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_API_KEY (the app's ingest key) is ignored, with or without a file key."""
        monkeypatch.setenv("LLMLAB_API_KEY", "llm_app")
        assert resolve().api_key is None
        save_file({"api_key": "llm_file"})
        assert resolve().api_key == "llm_file"

    def test_a_keyless_client_sends_no_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The CLI's client without a key of its own does not fall back to LLMLAB_API_KEY."""
        monkeypatch.setenv("LLMLAB_API_KEY", "llm_app")
        with open_client(None, "http://127.0.0.1:1") as client:
            assert "Authorization" not in client._http.headers
        with open_client("llm_cli", "http://127.0.0.1:1") as client:
            assert client._http.headers["Authorization"] == "Bearer llm_cli"

    def test_the_file_is_private(self, llmlab_home: Path) -> None:
        """save_file merges values, drops None ones, and writes mode 0600."""
        save_file({"base_url": "http://a", "email": "x@example.com"})
        path = save_file({"email": None, "project": 'we"ird'})
        assert load_file(path) == {"base_url": "http://a", "project": 'we"ird'}
        assert path.stat().st_mode & 0o777 == 0o600


class TestCommandsReadTheirOwnKey:
    """Commands in the app's shell (LLMLAB_API_KEY = an ingest key) keep working."""

    def test_summary_uses_the_config_key_in_the_apps_shell(self, account: Account) -> None:
        """With the app's environment exported, summary reads with config.toml's key."""
        save_file({"base_url": account.url, "api_key": account.admin_key,
                   "project": account.project})
        seed(account, 1)
        app_shell = {"LLMLAB_BASE_URL": account.url, "LLMLAB_API_KEY": account.ingest_key,
                     "LLMLAB_PROJECT": account.project}
        result = run("summary", "--json", env=app_shell)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["totals"]["calls"] == 1

    def test_no_cli_key_names_the_ignored_app_key(self, account: Account) -> None:
        """With only the app's key around, the error says the CLI does not use it."""
        result = run("summary", env={"LLMLAB_BASE_URL": account.url,
                                     "LLMLAB_API_KEY": account.ingest_key})
        no_traceback(result)
        assert "No API key configured" in result.output
        assert "LLMLAB_API_KEY is set, but that is your app's key" in result.output
        assert "LLMLAB_CLI_API_KEY" in result.output

    def test_a_flag_overrides_a_bad_environment(self, account: Account) -> None:
        """--api-key on the command wins over a wrong LLMLAB_CLI_API_KEY."""
        env = {**configured(account), "LLMLAB_CLI_API_KEY": "llm_wrong"}
        result = run("summary", "--api-key", account.admin_key, "--json", env=env)
        assert result.exit_code == 0, result.output

    def test_options_on_the_root_group(self, account: Account) -> None:
        """`llmlab --url U --api-key K --project P summary` works like options on the command."""
        result = run("--url", account.url, "--api-key", account.admin_key, "--project",
                     account.project, "summary", "--json")
        assert result.exit_code == 0, result.output

    def test_a_broken_config_file(self, llmlab_home: Path) -> None:
        """An unparsable config.toml is named in the error."""
        (llmlab_home / "config.toml").write_text("base_url = [unclosed")
        result = run("summary")
        no_traceback(result)
        assert "config.toml is not valid TOML" in result.output
