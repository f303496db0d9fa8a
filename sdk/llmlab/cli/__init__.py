"""The ``llmlab`` command: a REST client over `llmlab.Client`, plus the local pricing catalogue
(see ``docs/cli.md``)::

    llmlab init                              # sign up / log in, pick the app's project
    llmlab summary --by model --since 7d     # what did we spend, on what
    llmlab events -f --model gpt-4o          # tail events
    llmlab export --csv costs.csv            # every event, streamed
    llmlab pricing show gpt-4o               # the catalogue's rates, no server needed
    llmlab demo | serve | server db upgrade  # the server's commands, with llmlab[server]

It needs click and rich (``pip install 'llmlab[cli]'``) and never imports the server, Flask or
SQLAlchemy until one of the server's commands runs. This module imports neither click nor
rich, so `main` can say what to install when they are missing.
"""

from __future__ import annotations

import sys

__all__ = ["MISSING_DEPENDENCIES", "main"]

MISSING_DEPENDENCIES = "The llmlab command needs click and rich: pip install 'llmlab[cli]'"


def main() -> int:
    """Entry point of the ``llmlab`` console script."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(MISSING_DEPENDENCIES, file=sys.stderr)
        return 1
    from llmlab.cli._app import cli

    cli.main(prog_name="llmlab")
    return 0
