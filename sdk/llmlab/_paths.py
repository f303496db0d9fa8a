"""Where llmlab keeps its files on the user's machine."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home_dir"]


def home_dir() -> Path:
    """``$LLMLAB_HOME``, else ``~/.llmlab``: config, pricing overrides, ledger and spool."""
    configured = os.environ.get("LLMLAB_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".llmlab"
