"""Rendering for the ``llmlab`` CLI: rich tables for people, JSON for scripts, plain errors.

Every read command takes ``--json``: it then prints exactly one JSON document on stdout (the
server's ``data``, or the command's own dict) and nothing else, so ``| jq`` always works.
`print_summary` and `print_recommendations` are also what ``llmlab demo`` prints with.
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
from rich.text import Text

from llmlab.errors import (
    APIError,
    AuthenticationError,
    LLMLabError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["err_console", "explain", "items_of", "money", "out_console", "print_json",
           "print_recommendations", "print_summary", "table", "tokens"]


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
        # Text, not markup: a model, tag or budget name may hold brackets ("[beta]").
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return grid


def items_of(data: Any, key: str) -> list[dict[str, Any]]:
    """The list of a server answer that is either the list itself or ``{key: [...]}``."""
    if isinstance(data, dict):
        data = data.get(key, data.get("items", []))
    return list(data or [])


def print_summary(console: Console, data: dict[str, Any], title: str | None = None) -> None:
    """A summary as a table, largest cost first, with a total row."""
    label = data.get("group_by") or "total"
    groups = sorted(data.get("groups") or [], key=lambda r: Decimal(r["cost"]), reverse=True)
    rows = []
    for row in [*groups, {**data["totals"], "key": "TOTAL"}]:
        tok = row.get("tokens") or {}
        latency = row.get("avg_latency_ms")
        rows.append([row.get("key") if row.get("key") is not None else "(none)", money(row["cost"]),
                     tokens(row["calls"]), tokens(row["errors"]),
                     tokens(tok.get("input_tokens", 0)), tokens(tok.get("output_tokens", 0)),
                     tokens(tok.get("cache_read_tokens", 0)),
                     "" if latency is None else f"{latency:,.0f}"])
    start, end = str(data.get("start", ""))[:16], str(data.get("end", ""))[:16]
    title = title or f"Cost by {label}, {start} → {end} {data.get('tz', '')}"
    console.print(table(title, [label, "cost", "calls", "errors", "input", "output",
                                "cache read", "ms"], rows,
                        right={"cost", "calls", "errors", "input", "output", "cache read", "ms"}))


def _saving(item: dict[str, Any]) -> Decimal:
    value = item.get("savings_per_month", item.get("monthly_savings", item.get("savings", 0)))
    try:
        return Decimal(str(value or 0))
    except ArithmeticError:
        return Decimal(0)


def print_recommendations(console: Console, data: Any, limit: int | None = None) -> None:
    """Recommendations as a table, biggest saving first (the ``limit`` biggest, if given)."""
    items = items_of(data, "recommendations")
    if not items:
        console.print("No recommendations yet: spend looks efficient (or there is too little data).")
        return
    rows = []
    ranked = sorted(items, key=_saving, reverse=True)
    for item in ranked[:limit]:
        evidence = item.get("evidence")
        if isinstance(evidence, dict):
            evidence = ", ".join(f"{k}={v}" for k, v in list(evidence.items())[:4])
        rows.append([item.get("title") or item.get("kind") or item.get("type"),
                     money(_saving(item), 2), item.get("confidence", ""),
                     item.get("detail") or item.get("description") or evidence or ""])
    console.print(table("Recommendations", ["recommendation", "saves / month", "confidence",
                                            "why"], rows, right={"saves / month"}))
    if len(ranked) > len(rows):
        rest = sum((_saving(item) for item in ranked[len(rows):]), Decimal(0))
        console.print(f"… and {len(ranked) - len(rows)} more, saving {money(rest, 2)} a month "
                      "(`llmlab recommendations` lists them all).", markup=False)
    for note in (data.get("notes") or []) if isinstance(data, dict) else []:
        console.print(f"note: {note}", style="dim", markup=False)


def explain(exc: LLMLabError, base_url: str | None = None, key_source: str | None = None) -> str:
    """One clear sentence (or two) for an error, with what to do about it."""
    where = base_url or "the server"
    # Server messages are sentences with their own full stop; ours follows with another.
    reason = str(exc).rstrip(". ")
    key = f"The key came from {key_source}. " if key_source else ""
    if isinstance(exc, AuthenticationError):
        return (f"The llmlab server at {where} rejected the API key ({reason}). {key}"
                "Run `llmlab login`, or check --api-key / LLMLAB_CLI_API_KEY.")
    if isinstance(exc, PermissionDeniedError):
        return (f"Permission denied: {reason}. {key}The CLI needs an API key with the `read` "
                "scope (`admin` to change budgets), or a user login: run `llmlab login`.")
    if isinstance(exc, RateLimitError):
        wait = f" Retry in {exc.retry_after:g} s." if exc.retry_after else ""
        return f"The llmlab server is rate limiting this key ({reason}).{wait}"
    if isinstance(exc, NotFoundError):
        return f"Not found: {reason}."
    if isinstance(exc, APIError) and exc.status is None:
        return (f"Cannot reach the llmlab server at {where}. Is it running? Start one with "
                "`llmlab serve`, or point --url / LLMLAB_BASE_URL at yours.")
    if isinstance(exc, APIError):
        code = f" [{exc.code}]" if exc.code else ""
        return f"The llmlab server answered HTTP {exc.status}{code}: {reason}."
    return str(exc)
