"""Normalised token usage, and adapters from every provider's native usage shape.

One rule for every provider (DESIGN.md): ``input_tokens`` counts ALL prompt tokens, cache reads
and writes included, and ``cache_*``, ``audio_input_tokens`` and ``image_input_tokens`` are
subsets of it. ``output_tokens`` counts all completion tokens, reasoning included, and
``reasoning_tokens``, ``audio_output_tokens`` and ``image_output_tokens`` are subsets of it.

So OpenAI is taken as is; Anthropic ``input_tokens`` = input + cache_read + cache_creation;
Gemini output = candidates + thoughts, and tool-use prompt tokens join the input; Gemini
``IMAGE`` output tokens are ``image_output_tokens``.

``tools`` counts built-in tool uses billed per use (``{"web_search": 5}``, see
`llmlab._tools`): Anthropic's ``server_tool_use`` is read here, the tool items of OpenAI
Responses and Gemini grounding by the integrations (they are in the response, not its usage).

>>> Usage.from_any({"prompt_tokens": 1200, "completion_tokens": 300,
...                 "prompt_tokens_details": {"cached_tokens": 1000}}).cache_read_tokens
1000
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from llmlab._tools import NO_TOOLS, ToolCounts, checked_tools, merge_tools, server_tool_use
from llmlab.errors import UsageError

__all__ = ["MAX_TOKENS", "NORMALISED_TYPES", "Usage"]

#: Larger counts than this in one call are a bug upstream, not a bill (10 billion tokens).
MAX_TOKENS = 10_000_000_000

_INPUT_SUBSETS = ("cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
                  "audio_input_tokens", "image_input_tokens")
_OUTPUT_SUBSETS = ("reasoning_tokens", "audio_output_tokens", "image_output_tokens")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, normalised (see the module docstring for the rule)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    #: Built-in tool uses billed per use, by kind (read-only; empty for most calls).
    tools: Mapping[str, int] = NO_TOOLS

    def __post_init__(self) -> None:
        values = (self.input_tokens, self.output_tokens, self.cache_read_tokens,
                  self.cache_write_tokens, self.cache_write_1h_tokens, self.reasoning_tokens,
                  self.audio_input_tokens, self.audio_output_tokens, self.image_input_tokens,
                  self.image_output_tokens)
        # One cheap check for the common case; `type() is int` also refuses bool, an int
        # subclass that is not a count.
        if set(map(type, values)) != _INT_ONLY or min(values) < 0 or max(values) > MAX_TOKENS:
            for name, value in zip(_FIELDS, values, strict=True):
                if type(value) is not int or not 0 <= value <= MAX_TOKENS:
                    _refuse(name, value)
        if self.uncached_input_tokens < 0:
            raise UsageError(
                f"cache, audio and image input tokens ({self.input_tokens - self.uncached_input_tokens})"
                f" exceed input_tokens ({self.input_tokens}); input_tokens must include them"
            )
        if self.text_output_tokens < 0:
            raise UsageError(
                f"reasoning, audio and image output tokens exceed output_tokens ({self.output_tokens});"
                " output_tokens must include them"
            )
        if self.tools is not NO_TOOLS and type(self.tools) is not ToolCounts:
            object.__setattr__(self, "tools", checked_tools(self.tools))

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens billed at the plain text input rate."""
        return (self.input_tokens - self.cache_read_tokens - self.cache_write_tokens
                - self.cache_write_1h_tokens - self.audio_input_tokens - self.image_input_tokens)

    @property
    def text_output_tokens(self) -> int:
        """Completion tokens billed at the plain text output rate."""
        return (self.output_tokens - self.reasoning_tokens - self.audio_output_tokens
                - self.image_output_tokens)

    @property
    def total_tokens(self) -> int:
        """All tokens of the call, prompt plus completion."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        """Every field, zeros included (``tools`` as a plain dict, empty when none)."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cache_read_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens,
                "cache_write_1h_tokens": self.cache_write_1h_tokens,
                "reasoning_tokens": self.reasoning_tokens,
                "audio_input_tokens": self.audio_input_tokens,
                "audio_output_tokens": self.audio_output_tokens,
                "image_input_tokens": self.image_input_tokens,
                "image_output_tokens": self.image_output_tokens, "tools": dict(self.tools)}

    def to_sparse_dict(self) -> dict[str, Any]:
        """The wire form without zero counts (the wire format defaults them to 0)."""
        out: dict[str, Any] = {name: value for name in _FIELDS if (value := getattr(self, name))}
        if self.tools:
            out["tools"] = dict(self.tools)
        return out

    def with_tools(self, tools: Mapping[str, int]) -> Usage:
        """This usage plus ``tools`` (added to the tool counts it has)."""
        if not tools:
            return self
        return replace(self, tools=merge_tools(self.tools, tools))

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        counts: dict[str, Any] = {name: getattr(self, name) + getattr(other, name)
                                  for name in _FIELDS}
        tools = merge_tools(self.tools, other.tools) if self.tools or other.tools else NO_TOOLS
        return Usage(**counts, tools=tools)

    @classmethod
    def from_any(cls, usage: Any, provider: str | None = None) -> Usage:
        """Normalise a provider's native usage object, a dict of it, or a normalised dict.

        Recognised shapes: OpenAI Chat Completions / Embeddings (``prompt_tokens``), OpenAI
        Responses (``input_tokens`` + ``input_tokens_details``), Anthropic (``input_tokens`` +
        ``cache_*_input_tokens``), google-genai and google-generativeai (``prompt_token_count``
        or ``promptTokenCount``), and this class's own field names.
        """
        if isinstance(usage, Usage):
            return usage
        if usage is None:
            raise UsageError("usage is required (got None)")
        data = _as_mapping(usage)
        if "prompt_token_count" in data or "promptTokenCount" in data or "candidates_token_count" in data:
            return _from_gemini(data)
        if "prompt_tokens" in data or "completion_tokens" in data:
            return _from_openai(data, "prompt", "completion")
        anthropic_keys = ("cache_creation_input_tokens" in data or "cache_read_input_tokens" in data
                          or "cache_creation" in data or "server_tool_use" in data
                          or provider in _ANTHROPIC_PROVIDERS)
        if anthropic_keys and not any(k in data for k in _NORMALISED_ONLY):
            return _from_anthropic(data)
        if "input_tokens_details" in data or "output_tokens_details" in data:
            return _from_openai(data, "input", "output")
        return _from_normalised(data)


def _refuse(name: str, value: Any) -> None:
    if type(value) is not int:
        raise UsageError(f"{name} must be an integer token count, got {value!r}")
    if value < 0:
        raise UsageError(f"{name} must not be negative, got {value}")
    raise UsageError(f"{name}={value} is absurd (more than {MAX_TOKENS:,} tokens)")


#: The token count fields (every field but ``tools``).
_FIELDS = tuple(f.name for f in fields(Usage) if f.name != "tools")

#: Types whose instances hold counts already checked against `Usage`'s rules, under its ten
#: field names: the cost engine prices them as they are instead of building a `Usage`. The
#: wire schema's ``EventUsage`` joins this set when `llmlab.schema` is imported.
NORMALISED_TYPES: set[type] = {Usage}
_INT_ONLY = {int}
_ANTHROPIC_PROVIDERS = frozenset({"anthropic", "bedrock", "vertex"})
_NORMALISED_ONLY = frozenset({"cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
                              "reasoning_tokens"})
_FIELD_NAMES = frozenset(_FIELDS)


def _as_mapping(obj: Any) -> Mapping[str, Any]:
    """A read-only key view of a dict, a pydantic model, a dataclass or a protobuf message."""
    if type(obj) is dict:
        return obj
    if hasattr(obj, "__pydantic_fields_set__"):  # openai, anthropic, google-genai usage types
        # Reading __dict__ is ten times faster than model_dump(); fields this SDK version does
        # not declare (newer server responses) live in __pydantic_extra__.
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**obj.__dict__, **extra} if extra else obj.__dict__
    if isinstance(obj, Mapping):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):  # other pydantic-like models
        result = dump()
        if isinstance(result, Mapping):
            return result
    meta = getattr(type(obj), "meta", None)
    if meta is not None and hasattr(meta, "fields"):  # proto-plus messages (google-generativeai)
        return {name: getattr(obj, name, None) for name in meta.fields}
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    raise UsageError(f"cannot read token usage from {type(obj).__name__}")


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise UsageError(f"token count must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise UsageError(f"token count must be an integer, got {value!r}")


def _get(data: Mapping[str, Any] | None, *keys: str) -> Any:
    """The first present key's value; nested details are dicts or None."""
    if not data:
        return None
    for key in keys:
        value = data.get(key)
        if value is not None:
            return value
    return None


def _sub(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return None if value is None else _as_mapping(value)


def _field(obj: Mapping[str, Any] | None, name: str) -> int:
    """An integer field of a details mapping, or 0 when the mapping or the field is missing."""
    if obj is None:
        return 0
    value = obj.get(name)
    return value if type(value) is int else _int(value)


def _details(obj: Any) -> Mapping[str, Any] | None:
    """A details object as a mapping (a model's __dict__ is read, not copied)."""
    if obj is None or type(obj) is dict:
        return obj
    return _as_mapping(obj)


_OPENAI_KEYS = {"prompt": ("prompt_tokens", "prompt_tokens_details"),
                "completion": ("completion_tokens", "completion_tokens_details"),
                "input": ("input_tokens", "input_tokens_details"),
                "output": ("output_tokens", "output_tokens_details")}


def _from_openai(d: Mapping[str, Any], input_key: str, output_key: str) -> Usage:
    # Chat Completions says prompt/completion, Responses says input/output; the details
    # objects share their field names. Runs once per call: straight-line on purpose.
    in_total, in_details = _OPENAI_KEYS[input_key]
    out_total, out_details = _OPENAI_KEYS[output_key]
    prompt = _details(d.get(in_details))
    completion = _details(d.get(out_details))
    cache_write = _field(prompt, "cache_write_tokens")
    split = _details(prompt.get("cache_write_tokens_details")) if prompt is not None else None
    long_lived = min(_field(split, "ttl_12h_tokens"), cache_write)
    # Proxies (LiteLLM, OpenRouter) pass Anthropic's server tool counts through; LiteLLM puts
    # Gemini's grounded searches in prompt_tokens_details.web_search_requests.
    tools = d.get("server_tool_use")
    searches = prompt.get("web_search_requests") if prompt is not None else None
    if tools is None and type(searches) is int and searches > 0:
        tools = {"web_search_requests": searches}
    return Usage(
        _field(d, in_total), _field(d, out_total), _field(prompt, "cached_tokens"),
        cache_write - long_lived, long_lived, _field(completion, "reasoning_tokens"),
        _field(prompt, "audio_tokens"), _field(completion, "audio_tokens"),
        _field(prompt, "image_tokens"), _field(completion, "image_tokens"),
        server_tool_use(tools) if tools is not None else NO_TOOLS,
    )


def _from_anthropic(d: Mapping[str, Any]) -> Usage:
    # Anthropic's input_tokens excludes cache reads and writes: add them back so the
    # subsets rule holds. The 5m/1h split comes from `cache_creation`, and the total from
    # `cache_creation_input_tokens` so a write is never counted twice or dropped.
    uncached = _int(d.get("input_tokens"))
    cache_read = _int(d.get("cache_read_input_tokens"))
    split = _sub(d, "cache_creation")
    write_5m = _int(_get(split, "ephemeral_5m_input_tokens"))
    write_1h = _int(_get(split, "ephemeral_1h_input_tokens"))
    total_write = _int(d.get("cache_creation_input_tokens"))
    if total_write == 0:
        total_write = write_5m + write_1h
    write_1h = min(write_1h, total_write)
    output = _int(d.get("output_tokens"))
    thinking = _int(_get(_sub(d, "output_tokens_details"), "thinking_tokens"))
    return Usage(
        input_tokens=uncached + cache_read + total_write,
        output_tokens=output,
        reasoning_tokens=min(thinking, output),
        cache_read_tokens=cache_read,
        cache_write_tokens=total_write - write_1h,
        cache_write_1h_tokens=write_1h,
        tools=server_tool_use(d.get("server_tool_use")) or NO_TOOLS,
    )


def _modality_tokens(details: Any, modality: str) -> int:
    if not details:
        return 0
    total = 0
    for item in details:
        entry = _as_mapping(item)
        name = str(_get(entry, "modality") or "").upper().rsplit(".", 1)[-1]
        if name == modality:
            total += _int(_get(entry, "token_count", "tokenCount"))
    return total


def _from_gemini(d: Mapping[str, Any]) -> Usage:
    # Gemini bills thinking tokens as output and tool-use prompt tokens as input; the
    # cached content count is already inside prompt_token_count.
    prompt = _int(_get(d, "prompt_token_count", "promptTokenCount"))
    tool_prompt = _int(_get(d, "tool_use_prompt_token_count", "toolUsePromptTokenCount"))
    candidates = _int(_get(d, "candidates_token_count", "candidatesTokenCount"))
    thoughts = _int(_get(d, "thoughts_token_count", "thoughtsTokenCount"))
    cached = _int(_get(d, "cached_content_token_count", "cachedContentTokenCount"))
    prompt_details = _get(d, "prompt_tokens_details", "promptTokensDetails")
    cache_details = _get(d, "cache_tokens_details", "cacheTokensDetails")
    audio_in = (_modality_tokens(prompt_details, "AUDIO")
                - _modality_tokens(cache_details, "AUDIO"))
    # Image models (``gemini-2.5-flash-image``) report generated images as IMAGE candidate
    # tokens, billed at the image output rate, not the text one.
    output_details = _get(d, "candidates_tokens_details", "candidatesTokensDetails")
    return Usage(
        input_tokens=prompt + tool_prompt,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
        audio_input_tokens=max(audio_in, 0),
        audio_output_tokens=_modality_tokens(output_details, "AUDIO"),
        image_output_tokens=min(_modality_tokens(output_details, "IMAGE"), candidates),
    )


def _from_normalised(d: Mapping[str, Any]) -> Usage:
    unknown = set(d) - _FIELD_NAMES - {"total_tokens", "tools"}
    if unknown:
        raise UsageError(f"unknown usage field(s): {', '.join(sorted(unknown))}")
    tools = d.get("tools")
    return Usage(**{k: _int(v) for k, v in d.items() if k in _FIELD_NAMES},
                 tools=checked_tools(tools) if tools else NO_TOOLS)
