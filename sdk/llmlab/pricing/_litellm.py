"""Convert a LiteLLM-format price table into llmlab's catalogue form.

Used by ``scripts/build_catalogue.py`` (the bundled catalogue) and by `import_litellm`
(a user refreshing prices). LiteLLM rates are USD per token; ``*_above_{N}k_tokens`` keys are
long-context tiers, ``*_above_1hr`` / ``*_above_12hr`` long-lived cache writes, ``_batches``,
``_priority``, ``_flex`` … service tiers; ``provider_specific_entry`` and
``regional_*_multiplier`` are multipliers; ``off_peak_pricing`` holds time-of-day rates
(`llmlab.pricing._offpeak`). Provider rules the table does not spell out are applied here,
each with its source in docs/pricing.md: xAI tiers start when the prompt reaches the
threshold; Fireworks bills cache reads at half the input rate unless a rate is listed.
Built-in tool prices (``search_context_cost_per_query``, ``google_maps_grounding_cost_per_query``,
``code_interpreter_cost_per_session``, per-image prices of ``gpt-image-*``) become ``tools``
prices (`llmlab.pricing._tool_prices`); Gemini's image models (mode ``image_generation``, priced
per token through ``generate_content``) are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from llmlab.errors import PricingError
from llmlab.pricing._collisions import pick
from llmlab.pricing._offpeak import OffPeak

__all__ = ["PAGE_TOOL_PRICES", "PROVIDERS", "convert_entry", "convert_table",
           "convert_tool_prices", "provider_of"]

#: LiteLLM provider name → llmlab provider id, for the providers the catalogue covers.
PROVIDERS: dict[str, str] = {
    "openai": "openai", "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai-language-models": "vertex", "vertex_ai-anthropic_models": "vertex",
    "vertex_ai-embedding-models": "vertex",
    "azure": "azure",
    "bedrock": "bedrock", "bedrock_converse": "bedrock",
    "mistral": "mistral", "codestral": "mistral",
    "cohere": "cohere", "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "xai": "xai",
    "groq": "groq",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
}

#: Key prefixes LiteLLM puts before a model name; stripped to get the provider's own id.
_KEY_PREFIXES = ("openai", "anthropic", "gemini", "vertex_ai", "azure", "bedrock", "mistral",
                 "codestral", "cohere", "deepseek", "xai", "groq", "together_ai", "fireworks_ai",
                 "openrouter", "text-completion-openai", "cohere_chat")

_MODES = frozenset({"chat", "responses", "embedding", "completion"})
#: Providers whose image models answer ``generate_content`` and bill per token (Gemini).
_TOKEN_IMAGE_PROVIDERS = frozenset({"google", "vertex"})

_BASES = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "input_cost_per_token_cache_hit": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "audio_input",
    "output_cost_per_audio_token": "audio_output",
    "input_cost_per_image_token": "image_input",
    "output_cost_per_image_token": "image_output",
}
_SERVICE_TIERS = {"batches": "batch", "priority": "priority", "flex": "flex",
                  "ultrafast": "ultrafast", "decisions": "decisions", "balanced": "balanced"}
_RATE_KEY = re.compile(
    r"^(?P<base>" + "|".join(sorted(_BASES, key=len, reverse=True)) + r")"
    r"(?P<long>_above_1hr|_above_12hr)?"
    r"(?:_above_(?P<tier>\d+)k_tokens)?"
    r"(?:_(?P<svc>" + "|".join(_SERVICE_TIERS) + r"))?$"
)
_SUPPORTS = {
    "supports_function_calling": "tools", "supports_vision": "vision",
    "supports_reasoning": "reasoning", "supports_prompt_caching": "prompt_caching",
    "supports_audio_input": "audio_input", "supports_audio_output": "audio_output",
    "supports_pdf_input": "pdf_input", "supports_response_schema": "structured_output",
    "supports_web_search": "web_search",
}
# Providers whose long-context tier starts when the prompt reaches the threshold (xAI bills
# its higher rate from exactly 128k/200k prompt tokens, docs.x.ai/developers/pricing; a bill
# check found llmlab at 0.5x there with ">"). Everyone else's once the prompt exceeds it.
_TIER_REACHED = frozenset({"xai"})
# Fraction of the input rate a cache read bills at when the entry lists no cache-read rate.
# Fireworks documents a 50 % default discount on cached prompt tokens for serverless models
# (docs.fireworks.ai/serverless/pricing); elsewhere a missing rate means the input rate
# (the table's own README).
_DEFAULT_CACHE_READ = {"fireworks": Decimal("0.5")}


def provider_of(entry: Mapping[str, Any]) -> str | None:
    """The llmlab provider id of a LiteLLM entry, or None when the catalogue skips it."""
    return PROVIDERS.get(str(entry.get("litellm_provider", "")))


def model_name(key: str) -> str:
    """The provider's own model id for a LiteLLM key (``gemini/gemini-2.5-pro`` → ``gemini-2.5-pro``)."""
    head, sep, rest = key.partition("/")
    if sep and head in _KEY_PREFIXES:
        return rest.lower()
    return key.lower()


def _rate(value: Any, key: str) -> Decimal:
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise PricingError(f"{key}: rate {value!r} is not a number") from exc
    if not rate.is_finite() or rate < 0:
        raise PricingError(f"{key}: rate {value!r} must be a finite, non-negative number")
    return rate


def convert_entry(key: str, entry: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """One LiteLLM entry as a catalogue model (a single price period, effective always)."""
    rates: dict[str, dict[str, str]] = {}
    tiers: dict[str, dict[str, dict[str, str]]] = {}
    for field_name, value in entry.items():
        m = _RATE_KEY.match(field_name)
        if m is None or isinstance(value, (dict, list, bool)) or value is None:
            continue
        component = _BASES[m["base"]]
        if m["long"]:
            if component != "cache_write":
                continue
            component = "cache_write_long"
        svc = _SERVICE_TIERS[m["svc"]] if m["svc"] else "standard"
        amount = format(_rate(value, f"{key}.{field_name}"), "f")
        if m["tier"]:
            threshold = str(int(m["tier"]) * 1000)
            tiers.setdefault(threshold, {}).setdefault(svc, {})[component] = amount
        else:
            rates.setdefault(svc, {})[component] = amount
    if "standard" not in rates or "input" not in rates["standard"]:
        raise PricingError(f"{key}: no input_cost_per_token")
    rates["standard"].setdefault("output", "0")
    discount = _DEFAULT_CACHE_READ.get(provider)
    if discount is not None and "cache_read" not in rates["standard"]:
        input_rate = Decimal(rates["standard"]["input"])
        rates["standard"]["cache_read"] = format((input_rate * discount).normalize(), "f")
    multipliers: dict[str, str] = {}
    specific = entry.get("provider_specific_entry")
    if isinstance(specific, Mapping):
        for name, value in specific.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                multipliers[str(name)] = str(_rate(value, f"{key}.provider_specific_entry"))
    for field_name, name in (("regional_processing_uplift_multiplier_eu", "eu"),
                             ("regional_processing_uplift_multiplier_us", "us"),
                             ("regional_endpoint_uplift_multiplier", "regional")):
        if field_name in entry:
            multipliers[name] = str(_rate(entry[field_name], f"{key}.{field_name}"))
    period: dict[str, Any] = {"effective_from": None, "rates": rates}
    if tiers:
        period["tiers"] = tiers
        if provider in _TIER_REACHED:
            period["tier_rule"] = "reach"
    off_peak = entry.get("off_peak_pricing")
    if isinstance(off_peak, Mapping):
        period["off_peak"] = _off_peak(key, off_peak)
    if multipliers:
        period["multipliers"] = multipliers
    model: dict[str, Any] = {"provider": provider, "name": model_name(key),
                             "mode": entry.get("mode", "chat")}
    for attr in ("max_input_tokens", "max_output_tokens"):
        value = entry.get(attr)
        if isinstance(value, int) and not isinstance(value, bool):
            model[attr] = value
    if isinstance(entry.get("deprecation_date"), str):
        model["deprecation_date"] = entry["deprecation_date"]
    supports = sorted(v for k, v in _SUPPORTS.items() if entry.get(k) is True)
    if supports:
        model["supports"] = supports
    tools = _model_tools(entry, provider)
    if tools:
        period["tools"] = tools
    model["prices"] = [period]
    return model


def _search_price(value: Any) -> Any:
    """``search_context_cost_per_query``: the medium context size (the default) when a dict."""
    if isinstance(value, Mapping):
        return value.get("search_context_size_medium")
    return value


def _model_tools(entry: Mapping[str, Any], provider: str) -> dict[str, Any] | None:
    """A model's built-in tool prices in catalogue form, None when the table lists none."""
    prices: dict[str, str] = {}
    for field_name, kind, scale in (
            ("search_context_cost_per_query", "web_search", 1),
            ("google_maps_grounding_cost_per_query", "maps_grounding", 1),
            ("code_interpreter_cost_per_session", "code_interpreter", 1),
            ("file_search_cost_per_1k_calls", "file_search", 1000)):
        value = entry.get(field_name)
        if field_name == "search_context_cost_per_query":
            value = _search_price(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            prices[kind] = format((_rate(value, field_name) / scale).normalize(), "f")
    if not prices:
        return None
    out: dict[str, Any] = {"prices": prices}
    # Gemini 2.x bills grounding per grounded prompt; models marked ``per_query`` (Gemini 3)
    # per search query (ai.google.dev/gemini-api/docs/pricing).
    if provider in _TOKEN_IMAGE_PROVIDERS and entry.get("web_search_billing_unit") != "per_query":
        out["per_prompt"] = sorted(k for k in ("web_search", "maps_grounding") if k in prices)
    return out


#: Tool prices the table does not carry per model, from the providers' price pages
#: (docs/pricing.md, "Tools"): USD per use; ``per_prompt`` kinds bill once per call.
PAGE_TOOL_PRICES: dict[str, dict[str, Any]] = {
    # platform.openai.com/docs/pricing: web search $10 / 1k calls, file search $2.50 / 1k calls.
    "openai": {"prices": {"web_search": "0.01", "file_search": "0.0025"}},
    "azure": {"prices": {"file_search": "0.0025"}},
    # docs.anthropic.com pricing: web search $10 / 1k searches, web fetch at no extra cost,
    # code execution billed per container-hour (not reported per call).
    "anthropic": {"prices": {"web_search": "0.01", "web_fetch": "0", "code_execution": "0"}},
    # ai.google.dev/gemini-api/docs/pricing (Gemini 2.x): $35 / 1k grounded prompts,
    # Google Maps $25 / 1k grounded prompts.
    "google": {"prices": {"web_search": "0.035", "maps_grounding": "0.025"},
               "per_prompt": ["maps_grounding", "web_search"]},
    "vertex": {"prices": {"web_search": "0.035", "maps_grounding": "0.025"},
               "per_prompt": ["maps_grounding", "web_search"]},
}
_IMAGE_KEY = re.compile(r"^(?P<quality>[a-z]+)/(?P<w>\d+)-x-(?P<h>\d+)/(?P<model>gpt-image-[\w.-]+)$")


def convert_tool_prices(table: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Provider-wide tool prices: the pages' (`PAGE_TOOL_PRICES`), then the table's
    containers (``<provider>/container``) and per-image prices of the image tool models."""
    out: dict[str, dict[str, Any]] = {
        p: {"prices": dict(t["prices"]), **({"per_prompt": list(t["per_prompt"])}
                                            if "per_prompt" in t else {})}
        for p, t in PAGE_TOOL_PRICES.items()}
    for key in sorted(table):
        entry = table[key]
        if not isinstance(entry, Mapping):
            continue
        provider = provider_of(entry)
        if provider is None:
            continue
        session = entry.get("code_interpreter_cost_per_session")
        if key.endswith("/container") and isinstance(session, (int, float)):
            prices = out.setdefault(provider, {"prices": {}})["prices"]
            prices["code_interpreter"] = format(_rate(session, key).normalize(), "f")
        m = _IMAGE_KEY.match(key)
        per_image = entry.get("input_cost_per_image")
        if m and provider == "openai" and isinstance(per_image, (int, float)):
            kind = f"image_generation:{m['model']}:{m['quality']}:{m['w']}x{m['h']}"
            prices = out.setdefault(provider, {"prices": {}})["prices"]
            prices[kind] = format(_rate(per_image, key).normalize(), "f")
    return {p: {**t, "prices": dict(sorted(t["prices"].items()))} for p, t in sorted(out.items())}


def _off_peak(key: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's ``off_peak_pricing`` in catalogue form (validated: bad windows raise)."""
    rates: dict[str, str] = {}
    for field_name, value in data.items():
        m = _RATE_KEY.match(field_name)
        if m and not (m["long"] or m["tier"] or m["svc"]):
            rates[_BASES[m["base"]]] = format(_rate(value, f"{key}.off_peak_pricing"), "f")
    window_fields = {k: v for k, v in data.items() if k in ("windows", "weekday_timezone")}
    return OffPeak.from_dict(window_fields, {c: Decimal(v) for c, v in rates.items()}).to_dict()


#: Price fields per unit other than a token (``output_cost_per_image``, ``…_per_second``,
#: ``…_per_character``, ``…_per_video_per_second`` …).
_UNIT_FIELD = re.compile(r"^(?:input|output)_cost_per_(?!.*token)[a-z_]+$")


def _priced_per_unit_only(entry: Mapping[str, Any], model: Mapping[str, Any]) -> bool:
    """Whether the entry bills only per image, clip, second or character (Gemini's Lyria:
    ``output_cost_per_image`` per clip, every token rate 0), so pricing it by tokens would
    say $0 for a paid call."""
    period = model["prices"][0]
    if period.get("tiers") or any(Decimal(rate) for rates in period["rates"].values()
                                  for rate in rates.values()):
        return False
    return any(_UNIT_FIELD.match(name) and isinstance(value, (int, float))
               and not isinstance(value, bool) and value > 0 for name, value in entry.items())


def convert_table(table: Mapping[str, Any], *, strict: bool = False) -> dict[str, dict[str, Any]]:
    """Every covered chat, responses, embedding and completion model of a LiteLLM table.

    Returns catalogue models keyed ``provider/name``. Entries of other providers or modes,
    entries without a token price, and entries billed only per unit (image, clip, second,
    character) with $0 token rates are skipped (unpriced, never a wrong $0). Two LiteLLM
    keys naming the same model with different prices are a collision, settled by
    `llmlab.pricing._collisions.pick`: with ``strict`` (the bundled build) an unknown
    collision raises `PricingError`.
    """
    if not isinstance(table, Mapping):
        raise PricingError("a LiteLLM price table is a JSON object of model entries")
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key in sorted(table):
        entry = table[key]
        if not isinstance(entry, Mapping):
            continue
        provider = provider_of(entry)
        mode = entry.get("mode")
        if mode not in _MODES and not (mode == "image_generation"
                                       and provider in _TOKEN_IMAGE_PROVIDERS):
            continue
        if provider is None or "input_cost_per_token" not in entry:
            continue
        model = convert_entry(key, entry, provider)
        if _priced_per_unit_only(entry, model):
            continue  # a $0 token price would be wrong: left unpriced (docs/pricing.md)
        found.setdefault(f"{provider}/{model['name']}", []).append((key, model))
    return {ref: pick(ref, candidates, _KEY_PREFIXES, strict=strict)
            for ref, candidates in found.items()}
