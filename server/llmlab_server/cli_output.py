"""Rendering for the ``llmlab`` CLI: rich tables for people, JSON for scripts, plain errors.

Every read command takes ``--json``: it then prints exactly one JSON document on stdout (the
server's ``data``, or the command's own dict) and nothing else, so ``| jq`` always works.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from llmlab.errors import (
    APIError,
    AuthenticationError,
    LLMLabError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["err_console", "explain", "money", "out_console", "print_json", "table", "tokens"]


def _width(stream: Any) -> int | None:
    # Piped output is read by tools and wide pagers, not wrapped by a terminal: no need to
    # fold tables into rich's 80-column default. COLUMNS still wins.
    isatty = getattr(stream, "isatty", None)
    if os.environ.get("COLUMNS") or (isatty is not None and isatty()):
        return None
    return 120


def out_console() -> Console:
    """A console on the current stdout (click's runner swaps it, so it is looked up each time)."""
    stream = sys.stdout
    return Console(file=stream, highlight=False, soft_wrap=False, width=_width(stream))


def err_console() -> Console:
    """A console on the current stderr."""
    stream = sys.stderr
    return Console(file=stream, highlight=False, width=_width(stream))


def print_json(data: Any) -> None:
    """One JSON document on stdout (money stays a decimal string)."""
    click.echo(json.dumps(data, indent=2, default=str))


def money(value: Any, places: int = 4) -> str:
    """``"0.004750"`` → ``"$0.0048"``; tiny non-zero amounts keep enough digits to show."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if amount != 0 and abs(amount) < Decimal(1).scaleb(-places):
        return f"${amount.normalize():f}"
    return f"${amount.quantize(Decimal(1).scaleb(-places)):,f}"


def tokens(value: Any) -> str:
    """An integer with thousands separators."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          *, right: Iterable[str] = ()) -> Table:
    """A rich table; columns named in ``right`` are right-aligned (numbers)."""
    right = set(right)
    grid = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for name in columns:
        grid.add_column(name, justify="right" if name in right else "left",
                        overflow="fold", no_wrap=name in right)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    return grid


def explain(exc: LLMLabError, base_url: str | None = None) -> str:
    """One clear sentence (or two) for an error, with what to do about it."""
    where = base_url or "the server"
    if isinstance(exc, AuthenticationError):
        return (f"The llmlab server at {where} rejected the API key ({exc}). "
                "Run `llmlab login`, or check --api-key / LLMLAB_API_KEY.")
    if isinstance(exc, PermissionDeniedError):
        return (f"Permission denied: {exc}. The CLI needs an API key with the `read` scope "
                "(`admin` to change budgets), or a user login.")
    if isinstance(exc, RateLimitError):
        wait = f" Retry in {exc.retry_after:g} s." if exc.retry_after else ""
        return f"The llmlab server is rate limiting this key ({exc}).{wait}"
    if isinstance(exc, NotFoundError):
        return f"Not found: {exc}"
    if isinstance(exc, APIError) and exc.status is None:
        return (f"Cannot reach the llmlab server at {where}. Is it running? Start one with "
                "`llmlab serve`, or point --url / LLMLAB_BASE_URL at yours.")
    if isinstance(exc, APIError):
        code = f" [{exc.code}]" if exc.code else ""
        return f"The llmlab server answered HTTP {exc.status}{code}: {exc}"
    return str(exc)
