"""What a price table changes in a catalogue: models added, removed, prices changed (old → new).

Prices are compared per component of the model's current period, in USD per 1M tokens:
``input``, ``output (batch)``, ``input (>200k)``, ``input (priority, >200k)``,
``input (off-peak)``, ``off-peak windows``, ``tier rule``, ``eu multiplier``, and per-call tool
fees (``tool web_search (per call)``) in USD.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from llmlab.pricing._rates import STANDARD, ModelPrice, PricePeriod

__all__ = ["CatalogueDiff", "PriceChange", "diff_models", "flatten"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One component of one model whose price changed (None: not listed on that side)."""

    component: str
    old: str | None
    new: str | None


@dataclass(slots=True)
class CatalogueDiff:
    """Models a table adds, those the catalogue has and the table no longer lists, and the
    per-component price changes of the rest."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[PriceChange]] = field(default_factory=dict)
    unchanged: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        return {"added": self.added, "removed": self.removed, "unchanged": self.unchanged,
                "changed": {key: [{"component": c.component, "old": c.old, "new": c.new}
                                  for c in changes] for key, changes in self.changed.items()}}


def _per_million(value: Decimal) -> str:
    return format((value * _MILLION).normalize(), "f")


def _label(component: str, *qualifiers: str) -> str:
    shown = [q for q in qualifiers if q]
    return f"{component} ({', '.join(shown)})" if shown else component


def flatten(period: PricePeriod) -> dict[str, str]:
    """Every price of a period as ``label → value`` (rates USD per 1M tokens)."""
    out: dict[str, str] = {}
    for svc, rates in period.rates.items():
        for component, rate in rates.items():
            out[_label(component, "" if svc == STANDARD else svc)] = _per_million(rate)
    for threshold, by_svc in period.tiers.items():
        for svc, rates in by_svc.items():
            for component, rate in rates.items():
                out[_label(component, "" if svc == STANDARD else svc,
                           f">{threshold // 1000}k")] = _per_million(rate)
    for name, value in period.multipliers.items():
        out[f"{name} multiplier"] = format(value.normalize(), "f")
    if period.tier_rule != "exceed":
        out["tier rule"] = period.tier_rule
    tools = getattr(period, "tools", None)  # per-call tool fees (USD per call, not per 1M)
    if tools is not None:
        for kind, price in tools.prices.items():
            out[f"tool {kind} (per call)"] = format(price.normalize(), "f")
    if period.off_peak is not None:
        off_peak = period.off_peak.to_dict()
        for component, rate in period.off_peak.rates.items():
            out[_label(component, "off-peak")] = _per_million(rate)
        windows = {k: v for k, v in off_peak.items() if k != "rates"}
        out["off-peak windows"] = json.dumps(windows, sort_keys=True)
    return out


def _changes(old: dict[str, str], new: dict[str, str]) -> list[PriceChange]:
    return [PriceChange(label, old.get(label), new.get(label))
            for label in sorted(old.keys() | new.keys())
            if old.get(label) is None or new.get(label) is None
            or (old[label] != new[label] and not _same_number(old[label], new[label]))]


def _same_number(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except ArithmeticError:
        return False


def diff_models(current: Mapping[str, ModelPrice | None],
                models: Mapping[str, Mapping[str, Any]],
                covered: set[str] | None = None) -> CatalogueDiff:
    """Compare converted table ``models`` with the ``current`` entry of each key (None when
    the catalogue lacks it); ``covered`` lists the catalogue's keys, for ``removed``."""
    diff = CatalogueDiff()
    for key in sorted(models):
        entry = current.get(key)
        if entry is None:
            diff.added.append(key)
            continue
        new = PricePeriod.from_dict(models[key]["prices"][0])
        changes = _changes(flatten(entry.period_at(None)), flatten(new))
        if changes:
            diff.changed[key] = changes
        else:
            diff.unchanged += 1
    if covered:
        diff.removed = sorted(covered - models.keys())
    return diff
