"""The budget guard's sums: spend folded per cover (acknowledged, sealed, held).

`llmlab._local_spend` keeps unacknowledged calls one by one and moves their spend into sums
per *cover* (the budgets it counts toward) when the server acknowledges them, or when there
are too many to keep one by one (`Held` buckets). These are the sums' types and helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

__all__ = ["Cover", "Held", "Key", "add_sums", "call_of", "remap_sums", "started_after"]

ZERO = Decimal(0)
#: Indices (into `LocalSpend.budgets`) of the budgets a call's spend counts toward.
Cover = tuple[int, ...]
#: A call's attribution: (project, job, user, model, tag items), hashable.
Key = tuple[Any, Any, Any, Any, tuple[tuple[str, str], ...]]


class Held:
    """Folded unacknowledged spend of up to `HELD_SPAN` seconds of calls, per cover."""

    __slots__ = ("newest", "since", "sums")

    def __init__(self, since: float) -> None:
        self.since = since  # when the first record was folded into it
        self.newest = 0.0  # when its newest call was recorded
        self.sums: dict[Cover, Decimal] = {}


def call_of(key: Key) -> dict[str, Any]:
    """The call mapping `Budget.covers` reads, of an attribution tuple."""
    return {"project": key[0], "job": key[1], "user": key[2], "model": key[3],
            "tags": dict(key[4])}


def started_after(start: float | None, when: float) -> bool:
    """Whether a budget's period started after ``when`` (then it does not count it)."""
    return start is not None and start > when


def add_sums(into: dict[Cover, Decimal], sums: Mapping[Cover, Decimal]) -> None:
    for cover, amount in sums.items():
        into[cover] = into.get(cover, ZERO) + amount


def remap_sums(sums: Mapping[Cover, Decimal], remap: Callable[[Cover, float | None], Cover],
                newest: float | None, totals: list[Decimal]) -> dict[Cover, Decimal]:
    """``sums`` under new covers (merged where they meet), added to ``totals``."""
    out: dict[Cover, Decimal] = {}
    for cover, amount in sums.items():
        new = remap(cover, newest)
        out[new] = out.get(new, ZERO) + amount
        for i in new:
            totals[i] += amount
    return out
