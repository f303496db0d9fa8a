"""Token and cost estimates for when the provider has not (yet) said.

Used before a call, to check budgets against its worst case (prompt estimate + the most output
the request allows, priced from the catalogue), and after a stream that ended before the
provider reported usage (then the event is marked ``estimated``).

The worst case runs before every call checked against a ``block`` budget, so it is cheap and
never below what the call can be billed at list price:

* the prompt is measured as its JSON text would be, without encoding it when the messages
  are plain ASCII strings (the usual chat request); anything else (content parts, images,
  tools, non-ASCII text, whose JSON escapes count as more characters) is measured through
  ``json.dumps`` as before; characters / 4 are its tokens;
* the output is the request's own cap, else the model's, else 4096 tokens;
* the rates are the highest the call may be billed at: prompt tokens at the dearest of the
  input, cache-write and audio/image input rates, output tokens at the dearest of the output,
  reasoning and audio/image output rates, for the request's service tier and the prompt's
  context length, times the largest regional multiplier and the project's markup. They are
  worked out once per rate card and cached.

Images, speech and transcription models (their catalogue ``mode``) and the built-in tool fees
a request bounds (``max_uses``, ``max_tool_calls``) have their own worst cases:
`llmlab._estimate_media`.

The budget guard reserves worst cases in whole pico-dollars (`worst_case_pico`), and far
from a budget's limit a model's *ceiling* instead (`ceiling_pico`: the most any chat request
to it can cost), which needs no look at the request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from llmlab._consts import CHARS_PER_TOKEN
from llmlab._estimate_media import MEDIA_MODES, media_worst_case, tool_fee_bound
from llmlab.pricing import PROVIDER_IDS, Catalogue

__all__ = ["ceiling_pico", "estimate_prompt_tokens", "from_pico", "max_output_tokens", "to_pico",
           "tokens_for_chars", "worst_case_cost", "worst_case_pico"]

#: Request fields that hold the prompt, across OpenAI, Anthropic and Gemini.
_PROMPT_FIELDS = ("messages", "input", "prompt", "system", "instructions", "contents", "tools")
#: Request fields that cap the output.
_MAX_OUTPUT_FIELDS = ("max_completion_tokens", "max_output_tokens", "max_tokens")
#: When neither the request nor the catalogue says how long the output may be.
DEFAULT_MAX_OUTPUT = 4096
#: Characters counted for the framing of a prompt given as a bare string (its turn's markers).
_TURN = 8
_ONE = Decimal(1)
_MISSING: Any = object()
#: Request ``service_tier`` values and the catalogue's rate table they are billed from.
_TIERS = {None: "standard", "default": "standard", "auto": "standard", "standard": "standard",
          "scale": "standard", "batch": "batch", "flex": "flex", "priority": "priority"}


def tokens_for_chars(chars: int) -> int:
    """Tokens for ``chars`` characters of text (rounded up)."""
    return -(-chars // CHARS_PER_TOKEN) if chars > 0 else 0


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return len(str(value))


def _text_size(value: Any) -> int:
    """The length of a prompt field's JSON text (escapes aside for plain ASCII messages).

    A message of ASCII strings, ``{"role": "user", "content": "hi"}``, counts its braces and
    per item its key and value, two quotes each, a colon, a space and a separator (8
    characters, one more than JSON writes), without being encoded.
    """
    if value is None:
        return 0
    kind = type(value)
    if kind is str:  # a bare prompt: its text, and the framing of a turn (a few tokens)
        return (len(value) if value.isascii() else _json_size(value)) + _TURN
    if kind is list:
        size = 2
        for item in value:
            if type(item) is dict:
                size += 4
                for key, text in item.items():
                    if type(text) is not str or not text.isascii():
                        return _json_size(value)  # content parts, images, tool calls, ...
                    size += len(key) + len(text) + 8
            elif type(item) is str and item.isascii():
                size += len(item) + 4
            else:
                return _json_size(value)
        return size
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return _json_size(value)


def estimate_prompt_tokens(kwargs: Mapping[str, Any]) -> int:
    """About how many tokens the request's prompt holds (characters / 4)."""
    chars = 0
    for name in _PROMPT_FIELDS:
        value = kwargs.get(name)
        if value is not None:
            chars += _text_size(value)
    return tokens_for_chars(chars)


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


#: Request fields the worst case reads, and what each is: a prompt or an output cap.
_SKIP = object()
_FIELDS: dict[str, bool | None] = (dict.fromkeys(_PROMPT_FIELDS, True)
                                    | dict.fromkeys(_MAX_OUTPUT_FIELDS, False)
                                    | {"config": None, "generation_config": None})
#: (id(price period), service tier) -> (the period, the dearest prompt and output rates of
#: its tier-0 card times its largest multiplier in `_PICO` dollars, whether the prompt's
#: length picks the card).
_RATES: dict[tuple[int, str], tuple[Any, int, int, bool]] = {}
#: Rates are kept as whole pico-dollars per token, rounded up: the worst case is then integer
#: arithmetic (every catalogue rate is a whole number of them anyway).
_PICO = 12


def _dearest(period: Any, svc: str, prompt: int) -> tuple[int, int]:
    """The dearest prompt and output rates (pico-dollars) a call of ``prompt`` tokens may be
    billed at in ``period`` (cached per period and tier: periods and cards do not change)."""
    cached = _RATES.get((id(period), svc))
    if cached is None or cached[0] is not period:
        cached = (period, *_rates(period, svc, 0), bool(period.tiers))
        if len(_RATES) > 4096:
            _RATES.clear()
        _RATES[(id(period), svc)] = cached
    if cached[3]:  # long-context tiers: the card depends on the prompt's length
        return _rates(period, svc, prompt)
    return cached[1], cached[2]


def _rates(period: Any, svc: str, prompt: int) -> tuple[int, int]:
    card = period.card(svc, prompt)
    scale = _scale(period)
    dearest_in = max(card.input, card.cache_write, card.cache_write_long, card.audio_input,
                     card.image_input)
    dearest_out = max(card.output, card.reasoning, card.audio_output, card.image_output)
    return (to_pico(dearest_in * scale), to_pico(dearest_out * scale))


def _scale(period: Any) -> Decimal:
    """The largest regional multiplier of ``period`` (at least 1)."""
    return max(_ONE, *period.multipliers.values()) if period.multipliers else _ONE


def _media_cost(catalogue: Catalogue, entry: Any, kwargs: Mapping[str, Any],
                project: str | None) -> Decimal:
    """The worst case of an image, speech or transcription request (`_estimate_media`)."""
    period = entry.periods[-1]
    tier = kwargs.get("service_tier")
    svc = _TIERS.get(tier, "standard") if tier is None or type(tier) is str else "standard"
    cost = media_worst_case(entry.mode, entry.provider, period.card(svc, 0), period.tools,
                            kwargs) * _scale(period)
    markups = catalogue._markups
    if markups:
        cost *= max(_ONE, markups.get(project) or markups.get(None) or _ONE)
    return cost


def to_pico(amount: Decimal) -> int:
    """A dollar amount in whole pico-dollars, rounded up (a worst case never shrinks)."""
    return math.ceil(amount.scaleb(_PICO))


def from_pico(amount: int) -> Decimal:
    """Whole pico-dollars as dollars."""
    return Decimal(amount).scaleb(-_PICO)


def worst_case_cost(catalogue: Catalogue | None, provider: str, model: str,
                    kwargs: Mapping[str, Any], project: str | None = None) -> Decimal:
    """The most this request can cost: estimated prompt + maximum output, at the dearest
    rates it may be billed at (see the module docstring); $0 for a model without a price."""
    return from_pico(worst_case_pico(catalogue, provider, model, kwargs, project))


def worst_case_pico(catalogue: Catalogue | None, provider: str, model: str,
                    kwargs: Mapping[str, Any], project: str | None = None) -> int:
    """`worst_case_cost` in whole pico-dollars, rounded up: what the budget guard reserves.

    Integer arithmetic only for a chat request (no `Decimal`, whose context and code a call
    would otherwise fetch on every budgeted call), unless tools or a markup apply.
    """
    catalogue = catalogue or Catalogue.default()
    entry = catalogue._resolved.get((model, provider), _MISSING)  # `resolve`'s cache, inline
    if entry is _MISSING:
        entry = catalogue.resolve(model, provider)
    if entry is None:
        return 0
    if entry.mode in MEDIA_MODES:
        return to_pico(_media_cost(catalogue, entry, kwargs, project))
    chars = 0
    output = 0
    fields = _FIELDS
    for name, value in kwargs.items():  # one pass: a request has a handful of keywords
        kind = fields.get(name, _SKIP)
        if kind is _SKIP or value is None:
            continue
        if kind is True:
            chars += _text_size(value)
        elif kind is False:
            if type(value) is int and value > output:  # two caps (never both, really)
                output = value
        else:  # a Gemini config holding the cap
            cap = (value.get("max_output_tokens") if isinstance(value, Mapping)
                   else getattr(value, "max_output_tokens", None))
            if type(cap) is int and cap > output:
                output = cap
    if not output:
        output = entry.max_output_tokens or DEFAULT_MAX_OUTPUT
    prompt = -(-chars // CHARS_PER_TOKEN)
    tier = kwargs.get("service_tier")
    svc = _TIERS.get(tier, "standard") if tier is None or type(tier) is str else "standard"
    period = entry.periods[-1]
    cached = _RATES.get((id(period), svc))
    if cached is not None and cached[0] is period and not cached[3]:
        prompt_rate, output_rate = cached[1], cached[2]
    else:
        prompt_rate, output_rate = _dearest(period, svc, prompt)
    cost = prompt * prompt_rate + output * output_rate
    if "tools" in kwargs:
        fees = tool_fee_bound(kwargs, period.tools, catalogue.tool_prices.get(entry.provider))
        if fees:
            cost += to_pico(fees * _scale(period))
    markups = catalogue._markups
    if markups:
        markup = markups.get(project) or markups.get(None) or _ONE
        if markup > _ONE:
            cost = math.ceil(cost * markup)  # pico-dollars times the markup, rounded up
    return cost


#: Service tiers a call may be billed at (`_TIERS`' values).
_SERVICE_TIERS = tuple(dict.fromkeys(_TIERS.values()))
#: Model name -> (the catalogue index it was worked out on, its ceiling): see `ceiling_pico`.
_CEILINGS: dict[str, tuple[Any, int | None]] = {}


def ceiling_pico(catalogue: Catalogue, model: str) -> int | None:
    """The most any chat request to ``model`` can cost, whatever its provider, in whole
    pico-dollars rounded up: a prompt of the model's whole input window and its largest
    output, at the dearest rates of every service tier and context tier, times the largest
    multiplier. None when that is not bounded: some provider's entry for the name lacks a
    token limit, or prices per image, character or second. Tool fees and markups are not
    in it (the budget guard's fast path leaves such calls to `worst_case_pico`).

    Worked out once per name and catalogue index (up to 15 resolutions), then cached.
    """
    cached = _CEILINGS.get(model)
    marker = catalogue._resolved  # replaced whenever the catalogue's prices change
    if cached is not None and cached[0] is marker:
        return cached[1]
    ceiling: int | None = _ceiling(catalogue, model)
    if len(_CEILINGS) > 4096:
        _CEILINGS.clear()
    _CEILINGS[model] = (marker, ceiling)
    return ceiling


def _ceiling(catalogue: Catalogue, model: str) -> int | None:
    most = 0
    for provider in (None, *PROVIDER_IDS):
        entry = catalogue.resolve(model, provider)
        if entry is None:
            continue
        window, output = entry.max_input_tokens, entry.max_output_tokens
        if entry.mode in MEDIA_MODES or not window or not output:
            return None
        period = entry.periods[-1]
        for prompt in {0, window, *(t + 1 for t in period.tiers if t < window)}:
            for svc in _SERVICE_TIERS:
                prompt_rate, output_rate = _rates(period, svc, prompt)
                most = max(most, window * prompt_rate + output * output_rate)
    return most
