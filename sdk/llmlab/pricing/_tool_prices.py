"""Prices of built-in tools billed per use (web search, file search, containers, images …).

A `ToolPrices` is USD per use by tool kind (`llmlab._tools`), plus the kinds billed at most
once per call (``per_prompt``: Gemini 2.x grounding bills a grounded prompt, however many
queries it ran). A model's own prices (its price period's ``tools``) win over its provider's
(the catalogue's top-level ``tools``). Image generation kinds
(``image_generation:<model>:<quality>:<size>``) fall back to ``medium`` quality and
``1024x1024`` when the response says ``auto``, then to ``gpt-image-1``'s price. Sources and
figures: docs/pricing.md, "Tools".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["ToolPrices", "tool_cost"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ToolPrices:
    """USD per use of each tool kind; ``per_prompt`` kinds bill once per call."""

    prices: Mapping[str, Decimal] = field(default_factory=dict)
    per_prompt: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ToolPrices | None:
        """Read the catalogue JSON form (``{"prices": {kind: "0.01"}, "per_prompt": [...]}``)."""
        if not data:
            return None
        prices = {str(k): Decimal(str(v)) for k, v in (data.get("prices") or {}).items()}
        for kind, price in prices.items():
            if not price.is_finite() or price < 0:
                raise ValueError(f"tool price {kind}={price} must be a non-negative number")
        return cls(prices, frozenset(data.get("per_prompt") or ()))

    def to_dict(self) -> dict[str, Any]:
        """The catalogue JSON form."""
        out: dict[str, Any] = {"prices": {k: format(v, "f") for k, v in sorted(self.prices.items())}}
        if self.per_prompt:
            out["per_prompt"] = sorted(self.per_prompt)
        return out


def _candidates(kind: str) -> tuple[str, ...]:
    """Price keys to try for ``kind``, most specific first."""
    base, sep, rest = kind.partition(":")
    if not sep or base != "image_generation":
        return (kind,)
    model, _, variant = rest.partition(":")
    quality, _, size = variant.partition(":")
    quality = "medium" if quality in ("", "auto") else quality
    size = "1024x1024" if size in ("", "auto") else size
    return (kind, f"{base}:{model}:{quality}:{size}", f"{base}:gpt-image-1:{quality}:{size}",
            f"{base}:gpt-image-1:medium:1024x1024", base)


def _price(kind: str, tables: tuple[ToolPrices, ...]) -> tuple[Decimal, bool] | None:
    for key in _candidates(kind):
        for table in tables:
            price = table.prices.get(key)
            if price is not None:
                return price, key.partition(":")[0] in table.per_prompt or key in table.per_prompt
    return None


def tool_cost(tools: Mapping[str, int], model: ToolPrices | None,
              provider: ToolPrices | None) -> tuple[Decimal, tuple[str, ...]]:
    """(USD of the tool uses, the kinds no table prices) for one call."""
    tables = tuple(t for t in (model, provider) if t is not None)
    total = _ZERO
    unpriced: list[str] = []
    for kind, count in tools.items():
        found = _price(kind, tables) if count else None
        if found is None:
            if count:
                unpriced.append(kind)
            continue
        price, once = found
        total += price * (1 if once else count)
    return total, tuple(unpriced)
