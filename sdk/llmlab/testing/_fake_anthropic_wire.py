"""Anthropic wire formats of the fake provider: messages (plain and streamed) and errors.

Pure functions from a :class:`~llmlab.testing._fake_wire.Reply` to the bodies and SSE
events the Anthropic API sends (usage fields mapped as documented on ``FakeUsage``).
"""

from __future__ import annotations

from llmlab.testing._fake_wire import JSON, FakeUsage, Reply, new_id, sse


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
