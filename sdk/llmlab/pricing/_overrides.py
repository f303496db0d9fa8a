"""Read pricing overrides from ``~/.llmlab/pricing.toml``.

The file (prices in USD per 1M tokens)::

    [models."ft:gpt-4o-mini:acme::abc123"]
    provider = "openai"
    input = 0.30
    output = 1.20
    cache_read = 0.15
    effective_from = "2026-01-01"     # optional: adds to the price history

    [aliases]
    "prod-gpt" = "openai/gpt-4o"      # an Azure deployment or proxy name

    [markup]
    default = 0                        # percent added to every cost
    "support-bot" = 12.5               # percent, for one project
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmlab._paths import home_dir
from llmlab.errors import ConfigurationError, LLMLabError

if TYPE_CHECKING:
    from llmlab.pricing._catalogue import Catalogue

__all__ = ["apply_overrides", "load_overrides", "load_user_overrides", "user_catalogue_path"]

_MODEL_KEYS = frozenset({"provider", "effective_from", "mode", "input", "output", "cache_read",
                         "cache_write", "cache_write_long", "reasoning", "audio_input",
                         "audio_output", "image_input", "image_output"})


def user_overrides_path() -> Path:
    """``~/.llmlab/pricing.toml`` (under ``$LLMLAB_HOME`` when set)."""
    return home_dir() / "pricing.toml"


def user_catalogue_path() -> Path:
    """The user catalogue ``llmlab pricing update`` writes and every process prices with:
    ``$LLMLAB_PRICING_CATALOGUE``, else ``~/.llmlab/catalogue.json`` (under ``$LLMLAB_HOME``)."""
    configured = os.environ.get("LLMLAB_PRICING_CATALOGUE", "").strip()
    return Path(configured).expanduser() if configured else home_dir() / "catalogue.json"


def apply_overrides(catalogue: Catalogue, data: dict[str, Any], origin: str = "overrides") -> None:
    """Apply a parsed overrides document to ``catalogue``."""
    unknown = set(data) - {"models", "aliases", "markup"}
    if unknown:
        raise ConfigurationError(f"{origin}: unknown section(s) {', '.join(sorted(unknown))}")
    for model, spec in (data.get("models") or {}).items():
        if not isinstance(spec, dict):
            raise ConfigurationError(f"{origin}: [models.{model!r}] must be a table")
        bad = set(spec) - _MODEL_KEYS
        if bad:
            raise ConfigurationError(f"{origin}: [models.{model!r}] unknown key(s) {sorted(bad)}")
        for required in ("provider", "input", "output"):
            if required not in spec:
                raise ConfigurationError(f"{origin}: [models.{model!r}] needs {required!r}")
        rates = {k: v for k, v in spec.items() if k not in ("provider", "effective_from", "mode")}
        try:
            catalogue.set_price(model, provider=spec["provider"],
                                effective_from=spec.get("effective_from"),
                                mode=spec.get("mode", "chat"), **rates)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{origin}: [models.{model!r}] {exc}") from exc
    for alias, target in (data.get("aliases") or {}).items():
        try:
            catalogue.add_alias(alias, str(target))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{origin}: [aliases] {exc}") from exc
    for project, percent in (data.get("markup") or {}).items():
        try:
            catalogue.set_markup(percent, None if project == "default" else project)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{origin}: [markup] {project!r}: {exc}") from exc


def load_overrides(catalogue: Catalogue, path: str | Path) -> None:
    """Apply a ``pricing.toml`` file to ``catalogue``; raise `ConfigurationError` if it is bad."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    apply_overrides(catalogue, data, str(path))


def load_user_overrides(catalogue: Catalogue) -> None:
    """Apply ``~/.llmlab/pricing.toml`` if it exists; a broken file is logged, not fatal."""
    path = user_overrides_path()
    if not path.exists():
        return
    try:
        load_overrides(catalogue, path)
    except LLMLabError as exc:
        logging.getLogger("llmlab").error("llmlab: ignoring pricing overrides: %s", exc)
