"""Per-provider wire formats spoken by :class:`llmlab.testing._fake_provider.FakeProvider`.

Pure functions: they turn "what the fake should answer" (:class:`Reply`) into the JSON
bodies and stream events that the OpenAI, Anthropic and Google APIs send, shaped closely
enough that the real SDK clients parse them without error. Nothing here does I/O.

Every :class:`FakeUsage` number is copied *verbatim* into the provider's own field (see the
table in :class:`FakeUsage`); only totals are derived, following each provider's convention.
"""

from __future__ import annotations

import base64
import json
import struct
import time
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


# --------------------------------------------------------------------------- OpenAI


def _openai_chat_usage(u: FakeUsage) -> JSON:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "audio_tokens": u.input_audio_tokens,
            "cache_write_tokens": u.cache_creation_tokens,
        },
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": u.output_audio_tokens,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_chat(reply: Reply) -> JSON:
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_chat_usage(reply.usage),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def openai_chat_stream(reply: Reply, include_usage: bool) -> list[bytes]:
    """Chunks as the API sends them; with ``include_usage`` every chunk carries
    ``"usage": null`` and a final chunk with empty ``choices`` carries the usage."""
    base: JSON = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }
    extra: JSON = {"usage": None} if include_usage else {}

    def chunk(delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [choice], **extra})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in reply.pieces]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(sse({**base, "choices": [], "usage": _openai_chat_usage(reply.usage)}))
    events.append(sse("[DONE]"))
    return events


def _responses_usage(u: FakeUsage) -> JSON:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_creation_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def _responses_text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _responses_message(msg_id: str, text: str | None) -> JSON:
    done = text is not None
    return {
        "type": "message",
        "id": msg_id,
        "status": "completed" if done else "in_progress",
        "role": "assistant",
        "content": [_responses_text_part(text)] if text is not None else [],
    }


def _responses_envelope(reply: Reply, body: Mapping[str, Any], resp_id: str, *, done: bool) -> JSON:
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed" if done else "in_progress",
        "completed_at": int(time.time()) if done else None,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": reply.model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }


def openai_responses(reply: Reply, body: Mapping[str, Any]) -> JSON:
    resp = _responses_envelope(reply, body, new_id("resp_"), done=True)
    resp["output"] = [_responses_message(new_id("msg_"), reply.text)]
    resp["usage"] = _responses_usage(reply.usage)
    return resp


def openai_responses_stream(reply: Reply, body: Mapping[str, Any]) -> list[bytes]:
    """The full Responses event sequence, each event numbered like the real API."""
    resp_id, msg_id = new_id("resp_"), new_id("msg_")
    started = _responses_envelope(reply, body, resp_id, done=False)
    final = openai_responses(reply, body) | {"id": resp_id}
    final["output"] = [_responses_message(msg_id, reply.text)]
    where = {"item_id": msg_id, "output_index": 0, "content_index": 0}
    raw: list[JSON] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _responses_message(msg_id, None),
        },
        {"type": "response.content_part.added", **where, "part": _responses_text_part("")},
        *(
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in reply.pieces
        ),
        {"type": "response.output_text.done", **where, "text": reply.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _responses_text_part(reply.text)},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _responses_message(msg_id, reply.text),
        },
        {"type": "response.completed", "response": final},
    ]
    return [sse({**ev, "sequence_number": i}, event=ev["type"]) for i, ev in enumerate(raw)]


def openai_embeddings(reply: Reply, body: Mapping[str, Any]) -> JSON:
    """One vector per input; base64 (little-endian float32) when the SDK asks for it,
    which the openai SDK does by default and then decodes back to floats."""
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    dims = int(body.get("dimensions") or reply.embedding_dimensions)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index in range(count):
        vector = [round((index + 1) * 0.01 * (d + 1), 4) for d in range(dims)]
        encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": reply.model,
        "usage": {
            "prompt_tokens": reply.usage.input_tokens,
            "total_tokens": reply.usage.input_tokens,
        },
    }


_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str) -> JSON:
    kind, code = _OPENAI_ERROR_TYPES.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --------------------------------------------------------------------------- Anthropic


def _anthropic_usage(u: FakeUsage, output_tokens: int) -> JSON:
    usage: JSON = {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": u.cache_creation_5m_tokens,
            "ephemeral_1h_input_tokens": u.cache_creation_1h_tokens,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if u.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return usage


def _anthropic_message(reply: Reply, msg_id: str, *, done: bool) -> JSON:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [{"type": "text", "text": reply.text}] if done else [],
        "stop_reason": "end_turn" if done else None,
        "stop_sequence": None,
        # message_start reports a placeholder output count, like the real API.
        "usage": _anthropic_usage(reply.usage, reply.usage.output_tokens if done else 1),
    }


def anthropic_message(reply: Reply) -> JSON:
    return _anthropic_message(reply, new_id("msg_"), done=True)


def anthropic_stream(reply: Reply) -> list[bytes]:
    """message_start .. message_stop; message_delta carries the cumulative output count."""
    u = reply.usage
    delta_usage: JSON = {"output_tokens": u.output_tokens}
    if u.reasoning_tokens:
        delta_usage["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    raw: list[JSON] = [
        {"type": "message_start", "message": _anthropic_message(reply, new_id("msg_"), done=False)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in reply.pieces
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": delta_usage,
        },
        {"type": "message_stop"},
    ]
    return [sse(ev, event=ev["type"]) for ev in raw]


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> JSON:
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": new_id("req_"),
    }


# --------------------------------------------------------------------------- Gemini


def _gemini_usage(u: FakeUsage, candidates: int) -> JSON:
    usage: JSON = {"promptTokenCount": u.input_tokens, "candidatesTokenCount": candidates}
    # Zero counts are omitted: the real API serialises proto3 JSON without defaults.
    if u.cached_tokens:
        usage["cachedContentTokenCount"] = u.cached_tokens
    if u.tool_use_prompt_tokens:
        usage["toolUsePromptTokenCount"] = u.tool_use_prompt_tokens
    if u.reasoning_tokens:
        usage["thoughtsTokenCount"] = u.reasoning_tokens
    usage["totalTokenCount"] = u.input_tokens + candidates + u.reasoning_tokens + u.tool_use_prompt_tokens
    details = [{"modality": "TEXT", "tokenCount": u.input_tokens - u.input_audio_tokens}]
    if u.input_audio_tokens:
        details.append({"modality": "AUDIO", "tokenCount": u.input_audio_tokens})
    usage["promptTokensDetails"] = details
    return usage


def gemini_wants_function_call(body: Mapping[str, Any]) -> str | None:
    """Name of the first declared function if the request has tools and no
    ``functionResponse`` yet (i.e. it is the first leg of function calling)."""
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            if "functionResponse" in (part or {}) or "function_response" in (part or {}):
                return None
    for tool in body.get("tools") or []:
        decls = (tool or {}).get("functionDeclarations") or (tool or {}).get("function_declarations")
        if decls:
            return str(decls[0].get("name"))
    return None


def _gemini_chunk(reply: Reply, parts: list[JSON], candidates: int, finish: bool, resp_id: str) -> JSON:
    candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": _gemini_usage(reply.usage, candidates),
        "modelVersion": reply.model,
        "responseId": resp_id,
    }


def gemini_response(reply: Reply, function_call: tuple[str, Mapping[str, Any]] | None) -> JSON:
    parts: list[JSON] = (
        [{"functionCall": {"name": function_call[0], "args": dict(function_call[1])}}]
        if function_call
        else [{"text": reply.text}]
    )
    return _gemini_chunk(reply, parts, reply.usage.output_tokens, True, new_id(""))


def gemini_stream(reply: Reply, function_call: tuple[str, Mapping[str, Any]] | None) -> list[JSON]:
    """Stream chunks; each carries the running (cumulative) usage, the last the final one."""
    if function_call:
        return [gemini_response(reply, function_call)]
    resp_id, n, out = new_id(""), len(reply.pieces), reply.usage.output_tokens
    return [
        _gemini_chunk(reply, [{"text": piece}], round(out * (i + 1) / n), i == n - 1, resp_id)
        for i, piece in enumerate(reply.pieces)
    ]


_GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_status(status: int) -> str:
    """The canonical (gRPC) status name Google pairs with an HTTP status."""
    return _GOOGLE_STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def google_error(status: int, message: str) -> JSON:
    return {"error": {"code": status, "message": message, "status": google_status(status)}}
