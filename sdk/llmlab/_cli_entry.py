"""The ``llmlab`` console script: the CLI lives with the server, behind the ``server`` extra."""

from __future__ import annotations

import sys


def main() -> int:
    """Run the CLI, or explain how to install it."""
    try:
        from llmlab_server.cli import main as cli_main
    except ImportError as exc:
        print(f"The llmlab command needs the server extra: pip install 'llmlab[server]' ({exc})",
              file=sys.stderr)
        return 1
    return int(cli_main() or 0)
