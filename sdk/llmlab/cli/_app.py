"""The root ``llmlab`` group: its commands, the server's commands, and the error handling that
turns every failure into one clear message and exit status 1 (2 for bad usage).

The client commands live beside this module, one module per group (`account`,
`invitations`, `reports`, `budgets`, `pricing`). The server's commands (``serve``,
``server``, ``demo``) live in ``llmlab_server.commands`` and are found by an import check,
only when one of them runs: the ``llmlab`` distribution ships ``llmlab_server`` whether or
not the server extra is installed, so an entry point would be present either way and decide
nothing, while the import tells whether flask & co. are there. Loading lazily also keeps
the server's imports (about a second) out of every client command and of ``llmlab --help``,
which lists them from the table below.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import click

from llmlab._env import env_bool
from llmlab.cli import account, budgets, invitations, pricing, reports
from llmlab.cli._config import ConfigFileError
from llmlab.cli._options import BASE_URL, KEY_SOURCE, connection_options
from llmlab.cli._output import explain
from llmlab.errors import ConfigurationError, LLMLabError

__all__ = ["SERVER_COMMANDS", "Root", "cli"]

#: The commands of ``llmlab_server.commands``, with their one-line help (a test keeps them equal).
SERVER_COMMANDS = {
    "demo": "Run a server, a fake OpenAI/Anthropic/Gemini and a sample app, offline; show the "
            "costs.",
    "serve": "Run the development server (use gunicorn in production).",
    "server": "Run and administer the llmlab server.",
}
_INSTALL_SERVER = "pip install 'llmlab[server]'"


def _needs_server(name: str, missing: str) -> click.Command:
    """A stand-in for a server command when the server's dependencies are not installed."""

    def fail() -> None:
        raise click.ClickException(
            f"`llmlab {name}` needs the llmlab server, which is not installed here (no module "
            f"named {missing!r}): {_INSTALL_SERVER}")

    return click.Command(name, callback=fail, help=f"{SERVER_COMMANDS[name]} Needs the server: "
                         f"{_INSTALL_SERVER}.", context_settings={
                             "ignore_unknown_options": True, "allow_extra_args": True})


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it, or it is a broken half-import
        return False


def _server_command(name: str) -> click.Command:
    try:
        from llmlab_server.commands import COMMANDS
    except ModuleNotFoundError as exc:
        missing = exc.name or "llmlab_server"
        # A module of our own that is missing is a bug to report, not an extra to install.
        if missing != "llmlab_server" and missing.startswith(("llmlab_server.", "llmlab.")):
            raise
        return _needs_server(name, missing)
    return COMMANDS[name]


class Root(click.Group):
    """The root group: server commands on demand, and llmlab's errors as one clear message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SERVER_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SERVER_COMMANDS:
            return _server_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Lists the server's commands from SERVER_COMMANDS: loading them imports the server.
        server_missing = not _installed("flask")
        rows: list[tuple[str, str]] = []
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        for name in self.list_commands(ctx):
            if name in SERVER_COMMANDS:
                needs = " (needs llmlab[server])" if server_missing else ""
                short = click.Command(name, help=SERVER_COMMANDS[name])
                rows.append((name, short.get_short_help_str(limit - len(needs)) + needs))
            elif (cmd := super().get_command(ctx, name)) is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LLMLabError as exc:
            raise click.ClickException(
                explain(exc, ctx.meta.get(BASE_URL), ctx.meta.get(KEY_SOURCE))) from None
        except ConfigFileError as exc:
            raise click.ClickException(f"{exc}. Fix or delete it, or run `llmlab init`.") from None
        except OSError as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Never a traceback for users; LLMLAB_DEBUG=1 shows it to whoever debugs.
            try:
                debug = env_bool("LLMLAB_DEBUG", False)
            except ConfigurationError as bad:
                raise click.ClickException(str(bad)) from None
            if debug:
                raise
            raise click.ClickException(
                f"unexpected error: {type(exc).__name__}: {exc} (set LLMLAB_DEBUG=1 for the "
                "traceback, and please report it)") from None


@click.group("llmlab", cls=Root)
@click.version_option(package_name="llmlab", prog_name="llmlab")
@connection_options
def cli() -> None:
    """llmlab: know what every LLM call costs.

    Start with `llmlab demo` (offline, no keys), then `llmlab init` against your server.
    """


for _command in (*account.COMMANDS, *invitations.COMMANDS, *reports.COMMANDS,
                 *budgets.COMMANDS, *pricing.COMMANDS):
    cli.add_command(_command)
