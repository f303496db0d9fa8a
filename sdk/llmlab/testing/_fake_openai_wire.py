"""OpenAI wire formats of the fake provider: chat, Responses, embeddings and errors.

Pure functions from a :class:`~llmlab.testing._fake_wire.Reply` to the bodies and SSE
events the OpenAI API sends (usage fields mapped as documented on ``FakeUsage``).
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Mapping
from typing import Any

from llmlab.testing._fake_wire import JSON, FakeUsage, Reply, new_id, sse


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
