"""Gemini wire formats of the fake provider: generateContent (plain and streamed) and errors.

Pure functions from a :class:`~llmlab.testing._fake_wire.Reply` to the bodies and stream
chunks the Gemini API sends (usage fields mapped as documented on ``FakeUsage``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmlab.testing._fake_wire import JSON, FakeUsage, Reply, new_id


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
