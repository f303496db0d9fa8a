"""Rates of one model: price periods, service tiers, long-context tiers and multipliers.

A model's prices are a list of `PricePeriod`s, each valid from its ``effective_from``. Within a
period, a `RateCard` is resolved once per (service tier, long-context threshold, off-peak) and
cached, so pricing a call is a dictionary hit and a few `Decimal` multiplications.

Resolution of one component (DESIGN.md, shared/reference/README.md):

0. off-peak (`OffPeak`): its rates replace the standard ones they list;
1. the long-context tier's rate for the service tier, then the tier's standard rate;
2. the service tier's rate, then the standard rate;
   a missing batch rate is half the standard one, a missing tier named in the multipliers
   (``fast``) is the standard rate times that multiplier;
3. a component still missing falls back to its parent, never to zero:
   cache_read, cache_write, audio_input and image_input → input; cache_write_long →
   cache_write; reasoning, audio_output and image_output → output.

Reasoning is output: where a tier (service or long-context) lists an output rate but no
reasoning rate, reasoning takes that tier's output rate (scaled by the standard
reasoning/output ratio), not the standard reasoning rate.

A long-context tier applies once the prompt passes its threshold (``>``), or reaches it
(``>=``) for providers that bill that way (``tier_rule: "reach"``, xAI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from llmlab.pricing._offpeak import OffPeak
from llmlab.pricing._tool_prices import ToolPrices

__all__ = ["COMPONENTS", "ModelPrice", "PricePeriod", "RateCard"]

#: Rate components, each USD per token.
COMPONENTS = ("input", "output", "cache_read", "cache_write", "cache_write_long", "reasoning",
              "audio_input", "audio_output", "image_input", "image_output")

_PARENT = {
    "cache_read": "input", "cache_write": "input", "cache_write_long": "cache_write",
    "audio_input": "input", "image_input": "input",
    "reasoning": "output", "audio_output": "output", "image_output": "output",
}
_HALF = Decimal("0.5")
_ONE = Decimal(1)
STANDARD = "standard"
BATCH = "batch"
#: ``tier_rule`` values: a tier applies when the prompt exceeds (default) or reaches it.
EXCEED, REACH = "exceed", "reach"


@dataclass(frozen=True, slots=True)
class RateCard:
    """Fully resolved USD-per-token rates for one service tier and context length."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_long: Decimal
    reasoning: Decimal
    audio_input: Decimal
    audio_output: Decimal
    image_input: Decimal
    image_output: Decimal
    service_tier: str = STANDARD
    threshold: int = 0

    def per_million(self) -> dict[str, str]:
        """The rates as USD per 1M tokens, for display."""
        return {c: _plain(getattr(self, c) * 1_000_000) for c in COMPONENTS}


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _decimals(rates: Mapping[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(str(v)) for k, v in rates.items() if k in _PARENT or k in ("input", "output")}


@dataclass(slots=True)
class PricePeriod:
    """The rates of a model from ``effective_from`` on (None: since the beginning)."""

    effective_from: date | None
    rates: dict[str, dict[str, Decimal]]
    tiers: dict[int, dict[str, dict[str, Decimal]]] = field(default_factory=dict)
    multipliers: dict[str, Decimal] = field(default_factory=dict)
    off_peak: OffPeak | None = None
    tier_rule: str = EXCEED
    #: Built-in tool prices of this model (`llmlab.pricing._tool_prices`), None when none.
    tools: ToolPrices | None = None
    _cards: dict[tuple[str, int, bool], RateCard] = field(default_factory=dict, repr=False)
    _thresholds: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        # A prompt reaching N passes the tier iff it exceeds N - 1: one comparison either way.
        shift = 1 if self.tier_rule == REACH else 0
        self._thresholds = tuple(t - shift for t in sorted(self.tiers, reverse=True))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PricePeriod:
        """Read a period from its catalogue JSON form."""
        eff = data.get("effective_from")
        off_peak = data.get("off_peak")
        tier_rule = data.get("tier_rule", EXCEED)
        if tier_rule not in (EXCEED, REACH):
            raise ValueError(f"tier_rule {tier_rule!r} is not {EXCEED!r} or {REACH!r}")
        return cls(
            effective_from=date.fromisoformat(eff) if eff else None,
            rates={svc: _decimals(r) for svc, r in (data.get("rates") or {}).items()},
            tiers={int(t): {svc: _decimals(r) for svc, r in by_svc.items()}
                   for t, by_svc in (data.get("tiers") or {}).items()},
            multipliers={k: Decimal(str(v)) for k, v in (data.get("multipliers") or {}).items()},
            off_peak=OffPeak.from_dict(off_peak, _decimals(off_peak.get("rates") or {}))
            if off_peak else None,
            tier_rule=tier_rule,
            tools=ToolPrices.from_dict(data.get("tools")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The catalogue JSON form of this period."""
        out: dict[str, Any] = {
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
            "rates": {svc: {c: str(v) for c, v in r.items()} for svc, r in self.rates.items()},
        }
        if self.tiers:
            out["tiers"] = {str(t): {svc: {c: str(v) for c, v in r.items()} for svc, r in by.items()}
                            for t, by in sorted(self.tiers.items())}
        if self.multipliers:
            out["multipliers"] = {k: str(v) for k, v in self.multipliers.items()}
        if self.tier_rule != EXCEED:
            out["tier_rule"] = self.tier_rule
        if self.off_peak is not None:
            out["off_peak"] = self.off_peak.to_dict()
        if self.tools is not None:
            out["tools"] = self.tools.to_dict()
        return out

    def threshold_for(self, prompt_tokens: int) -> int:
        """The long-context threshold a prompt of this size passes (0 for none)."""
        shift = 1 if self.tier_rule == REACH else 0
        for threshold in self._thresholds:
            if prompt_tokens > threshold:
                return threshold + shift
        return 0

    def card(self, service_tier: str = STANDARD, prompt_tokens: int = 0,
             off_peak: bool = False) -> RateCard:
        """The resolved rates for a service tier, a prompt of ``prompt_tokens`` tokens and,
        when ``off_peak``, the model's off-peak rates."""
        key = (service_tier, self.threshold_for(prompt_tokens) if self._thresholds else 0,
               off_peak and self.off_peak is not None)
        card = self._cards.get(key)
        if card is None:
            card = self._cards[key] = self._resolve(*key)
        return card

    def _layers(self, svc: str, threshold: int,
                off_peak: bool) -> list[tuple[Mapping[str, Decimal], Decimal]]:
        """Rate tables to consult in order, each with the factor to apply to it."""
        layers: list[tuple[Mapping[str, Decimal], Decimal]] = []

        def add(table: Mapping[str, dict[str, Decimal]]) -> None:
            if svc in table:
                layers.append((table[svc], _ONE))
            if svc != STANDARD and STANDARD in table:
                factor = self.multipliers.get(svc) or (_HALF if svc == BATCH else _ONE)
                layers.append((table[STANDARD], factor))

        if threshold:
            add(self.tiers[threshold])
        rates = self.rates
        if off_peak and self.off_peak is not None and STANDARD in rates:
            rates = {**rates, STANDARD: {**rates[STANDARD], **self.off_peak.rates}}
        add(rates)
        return layers

    def _resolve(self, svc: str, threshold: int, off_peak: bool = False) -> RateCard:
        layers = self._layers(svc, threshold, off_peak)
        found: dict[str, Decimal] = {}
        where: dict[str, int] = {}
        for component in COMPONENTS:
            for i, (table, factor) in enumerate(layers):
                if component in table:
                    found[component] = table[component] * factor
                    where[component] = i
                    break
        _reasoning_follows_output(layers, found, where)
        found.setdefault("input", Decimal(0))
        found.setdefault("output", Decimal(0))
        for component in COMPONENTS:
            c = component
            while c not in found:
                c = _PARENT[c]
            found[component] = found[c]
        return RateCard(**found, service_tier=svc, threshold=threshold)


def _reasoning_follows_output(layers: list[tuple[Mapping[str, Decimal], Decimal]],
                              found: dict[str, Decimal], where: dict[str, int]) -> None:
    """Reasoning listed only by a less specific table than output takes the output rate found,
    times that table's reasoning/output ratio (Gemini under flex: flex output, not standard
    reasoning)."""
    if "reasoning" not in where or "output" not in where or where["output"] >= where["reasoning"]:
        return
    table = layers[where["reasoning"]][0]
    base = table.get("output")
    ratio = table["reasoning"] / base if base else _ONE
    found["reasoning"] = found["output"] * ratio


@dataclass(slots=True)
class ModelPrice:
    """A priced model: identity, metadata and its price history."""

    key: str
    provider: str
    name: str
    mode: str
    periods: list[PricePeriod]
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    supports: frozenset[str] = frozenset()
    deprecation_date: str | None = None

    @classmethod
    def from_dict(cls, key: str, data: Mapping[str, Any]) -> ModelPrice:
        """Read a model from its catalogue JSON form."""
        periods = sorted((PricePeriod.from_dict(p) for p in data["prices"]),
                         key=lambda p: p.effective_from or date.min)
        return cls(
            key=key, provider=data["provider"], name=data["name"], mode=data.get("mode", "chat"),
            periods=periods, max_input_tokens=data.get("max_input_tokens"),
            max_output_tokens=data.get("max_output_tokens"),
            supports=frozenset(data.get("supports", ())),
            deprecation_date=data.get("deprecation_date"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The catalogue JSON form of this model."""
        out: dict[str, Any] = {"provider": self.provider, "name": self.name, "mode": self.mode}
        for attr in ("max_input_tokens", "max_output_tokens", "deprecation_date"):
            if getattr(self, attr) is not None:
                out[attr] = getattr(self, attr)
        if self.supports:
            out["supports"] = sorted(self.supports)
        out["prices"] = [p.to_dict() for p in self.periods]
        return out

    def period_at(self, when: date | None) -> PricePeriod:
        """The period in force on ``when`` (the newest when None; the oldest before any)."""
        periods = self.periods
        if when is None or len(periods) == 1:
            return periods[-1]
        chosen = periods[0]
        for period in periods:
            if period.effective_from is None or period.effective_from <= when:
                chosen = period
            else:
                break
        return chosen
