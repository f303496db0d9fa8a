"""Catalogue layers: the bundled data, the user catalogue, the server's catalogue.

`Catalogue.default` prices with, lowest first:

1. the catalogue bundled in the package;
2. the user catalogue (`user_catalogue_path`, written by ``llmlab pricing update``): the models
   an update added or changed, each with its whole price history;
3. the server's catalogue, pulled by the SDK (`llmlab.pricing._sync`) when `llmlab.init` has
   a server and ``pricing_sync`` is on;
4. overrides (``set_price``, ``pricing.toml``): always last, so they always win.

A model present in a higher layer replaces the lower layer's entry as a whole (its periods,
tiers and metadata): per-model data wins, and two apps that pulled the same server catalogue
price every model the same way. Models a layer does not list keep the lower layer's entry.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmlab.errors import PricingError
from llmlab.pricing._rates import ModelPrice

__all__ = ["check_document", "layered", "read_layer", "server_layer", "set_server_layer",
           "write_layer"]

logger = logging.getLogger("llmlab")

_LOCK = threading.Lock()
#: How deep a catalogue document nests (the bundled one: 7 levels); deeper is refused.
MAX_DEPTH = 16
#: The largest number a price table may hold (rates are dollars per token, per image, per
#: second; thresholds are token counts): anything larger is a broken or hostile catalogue.
MAX_NUMBER = Decimal(10) ** 9
#: Top-level keys of a catalogue document that are not merged table by table.
_SCALARS = frozenset({"format", "pricing_version", "source"})
#: The server's catalogue document and who installed it (a `PricingSync`), or None.
_SERVER: tuple[dict[str, Any], object] | None = None


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    provider: str
    name: str
    mode: str = "chat"
    prices: list[dict[str, Any]] = Field(min_length=1)


class CatalogueDocument(BaseModel):
    """The catalogue JSON form (the bundled file, a user catalogue, the server's response)."""

    model_config = ConfigDict(extra="allow")

    format: Literal[1] = 1
    pricing_version: str = Field(min_length=1, max_length=64)
    source: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, _ModelEntry]


def check_document(data: Any, origin: str, *, build: bool = True) -> dict[str, Any]:
    """``data`` checked as a catalogue document (with ``build``, every model built once, to
    find a bad rate now rather than when the model is first priced); raises `PricingError`."""
    try:
        CatalogueDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PricingError(f"{origin}: malformed pricing catalogue ({exc.error_count()} "
                           f"problem(s)); {where}: {first['msg']}") from None
    for key, entry in data["models"].items():
        _check_numbers(entry["prices"], f"{origin}: catalogue entry {key}", 1)
    for key, table in data.items():  # tables beside the models (per-provider tool prices)
        if key not in _SCALARS and key != "models":
            _check_numbers(table, f"{origin}: catalogue table {key}", 1)
    for key, entry in data["models"].items() if build else ():
        try:
            ModelPrice.from_dict(key, entry)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise PricingError(f"{origin}: malformed catalogue entry {key}: {exc!r}") from None
    if build:  # the tables too: what prices a call must never fail on the worker
        from llmlab.pricing._catalogue import Catalogue, bundled_data

        try:
            Catalogue(layered(bundled_data(), data))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise PricingError(f"{origin}: malformed pricing catalogue: {exc!r}") from None
    return dict(data)


def _check_numbers(value: Any, where: str, depth: int) -> None:
    """Every number in ``value`` (a rate, a multiplier, a threshold; numeric strings too)
    finite, not negative and at most `MAX_NUMBER`, and ``value`` at most `MAX_DEPTH` deep;
    raises `PricingError` (a negative, NaN or infinite rate would price calls wrong, or not
    at all)."""
    if depth > MAX_DEPTH:
        raise PricingError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_numbers(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item, where, depth + 1)
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
        except ArithmeticError:
            return  # a label, not a number
        if not number.is_finite() or number < 0 or number > MAX_NUMBER:
            raise PricingError(f"{where}: {value!r} is not a price (negative, not finite or "
                               "absurdly large)")


def read_layer(path: Path) -> dict[str, Any] | None:
    """The catalogue document at ``path``; None when there is none or it is unreadable
    (logged: a broken user catalogue falls back to the bundled prices)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("llmlab: ignoring the user pricing catalogue %s: %s", path, exc)
        return None
    try:
        # Its models are built when first priced: checking the shape here keeps start-up fast.
        return check_document(json.loads(text), str(path), build=False)
    except (ValueError, RecursionError, PricingError) as exc:
        logger.error("llmlab: ignoring the user pricing catalogue %s: %s", path, exc)
        return None


def write_layer(path: Path, document: Mapping[str, Any]) -> None:
    """Write a catalogue document atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: two processes (or threads) writing at once never share a temp file.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def set_server_layer(document: dict[str, Any] | None, owner: object) -> bool:
    """Install the server's catalogue (None removes it, if ``owner`` installed it); whether
    anything changed."""
    global _SERVER
    with _LOCK:
        if document is not None:
            _SERVER = (document, owner)
            return True
        if _SERVER is not None and _SERVER[1] is owner:
            _SERVER = None
            return True
        return False


def server_layer() -> dict[str, Any] | None:
    """The server's catalogue document in force, if any."""
    current = _SERVER
    return current[0] if current is not None else None


def layered(bundled: Mapping[str, Any], *layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalogue data of ``bundled`` with each layer's models replacing its own."""
    present = [layer for layer in layers if layer]
    if not present:
        return dict(bundled)
    data = {**bundled, "models": dict(bundled["models"])}
    for layer in present:
        for key, value in layer.items():  # models, and tables such as per-provider tool prices
            if key not in _SCALARS and isinstance(value, Mapping):
                data[key] = {**(data.get(key) or {}), **value}
        if str(layer["pricing_version"]) >= str(data["pricing_version"]):
            data["pricing_version"] = str(layer["pricing_version"])
            data["source"] = {**dict(layer.get("source") or {}), "bundled": bundled.get("source")}
    return data
