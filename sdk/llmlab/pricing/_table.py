"""Read and validate a LiteLLM-format price table (a file or a URL) before it is imported.

The table is LiteLLM's ``model_prices_and_context_window.json`` (`DEFAULT_TABLE_URL`) or any
file of the same shape: a JSON object of model entries. Entries of the providers and modes the
catalogue covers are checked with pydantic: a rate that is not a finite, non-negative number,
a missing ``input_cost_per_token`` or a non-object entry is an error naming the entry and the
field. Entries llmlab does not catalogue (other providers, image or audio modes) are not
checked: the table carries many of them, and they do not change any price llmlab uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from llmlab.errors import PricingError
from llmlab.pricing._litellm import _MODES, _RATE_KEY, PROVIDERS

__all__ = ["DEFAULT_TABLE_URL", "load_table", "validate_table"]

#: LiteLLM's published table (MIT licence), what ``llmlab pricing update`` reads by default.
DEFAULT_TABLE_URL = ("https://raw.githubusercontent.com/BerriAI/litellm/main/"
                     "model_prices_and_context_window.json")
#: A table larger than this is refused (LiteLLM's is ~1.5 MB).
MAX_TABLE_BYTES = 64 * 1024 * 1024
_MAX_ERRORS = 5


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"a rate must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a rate must be a finite number >= 0, got {value!r}")
    return float(value)


class TableEntry(BaseModel):
    """One covered model entry of a LiteLLM table (other fields are allowed and ignored)."""

    model_config = ConfigDict(extra="allow")

    litellm_provider: str
    mode: str
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None

    @field_validator("input_cost_per_token", "output_cost_per_token", mode="before")
    @classmethod
    def _a_rate(cls, value: Any) -> Any:
        return value if value is None else _rate(value)

    @field_validator("max_input_tokens", "max_output_tokens", mode="before")
    @classmethod
    def _a_count(cls, value: Any) -> Any:
        # LiteLLM writes some limits as floats or text ("1M"): not a price, not checked here.
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @model_validator(mode="after")
    def _rates_are_numbers(self) -> TableEntry:
        for name, value in (self.model_extra or {}).items():
            if _RATE_KEY.match(name) and value is not None:
                try:
                    _rate(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return self


def validate_table(table: Any, origin: str = "table") -> dict[str, Any]:
    """``table`` checked as a LiteLLM price table; raises `PricingError` listing what is wrong."""
    if not isinstance(table, Mapping):
        raise PricingError(f"{origin}: a LiteLLM price table is a JSON object of model entries, "
                           f"not {type(table).__name__}")
    problems: list[str] = []
    covered = 0
    for key, entry in table.items():
        if not isinstance(entry, Mapping):
            if key not in ("sample_spec", "fallback_generalizations"):
                problems.append(f"{key!r}: an entry must be a JSON object")
            continue
        if PROVIDERS.get(str(entry.get("litellm_provider", ""))) is None \
                or entry.get("mode") not in _MODES:
            continue
        covered += 1
        try:
            TableEntry.model_validate(entry)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{key!r}" + (f".{where}" if where else "") + f": {message}")
    if problems:
        shown = "; ".join(problems[:_MAX_ERRORS])
        more = f" (and {len(problems) - _MAX_ERRORS} more)" if len(problems) > _MAX_ERRORS else ""
        raise PricingError(f"{origin}: malformed LiteLLM price table: {shown}{more}")
    if not covered:
        raise PricingError(f"{origin}: no chat, responses, embedding or completion model of a "
                           f"provider llmlab prices; is this a LiteLLM price table?")
    return dict(table)


def load_table(source: str | Path | None = None, *, timeout: float = 60.0) -> tuple[dict[str, Any], str]:
    """The validated table at ``source`` (a file, an http(s) URL, None for LiteLLM's) and the
    text naming where it came from."""
    origin = str(source) if source is not None else DEFAULT_TABLE_URL
    if origin.startswith(("http://", "https://")):
        try:
            response = httpx.get(origin, timeout=timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise PricingError(f"cannot download {origin}: {exc}") from exc
        if response.status_code != 200:
            raise PricingError(f"cannot download {origin}: HTTP {response.status_code}")
        raw = response.content
    else:
        try:
            raw = Path(origin).expanduser().read_bytes()
        except OSError as exc:
            raise PricingError(f"cannot read LiteLLM table {origin}: {exc.strerror or exc}") \
                from exc
    if len(raw) > MAX_TABLE_BYTES:
        raise PricingError(f"{origin}: {len(raw)} bytes is too large for a price table")
    try:
        table = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise PricingError(f"cannot read LiteLLM table {origin}: not JSON ({exc})") from exc
    return validate_table(table, origin), origin
