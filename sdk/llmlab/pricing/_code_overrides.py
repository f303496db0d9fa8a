"""Prices set in code: `set_price`, `add_alias` and `set_markup` of `Catalogue`.

Each call is recorded, so when the process-wide catalogue is rebuilt (the server's catalogue
arrived, `llmlab.pricing._sync`) the new one gets the same overrides (`carry_overrides`):
overrides always win over any catalogue layer (docs/pricing.md, "Precedence").
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmlab.errors import ConfigurationError
from llmlab.pricing._names import PROVIDER_IDS
from llmlab.pricing._rates import COMPONENTS, ModelPrice, PricePeriod
from llmlab.pricing._when import to_date

__all__ = ["CodeOverrides"]

_Call = tuple[str, tuple[Any, ...], dict[str, Any]]


class CodeOverrides:
    """The override methods of `Catalogue` (a mixin: it uses the catalogue's index)."""

    _lock: threading.Lock
    _aliases: dict[str, str]
    _markups: dict[str | None, Decimal]
    _resolved: dict[tuple[str, str | None], ModelPrice | None]
    #: Override calls made on this catalogue, in order (a tuple: shared default, never mutated).
    _calls: tuple[_Call, ...] = ()

    if TYPE_CHECKING:
        def _model(self, key: str) -> ModelPrice | None: ...
        def _add(self, model: ModelPrice) -> None: ...
        def _reindex(self) -> None: ...
        def _resolve(self, model: str, provider: str | None) -> ModelPrice | None: ...

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        self._calls = (*self._calls, (method, args, kwargs))

    def carry_overrides(self, previous: CodeOverrides) -> None:
        """Repeat on this catalogue the override calls made on ``previous`` that it lacks
        (those of ``pricing.toml`` it has already)."""
        for call in previous._calls:
            if call not in self._calls:
                method, args, kwargs = call
                getattr(self, method)(*args, **kwargs)

    def set_price(
        self,
        model: str,
        *,
        provider: str,
        input: Decimal | str | float,
        output: Decimal | str | float,
        per: int = 1_000_000,
        effective_from: date | datetime | str | None = None,
        mode: str = "chat",
        **components: Decimal | str | float,
    ) -> None:
        """Set a custom price (negotiated, fine-tuned or self-hosted models).

        Rates are USD per ``per`` tokens (default: per 1M). Other components
        (``cache_read``, ``cache_write``, ``cache_write_long``, ``reasoning``, ``audio_input``,
        ``audio_output``, ``image_input``, ``image_output``) are optional. With
        ``effective_from`` the price is added to the model's history; without, it replaces it.

        >>> from llmlab.pricing import Catalogue
        >>> cat = Catalogue.bundled()
        >>> cat.set_price("acme-llm", provider="openai", input="1", output="2")
        >>> cat.cost("acme-llm", {"input_tokens": 1_000_000, "output_tokens": 0}).total
        Decimal('1.000000')
        """
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ConfigurationError(f"unknown price component(s): {', '.join(sorted(unknown))}")
        if provider not in PROVIDER_IDS:
            raise ConfigurationError(f"unknown provider {provider!r}; one of {', '.join(PROVIDER_IDS)}")
        if per <= 0:
            raise ConfigurationError("per must be a positive number of tokens")
        rates: dict[str, Decimal] = {}
        for component, value in {"input": input, "output": output, **components}.items():
            try:
                rate = Decimal(str(value)) / per
            except ArithmeticError as exc:
                raise ConfigurationError(f"{component} price {value!r} is not a number") from exc
            if not rate.is_finite() or rate < 0:
                raise ConfigurationError(f"{component} price {value!r} must be >= 0")
            rates[component] = rate
        name = model.strip().lower()
        key = f"{provider}/{name}"
        period = PricePeriod(effective_from=to_date(effective_from), rates={"standard": rates})
        with self._lock:
            existing = self._model(key)
            if existing is not None and period.effective_from is not None:
                periods = [p for p in existing.periods if p.effective_from != period.effective_from]
                existing.periods = sorted([*periods, period],
                                          key=lambda p: p.effective_from or date.min)
            else:
                self._add(ModelPrice(key=key, provider=provider, name=name, mode=mode,
                                     periods=[period]))
            self._reindex()
        self._record("set_price", model, provider=provider, input=input, output=output, per=per,
                     effective_from=effective_from, mode=mode, **components)

    def add_alias(self, alias: str, target: str) -> None:
        """Price ``alias`` (a deployment or proxy name) as ``target`` (``openai/gpt-4o``)."""
        alias_name, target_name = alias.strip().lower(), target.strip().lower()
        if self._resolve(target_name, None) is None:
            raise ConfigurationError(f"alias target {target!r} is not in the pricing catalogue")
        with self._lock:
            self._aliases[alias_name] = target_name
            self._resolved = {}
        self._record("add_alias", alias, target)

    def set_markup(self, percent: Decimal | str | float, project: str | None = None) -> None:
        """Add ``percent`` % to every cost (of ``project`` only, when given)."""
        try:
            value = Decimal(str(percent))
        except ArithmeticError as exc:
            raise ConfigurationError(f"markup {percent!r} is not a number") from exc
        if not value.is_finite() or value <= -100:
            raise ConfigurationError(f"markup {percent!r}% must be a number above -100")
        self._markups[project] = 1 + value / 100
        self._record("set_markup", percent, project)
