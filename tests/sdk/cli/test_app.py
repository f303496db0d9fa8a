"""The root ``llmlab`` group: help, the console entry point without the server (or without
click), lazy server commands, and errors as one message."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

import llmlab.cli
from llmlab.cli._app import SERVER_COMMANDS, cli

from .helpers import no_traceback, run, run_without

#: Made missing to stand for ``pip install 'llmlab[cli]'`` without the server extra.
NO_SERVER = ("flask", "sqlalchemy", "alembic", "werkzeug")


class TestWithoutTheServer:
    """Only the SDK and the cli extra: client commands work, server commands say what to install."""

    def test_help_lists_every_command(self) -> None:
        """`llmlab --help` works without flask and lists client and server commands, the latter
        marked as needing the server extra, without importing the server."""
        proc = run_without(NO_SERVER, "--help")
        assert proc.returncode == 0, proc.stderr
        for name in ("init", "status", "summary", "events", "export", "budgets", "pricing",
                     "recommendations", "demo", "serve", "server"):
            assert f"\n  {name} " in proc.stdout, name
        assert "(needs llmlab[server])" in proc.stdout
        assert proc.stderr.strip().endswith("imported:")

    def test_pricing_show(self) -> None:
        """`llmlab pricing show gpt-4o` prints the catalogue's rates without flask."""
        proc = run_without(NO_SERVER, "pricing", "show", "gpt-4o")
        assert proc.returncode == 0, proc.stderr
        assert "openai/gpt-4o" in proc.stdout and "$2.5" in proc.stdout

    @pytest.mark.parametrize("args", [("demo", "--exit"), ("serve",), ("server", "db", "upgrade")])
    def test_server_commands_say_what_to_install(self, args: tuple[str, ...]) -> None:
        """A server command without flask exits 1 with the install line, not a traceback."""
        proc = run_without(NO_SERVER, *args)
        assert proc.returncode == 1
        assert "pip install 'llmlab[server]'" in proc.stderr
        assert "Traceback" not in proc.stderr

    def test_without_llmlab_server_at_all(self) -> None:
        """With the llmlab_server package itself absent, `llmlab demo` says the same."""
        proc = run_without(("llmlab_server",), "demo")
        assert proc.returncode == 1 and "pip install 'llmlab[server]'" in proc.stderr

    def test_client_commands_never_import_the_server(self) -> None:
        """Even with the server installed, a client command does not import it (about 1 s)."""
        proc = run_without((), "pricing", "show", "gpt-4o")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().endswith("imported:")


class TestWithoutClick:
    """The console script without the cli extra."""

    @pytest.mark.parametrize("missing", ["click", "rich"])
    def test_one_friendly_line(self, missing: str) -> None:
        """Without click or rich, `llmlab` prints the install line and exits 1."""
        proc = run_without((missing,), "--help")
        assert proc.returncode == 1
        assert proc.stderr.splitlines()[0] == llmlab.cli.MISSING_DEPENDENCIES
        assert "pip install 'llmlab[cli]'" in llmlab.cli.MISSING_DEPENDENCIES

    def test_import_llmlab_imports_no_cli_dependency(self) -> None:
        """`import llmlab` and `import llmlab.cli` import neither click nor rich."""
        code = ("import sys, llmlab, llmlab.cli; "
                "print([m for m in ('click', 'rich') if m in sys.modules])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        assert out.strip() == "[]"


class TestEntryPoint:
    """The console script."""

    def test_the_console_script_is_llmlab_cli_main(self) -> None:
        """pyproject.toml's `llmlab` script is llmlab.cli:main."""
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).parents[3] / "pyproject.toml"
        scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
        assert scripts == {"llmlab": "llmlab.cli:main"}


class TestServerCommands:
    """Server commands are loaded from llmlab_server.commands when they run."""

    def test_help_table_matches_the_commands(self) -> None:
        """The help the root lists for each server command is that command's own help."""
        from llmlab_server.commands import COMMANDS

        assert set(COMMANDS) == set(SERVER_COMMANDS)
        for name, command in COMMANDS.items():
            assert SERVER_COMMANDS[name] == command.get_short_help_str(limit=500), name

    def test_a_server_command_runs_through_the_root(self) -> None:
        """`llmlab server db --help` reaches the server's own group."""
        result = run("server", "db", "--help")
        assert result.exit_code == 0 and "upgrade" in result.output

    def test_a_missing_module_of_our_own_is_a_bug_not_an_extra(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When llmlab_server.commands itself is missing, the error is not "install the extra"."""
        monkeypatch.setitem(sys.modules, "llmlab_server.commands", None)
        result = CliRunner().invoke(cli, ["demo"])
        no_traceback(result)
        assert "unexpected error: ModuleNotFoundError" in result.output
        assert "llmlab[server]" not in result.output


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

    @pytest.mark.parametrize(("debug", "traceback"), [("0", False), ("off", False), ("1", True),
                                                      ("yes", True)])
    def test_llmlab_debug_is_a_switch(self, monkeypatch: pytest.MonkeyPatch, debug: str,
                                      traceback: bool) -> None:
        """LLMLAB_DEBUG takes the usual on/off spellings: 0 and off keep the one-line error,
        1 and yes let the exception (and so its traceback) through."""
        from llmlab.pricing import Catalogue

        def boom() -> None:
            raise RuntimeError("kaboom")

        monkeypatch.setattr(Catalogue, "default", boom)
        monkeypatch.setenv("LLMLAB_DEBUG", debug)
        result = CliRunner().invoke(cli, ["pricing", "show", "gpt-4o"])
        assert isinstance(result.exception, RuntimeError) is traceback
        assert ("unexpected error: RuntimeError" in result.output) is not traceback

    def test_llmlab_debug_refuses_other_words(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_DEBUG=maybe is named in a clear error instead of being read as on."""
        from llmlab.pricing import Catalogue

        def boom() -> None:
            raise RuntimeError("kaboom")

        monkeypatch.setattr(Catalogue, "default", boom)
        monkeypatch.setenv("LLMLAB_DEBUG", "maybe")
        result = CliRunner().invoke(cli, ["pricing", "show", "gpt-4o"])
        no_traceback(result)
        assert "LLMLAB_DEBUG must be 1/0, true/false, yes/no or on/off" in result.output

    def test_version(self) -> None:
        """--version prints the package version."""
        result = run("--version")
        assert result.exit_code == 0 and "llmlab" in result.output

    def test_every_command_has_help(self) -> None:
        """Every command and group answers --help."""
        for args in (["init"], ["login"], ["status"], ["summary"], ["events"], ["export"],
                     ["budgets", "list"], ["budgets", "set"], ["budgets", "status"],
                     ["recommendations"], ["pricing", "show"], ["pricing", "list"],
                     ["pricing", "import"], ["serve"], ["demo"], ["server", "db", "upgrade"]):
            result = run(*args, "--help")
            assert result.exit_code == 0 and "Usage:" in result.output, args
