"""The pricing catalogue: models, name resolution, overrides and the `cost` entry point."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from llmlab.errors import PricingError
from llmlab.pricing._code_overrides import CodeOverrides
from llmlab.pricing._engine import CostBreakdown, compute
from llmlab.pricing._litellm import convert_table, convert_tool_prices
from llmlab.pricing._names import FALLBACK, PREFIXES, PROVIDER_IDS, candidates
from llmlab.pricing._rates import ModelPrice
from llmlab.pricing._tool_prices import ToolPrices, tool_cost
from llmlab.pricing._when import to_date, to_instant
from llmlab.usage import NORMALISED_TYPES, Usage

__all__ = ["PROVIDER_IDS", "Catalogue", "ImportReport", "bundled_data"]

logger = logging.getLogger("llmlab")

_BUNDLED: Catalogue | None = None
_MISSING: Any = object()
_BUNDLED_DATA: dict[str, Any] | None = None  # parsed once; never mutated
_ONE = Decimal(1)
_BUNDLED_LOCK = threading.Lock()


def bundled_data() -> dict[str, Any]:
    """The bundled catalogue document, parsed once (never mutate it)."""
    global _BUNDLED_DATA
    if _BUNDLED_DATA is None:
        text = resources.files("llmlab.pricing").joinpath("catalogue.json").read_text("utf-8")
        from llmlab.pricing._media_prices import with_media_models

        _BUNDLED_DATA = with_media_models(json.loads(text))  # images and audio (#15)
    return _BUNDLED_DATA


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What `Catalogue.import_litellm` changed."""

    added: int
    updated: int
    unchanged: int


class Catalogue(CodeOverrides):
    """Prices of every known model, with overrides, aliases and per-project markups.

    >>> cat = Catalogue.bundled()
    >>> cat.cost("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 100}).total
    Decimal('0.0035000')
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            self.pricing_version: str = str(data["pricing_version"])
            self.source: dict[str, Any] = dict(data.get("source") or {})
            raw = data["models"]
            # Models are built from their JSON on first use: a process prices a handful of
            # the 1,500 models, and building all of them would cost ~50 ms at start-up.
            self._raw: Mapping[str, Mapping[str, Any]] = raw
            self._identity = {key: (str(entry["provider"]), str(entry["name"]))
                              for key, entry in raw.items()}
            #: Provider-wide built-in tool prices (a model's own win), by provider id.
            self.tool_prices: dict[str, ToolPrices] = {
                str(provider): prices for provider, table in (data.get("tools") or {}).items()
                if (prices := ToolPrices.from_dict(table)) is not None}
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise PricingError(f"malformed pricing catalogue: {exc!r}") from exc
        self._models: dict[str, ModelPrice] = {}
        self._aliases: dict[str, str] = {}
        self._markups: dict[str | None, Decimal] = {}
        self._warned: set[tuple[str, str | None]] = set()
        self._warned_tools: set[tuple[str, tuple[str, ...]]] = set()
        self._lock = threading.Lock()
        self._reindex()

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> Catalogue:
        """Load a catalogue JSON file (the bundled one, or one saved by `save`)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PricingError(f"cannot read pricing catalogue {path}: {exc}") from exc
        return cls(data)

    @classmethod
    def bundled(cls) -> Catalogue:
        """The catalogue shipped inside the package (a fresh, override-free copy)."""
        return cls(bundled_data())

    @classmethod
    def default(cls) -> Catalogue:
        """The process-wide catalogue `llmlab.cost` uses (`load_default`)."""
        global _BUNDLED
        if _BUNDLED is None:
            with _BUNDLED_LOCK:
                if _BUNDLED is None:
                    _BUNDLED = cls.load_default()
        return _BUNDLED

    @classmethod
    def load_default(cls) -> Catalogue:
        """A new catalogue built as `default` is: the bundled one, the user catalogue and the
        server's (`llmlab.pricing._user_catalogue`), then the user's ``pricing.toml``."""
        from llmlab.pricing._overrides import load_user_overrides, user_catalogue_path
        from llmlab.pricing._user_catalogue import layered, read_layer, server_layer

        catalogue = cls(layered(bundled_data(), read_layer(user_catalogue_path()),
                                server_layer()))
        load_user_overrides(catalogue)
        return catalogue

    @classmethod
    def replace_default(cls, catalogue: Catalogue) -> None:
        """Make ``catalogue`` the process-wide one, with the overrides made in code on the one
        it replaces (`set_price`, `add_alias`, `set_markup`)."""
        global _BUNDLED
        with _BUNDLED_LOCK:
            if _BUNDLED is not None:
                catalogue.carry_overrides(_BUNDLED)
            _BUNDLED = catalogue

    @classmethod
    def reset_default(cls) -> None:
        """Forget the process-wide catalogue; the next use reloads it (tests, config changes)."""
        global _BUNDLED
        with _BUNDLED_LOCK:
            _BUNDLED = None

    def to_dict(self) -> dict[str, Any]:
        """The catalogue JSON form (overrides included, aliases and markups not)."""
        out = {"format": 1, "pricing_version": self.pricing_version, "source": self.source,
               "models": {k: m.to_dict() for k, m in sorted(self.models.items())}}
        if self.tool_prices:
            out["tools"] = {p: t.to_dict() for p, t in sorted(self.tool_prices.items())}
        return out

    def save(self, path: str | Path) -> None:
        """Write the catalogue as JSON, atomically."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", "utf-8")
        tmp.replace(target)

    @property
    def models(self) -> dict[str, ModelPrice]:
        """Every model, keyed ``provider/name`` (builds all of them: for listings, not lookups)."""
        for key in self._identity:
            self._model(key)
        return dict(self._models)

    def _model(self, key: str) -> ModelPrice | None:
        model = self._models.get(key)
        if model is None and key in self._identity:
            try:
                model = self._models[key] = ModelPrice.from_dict(key, self._raw[key])
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                raise PricingError(f"malformed catalogue entry {key}: {exc!r}") from exc
        return model

    def entry(self, key: str) -> ModelPrice | None:
        """The model stored under exactly ``provider/name`` (no name resolution)."""
        return self._model(key)

    def identities(self) -> dict[str, tuple[str, str]]:
        """``provider/name`` → (provider, name) of every model, without building them."""
        return dict(self._identity)

    def _add(self, model: ModelPrice) -> None:
        self._models[model.key] = model
        self._identity[model.key] = (model.provider, model.name)

    def _reindex(self) -> None:
        by_name: dict[str, list[str]] = {}
        for key, (_, name) in self._identity.items():
            by_name.setdefault(name, []).append(key)
        order = {p: i for i, p in enumerate(PROVIDER_IDS)}
        for keys in by_name.values():
            keys.sort(key=lambda k: order.get(self._identity[k][0], len(order)))
        self._by_name = by_name
        self._resolved: dict[tuple[str, str | None], ModelPrice | None] = {}

    # -- resolution ------------------------------------------------------------------------

    def resolve(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The catalogue entry that prices ``model``, or None when there is none.

        Accepts bare names (``gpt-4o``), prefixed ones (``openai/gpt-4o``,
        ``gemini/gemini-2.5-pro``), dated snapshots (``gpt-4o-2024-08-06`` when no entry of
        its own exists), Bedrock ids (``us.anthropic.claude-…-v1:0``), any case.
        """
        cache_key = (model, provider)
        try:
            return self._resolved[cache_key]
        except KeyError:
            pass
        found = self._resolve(model, provider)
        if len(self._resolved) > 50_000:  # model names come from responses: stay bounded
            self._resolved.clear()
        self._resolved[cache_key] = found
        return found

    def _resolve(self, model: str, provider: str | None) -> ModelPrice | None:
        name = model.strip().lower()
        if name in self._aliases:
            name = self._aliases[name]
        name = name.removeprefix("models/")
        head, sep, rest = name.partition("/")
        if sep and head in PREFIXES:
            prefixed = PREFIXES[head]
            if provider is None or provider == prefixed:
                # A provider's own id may itself start with a prefix (Together's
                # ``together/Tev1-4B-experimental``): the whole id is tried too.
                return self._lookup(rest, prefixed) or self._lookup(name, prefixed)
            # OpenRouter's own ids contain a slash (openrouter + "openai/gpt-4o").
            return self._lookup(name, provider) or self._lookup(rest, provider)
        return self._lookup(name, provider)

    def _lookup(self, name: str, provider: str | None) -> ModelPrice | None:
        providers: tuple[str | None, ...] = (
            (provider, *FALLBACK.get(provider, ())) if provider else (None,))
        for candidate in candidates(name):
            for prov in providers:
                found = self._exact(candidate, prov)
                if found is not None:
                    return found
        return None

    def _exact(self, name: str, provider: str | None) -> ModelPrice | None:
        if provider is not None:
            return self._model(f"{provider}/{name}")
        keys = self._by_name.get(name)
        return self._model(keys[0]) if keys else None

    def import_litellm(self, table: str | Path | Mapping[str, Any], *,
                       effective_from: date | datetime | str | None = None) -> ImportReport:
        """Refresh prices from a LiteLLM-format table (a path or the parsed JSON).

        New models are added. A model whose rates changed gets a new price period from
        ``effective_from`` (default: today), so events before it keep their old price.
        """
        if not isinstance(table, Mapping):
            try:
                table = json.loads(Path(table).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise PricingError(f"cannot read LiteLLM table {table}: {exc}") from exc
        models = convert_table(table)  # type: ignore[arg-type]
        when = to_date(effective_from) or date.today()
        added = updated = unchanged = 0
        with self._lock:
            for key, data in models.items():
                new = ModelPrice.from_dict(key, data)
                current = self._model(key)
                if current is None:
                    self._add(new)
                    added += 1
                    continue
                latest = current.periods[-1]
                period = new.periods[0]
                if (latest.rates, latest.tiers, latest.multipliers, latest.off_peak,
                        latest.tier_rule, latest.tools) == (
                        period.rates, period.tiers, period.multipliers, period.off_peak,
                        period.tier_rule, period.tools):
                    unchanged += 1
                    continue
                period.effective_from = when
                current.periods = [p for p in current.periods if p.effective_from != when]
                current.periods.append(period)
                current.periods.sort(key=lambda p: p.effective_from or date.min)
                updated += 1
            for provider, table_prices in convert_tool_prices(table).items():  # type: ignore[arg-type]
                self.tool_prices[provider] = ToolPrices.from_dict(table_prices)  # type: ignore[assignment]
            self.pricing_version = max(self.pricing_version, when.isoformat())
            self._reindex()
        return ImportReport(added=added, updated=updated, unchanged=unchanged)

    # -- pricing ---------------------------------------------------------------------------

    def cost(
        self,
        model: str,
        usage: Any,
        provider: str | None = None,
        *,
        at: date | datetime | str | None = None,
        service_tier: str | None = None,
        region: str | None = None,
        project: str | None = None,
    ) -> CostBreakdown:
        """The exact cost of one call; see `llmlab.cost`."""
        normalised = (usage if type(usage) in NORMALISED_TYPES
                      else Usage.from_any(usage, provider))
        entry: ModelPrice | None = self._resolved.get((model, provider), _MISSING)
        if entry is _MISSING:
            entry = self.resolve(model, provider)
        if entry is None:
            if (model, provider) not in self._warned:
                self._warned.add((model, provider))
                logger.warning("llmlab: no price for model %r (provider %s); its cost is "
                               "recorded as unpriced, not $0. Add one with set_price() or "
                               "~/.llmlab/pricing.toml.", model, provider or "unknown")
            return CostBreakdown(model=model, provider=provider,
                                 pricing_version=self.pricing_version)
        periods = entry.periods
        period = periods[-1] if at is None or len(periods) == 1 else entry.period_at(
            at if type(at) is date else to_date(at))
        svc = _SERVICE_TIER_NAMES.get(service_tier) or str(service_tier).lower()
        off_peak = period.off_peak
        if off_peak is None:  # the time is read only for models priced by the time of day
            card = period.card(svc, normalised.input_tokens)
        else:
            # A bare date cannot say the hour: standard (peak) rates; no ``at`` means now.
            when = datetime.now(UTC) if at is None else to_instant(at)
            card = period.card(svc, normalised.input_tokens,
                               isinstance(when, datetime) and off_peak.covers(when))
        multiplier = _ONE
        if self._markups:
            multiplier = self._markups.get(project) or self._markups.get(None) or _ONE
        if region:
            regional = period.multipliers.get(region.lower())
            if regional is None and region.lower() not in ("global", "default"):
                regional = period.multipliers.get("regional")
            if regional is not None:
                multiplier = multiplier * regional
        if not normalised.tools:
            return compute(card, normalised, multiplier, model, entry.provider,
                           self.pricing_version, entry.key)
        tools, unpriced = tool_cost(normalised.tools, period.tools,
                                    self.tool_prices.get(entry.provider))
        if unpriced and (entry.key, unpriced) not in self._warned_tools:
            self._warned_tools.add((entry.key, unpriced))
            logger.warning("llmlab: no price for tool use %s of %s; counted, billed as $0",
                           ", ".join(unpriced), entry.key)
        return compute(card, normalised, multiplier, model, entry.provider,
                       self.pricing_version, entry.key, tools, unpriced)


_SERVICE_TIER_NAMES = {None: "standard", "default": "standard", "auto": "standard",
                       "standard": "standard", "standard_only": "standard", "scale": "standard",
                       "batch": "batch", "batches": "batch"}
