"""What :class:`llmlab.testing.FakeProvider` answers, and the helpers its wire formats share.

:class:`FakeUsage`, :class:`FakeFunctionCall` and :class:`Reply` describe an answer; the
per-provider modules (``_fake_openai_wire``, ``_fake_anthropic_wire``, ``_fake_gemini_wire``)
turn a :class:`Reply` into the JSON bodies and stream events those APIs send, shaped closely
enough that the real SDK clients parse them without error. Nothing here does I/O.

Every :class:`FakeUsage` number is copied *verbatim* into the provider's own field (see the
table in :class:`FakeUsage`); only totals are derived, following each provider's convention.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeFunctionCall", "FakeUsage", "Reply"]


JSON = dict[str, Any]


@dataclass(frozen=True)
class FakeUsage:
    """Token counts the fake reports; each is copied verbatim into the provider's field.

    Field -> OpenAI chat / Responses | Anthropic messages | Gemini ``usageMetadata``:

    * ``input_tokens`` -> prompt_tokens / input_tokens | input_tokens | promptTokenCount
    * ``output_tokens`` -> completion_tokens / output_tokens | output_tokens (cumulative in
      message_delta) | candidatesTokenCount (running total in streams)
    * ``cached_tokens`` -> ``*_tokens_details.cached_tokens`` | cache_read_input_tokens |
      cachedContentTokenCount
    * ``cache_creation_5m_tokens`` / ``cache_creation_1h_tokens`` -> their sum in
      ``*_tokens_details.cache_write_tokens`` | cache_creation.ephemeral_5m/1h_input_tokens,
      and their sum in cache_creation_input_tokens | -
    * ``reasoning_tokens`` -> ``*_tokens_details.reasoning_tokens`` |
      output_tokens_details.thinking_tokens | thoughtsTokenCount
    * ``input_audio_tokens`` -> prompt_tokens_details.audio_tokens | - |
      promptTokensDetails ``AUDIO`` entry
    * ``output_audio_tokens`` -> completion_tokens_details.audio_tokens | - | -
    * ``tool_use_prompt_tokens`` -> - | - | toolUsePromptTokenCount

    Totals: OpenAI ``total_tokens = input + output``; Gemini ``totalTokenCount = prompt +
    candidates + thoughts + toolUsePrompt``; embeddings report ``input_tokens`` as both
    prompt and total. Like the real APIs, OpenAI and Gemini counts are inclusive (cached is
    part of prompt) while Anthropic ``input_tokens`` excludes cache reads/writes: choose
    numbers accordingly. Zero Gemini optional counts and a zero Anthropic thinking count are
    omitted, as the real APIs do.
    """

    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    cache_creation_5m_tokens: int = 0
    cache_creation_1h_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    tool_use_prompt_tokens: int = 0

    @property
    def cache_creation_tokens(self) -> int:
        """All cache-write tokens (5 minute + 1 hour)."""
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens


@dataclass(frozen=True)
class FakeFunctionCall:
    """Gemini only: answer a request that declares tools with this ``functionCall`` first.

    ``name`` defaults to the first function declared in the request; the follow-up request
    (the one carrying a ``functionResponse``) is answered with the configured text.
    """

    args: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class Reply:
    """One answer: the model name to report, the full text, and its stream pieces."""

    model: str
    text: str
    usage: FakeUsage
    pieces: tuple[str, ...]
    embedding_dimensions: int = 8


def split_text(text: str, chunks: int) -> tuple[str, ...]:
    """Split ``text`` into ``chunks`` non-empty pieces (fewer if the text is shorter)."""
    n = max(1, min(chunks, len(text)))
    bounds = [round(i * len(text) / n) for i in range(n + 1)]
    return tuple(text[bounds[i] : bounds[i + 1]] for i in range(n))


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def sse(data: Any, event: str | None = None) -> bytes:
    """Encode one server-sent event (``event:`` line only when given)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


# --------------------------------------------------------------------------- structured output


def example_for_schema(schema: Any, defs: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A minimal JSON value valid for a (pydantic-generated) JSON schema.

    Used when a structured-output request arrives and the configured text is not JSON, so
    ``.parse()`` helpers succeed without each test hand-writing matching JSON.
    """
    if not isinstance(schema, Mapping) or depth > 20:
        return None
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example_for_schema(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1]), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props: Mapping[str, Any] = schema.get("properties", {})
        return {name: example_for_schema(sub, defs, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind == "string":
        return "example"
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None


def structured_text(text: str, schema: Any) -> str:
    """``text`` if it is already JSON, else a minimal instance of ``schema``."""
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(example_for_schema(schema))
    return text


def request_schema(provider_endpoint: str, body: Mapping[str, Any]) -> Any | None:
    """The JSON schema a structured-output request asks for, or ``None``."""
    if provider_endpoint == "openai.chat":
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return (fmt.get("json_schema") or {}).get("schema", {})
        return {"type": "object"} if fmt.get("type") == "json_object" else None
    if provider_endpoint == "openai.responses":
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            return fmt.get("schema", {})
        return {"type": "object"} if fmt.get("type") == "json_object" else None
    if provider_endpoint == "anthropic.messages":
        fmt = (body.get("output_config") or {}).get("format") or body.get("output_format") or {}
        return fmt.get("schema", {}) if fmt.get("type") == "json_schema" else None
    return None
