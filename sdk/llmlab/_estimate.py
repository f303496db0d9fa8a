"""Token and cost estimates for when the provider has not (yet) said.

Used before a call, to check budgets against its worst case (prompt estimate + the most output
the request allows, priced from the catalogue), and after a stream that ended before the
provider reported usage (then the event is marked ``estimated``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from llmlab._consts import CHARS_PER_TOKEN
from llmlab.pricing import Catalogue
from llmlab.usage import Usage

__all__ = ["estimate_prompt_tokens", "max_output_tokens", "tokens_for_chars", "worst_case_cost"]

#: Request fields that hold the prompt, across OpenAI, Anthropic and Gemini.
_PROMPT_FIELDS = ("messages", "input", "prompt", "system", "instructions", "contents", "tools")
#: Request fields that cap the output.
_MAX_OUTPUT_FIELDS = ("max_completion_tokens", "max_output_tokens", "max_tokens")
#: When neither the request nor the catalogue says how long the output may be.
DEFAULT_MAX_OUTPUT = 4096


def tokens_for_chars(chars: int) -> int:
    """Tokens for ``chars`` characters of text (rounded up)."""
    return -(-chars // CHARS_PER_TOKEN) if chars > 0 else 0


def _text_size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return len(str(value))


def estimate_prompt_tokens(kwargs: Mapping[str, Any]) -> int:
    """About how many tokens the request's prompt holds (characters / 4)."""
    return tokens_for_chars(sum(_text_size(kwargs.get(f)) for f in _PROMPT_FIELDS))


def max_output_tokens(kwargs: Mapping[str, Any], catalogue_max: int | None) -> int:
    """The most output the request allows: its own cap, else the model's, else 4096."""
    for name in _MAX_OUTPUT_FIELDS:
        value = kwargs.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    config = kwargs.get("config") or kwargs.get("generation_config")
    if config is not None:
        value = (config.get("max_output_tokens") if isinstance(config, Mapping)
                 else getattr(config, "max_output_tokens", None))
        if isinstance(value, int) and value > 0:
            return value
    return catalogue_max or DEFAULT_MAX_OUTPUT


def worst_case_cost(catalogue: Catalogue | None, provider: str, model: str,
                    kwargs: Mapping[str, Any]) -> Decimal:
    """The most this request can cost: estimated prompt + maximum output, at list price."""
    catalogue = catalogue or Catalogue.default()
    entry = catalogue.resolve(model, provider)
    if entry is None:
        return Decimal(0)
    usage = Usage(input_tokens=estimate_prompt_tokens(kwargs),
                  output_tokens=max_output_tokens(kwargs, entry.max_output_tokens))
    return catalogue.cost(model, usage, provider).total
