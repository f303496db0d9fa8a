"""The server's ``llmlab`` commands (``llmlab_server.commands``), run through the root group
as users run them: ``server db upgrade | current``, ``serve`` and ``server serve``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from llmlab.cli._app import cli
from llmlab_server import db


def llmlab(*args: str, env: dict[str, str] | None = None) -> Result:
    """``llmlab ARGS`` in-process."""
    return CliRunner().invoke(cli, list(args), env=env)


class TestDbUpgrade:
    """``server db upgrade`` and ``server db current``."""

    def test_upgrade_migrates_an_empty_database(self, tmp_path: Path) -> None:
        """upgrade takes an empty database to the newest revision and says so."""
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        result = llmlab("server", "db", "upgrade", "--database", url)
        assert result.exit_code == 0, result.output
        assert f"empty -> {db.head_revision()}" in result.output
        engine = db.make_engine(url)
        assert db.current_revision(engine) == db.head_revision()
        engine.dispose()
        current = llmlab("server", "db", "current", "--database", url)
        assert f"current: {db.head_revision()}" in current.output

    def test_upgrade_reads_the_environment(self, tmp_path: Path) -> None:
        """Without --database, LLMLAB_DATABASE_URL names the database."""
        url = f"sqlite:///{tmp_path / 'env.db'}"
        result = llmlab("server", "db", "upgrade", env={"LLMLAB_DATABASE_URL": url})
        assert result.exit_code == 0 and (tmp_path / "env.db").exists()


class TestServe:
    """``serve`` (short for ``server serve``)."""

    @pytest.mark.parametrize("command", [("serve",), ("server", "serve")])
    def test_serve_runs_the_app_in_development(self, command: tuple[str, ...], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """serve builds a development app on --database and runs it on --host/--port."""
        calls: dict[str, object] = {}

        def fake_run(self: Flask, **kwargs: object) -> None:
            calls.update(kwargs, env=self.config["ENV"], url=self.config["DATABASE_URL"])

        monkeypatch.setattr(Flask, "run", fake_run)
        monkeypatch.delenv("LLMLAB_ENV", raising=False)
        url = f"sqlite:///{tmp_path / 'serve.db'}"
        result = llmlab(*command, "--port", "8123", "--database", url)
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
        result = llmlab("serve", "--database", f"sqlite:///{tmp_path / 'p.db'}")
        assert result.exit_code == 1 and "LLMLAB_SECRET_KEY" in result.output
        assert "Traceback" not in result.output
        monkeypatch.delenv("LLMLAB_DATABASE_URL", raising=False)
