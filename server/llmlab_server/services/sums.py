"""Exact integer sums of money and token columns on both databases, whatever the values.

PostgreSQL's ``SUM(bigint)`` is ``numeric``: exact and unbounded. SQLite's ``SUM()`` raises
"integer overflow" past 2**63 - 1 (nine schema-valid events at $1e9 did it, and every budget,
alert and summary read of their period answered 500), and ``TOTAL()`` is a float, which loses
nano-dollars past 2**53. So on SQLite a column is summed in two native integer sums, of its
high and low 32 bits (``x >> 32`` and ``x & 0xFFFFFFFF``, exact for every 64-bit ``x``, negative
too), and joined in Python: each half stays below 2**63 up to 2**31 summed rows, far more
than one SQLite query reads, at the cost of one more native sum.

A SELECT list mixes plain columns and `Exact` sums; `fold` turns each row back into one
value per item::

    items = [CostEventRow.model, Exact(CostEventRow.cost_nanos), func.count()]
    rows = [fold(items, r) for r in session.execute(select(*select_list(dialect, items)))]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column

__all__ = ["Exact", "exact_sum", "fold", "joined", "select_list"]

_SHIFT = 32
_LOW_BITS = (1 << _SHIFT) - 1


def exact_sum(dialect: str, column: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Two aggregate columns whose `joined` value is the exact ``SUM(column)`` (0 when empty)."""
    if dialect == "postgresql":
        return literal_column("0"), func.coalesce(func.sum(column), 0)
    return (func.coalesce(func.sum(column.op(">>")(_SHIFT)), 0),
            func.coalesce(func.sum(column.op("&")(_LOW_BITS)), 0))


def joined(high: Any, low: Any) -> int:
    """The sum that `exact_sum`'s two columns stand for (PostgreSQL's are ``Decimal``)."""
    return (int(high or 0) << _SHIFT) + int(low or 0)


@dataclass(frozen=True, slots=True)
class Exact:
    """An item of `select_list`: the exact sum of ``column``."""

    column: Any


def select_list(dialect: str, items: Sequence[Any]) -> list[Any]:
    """The SELECT list of ``items``: an `Exact` becomes its two `exact_sum` columns."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, Exact):
            out.extend(exact_sum(dialect, item.column))
        else:
            out.append(item)
    return out


def fold(items: Sequence[Any], row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of `select_list` ``items`` as one value per item (each `Exact` sum an int)."""
    values = iter(row)
    return tuple(joined(next(values), next(values)) if isinstance(item, Exact)
                 else next(values) for item in items)
