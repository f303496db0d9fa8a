"""Non-token charges in :class:`llmlab.testing.FakeProvider` answers (``configure(charges=)``).

The fake's wire builders (`llmlab.testing._fake_wire`) produce plain answers; a
:class:`FakeCharges` adds, in each provider's own fields, what a real bill charges beyond
tokens: built-in tool uses, Gemini image output tokens and a provider-reported cost. Bodies
and stream events are rewritten after they are built, so every endpoint keeps its shape.

* ``web_searches`` -> OpenAI Responses ``web_search_call`` items | Anthropic
  ``usage.server_tool_use.web_search_requests`` | Gemini ``groundingMetadata.webSearchQueries``
* ``web_fetches`` -> Anthropic ``server_tool_use.web_fetch_requests``
* ``file_searches`` -> OpenAI Responses ``file_search_call`` items
* ``containers`` -> OpenAI Responses ``code_interpreter_call`` items, one per container
* ``images`` ((quality, size) each) -> OpenAI Responses ``image_generation_call`` items, and
  ``image_tool_model`` the ``image_generation`` tool's ``model`` in ``tools``
* ``maps_grounding`` -> Gemini ``groundingMetadata`` with Google Maps chunks
* ``image_output_tokens`` -> Gemini ``candidatesTokensDetails`` ``IMAGE`` entry (a part of
  the output tokens; the rest are ``TEXT``)
* ``provider_cost`` -> OpenAI chat ``usage.cost`` (OpenRouter's billed charge, a number)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmlab.testing._fake_wire import new_id

__all__ = ["FakeCharges", "charge_body", "charge_stream"]

JSON = dict[str, Any]
_PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@dataclass(frozen=True)
class FakeCharges:
    """What the fake bills beyond tokens (see the module docstring for the fields used)."""

    web_searches: int = 0
    web_fetches: int = 0
    file_searches: int = 0
    containers: int = 0
    images: tuple[tuple[str, str], ...] = ()
    image_tool_model: str | None = None
    maps_grounding: bool = False
    image_output_tokens: int = 0
    provider_cost: float | None = None


def _responses_items(c: FakeCharges) -> list[JSON]:
    items: list[JSON] = []
    for i in range(c.web_searches):
        items.append({"type": "web_search_call", "id": new_id("ws_"), "status": "completed",
                      "action": {"type": "search", "query": f"query {i}"}})
    for i in range(c.file_searches):
        items.append({"type": "file_search_call", "id": new_id("fs_"), "status": "completed",
                      "queries": [f"query {i}"], "results": None})
    for i in range(c.containers):
        items.append({"type": "code_interpreter_call", "id": new_id("ci_"), "status": "completed",
                      "code": "print(1)", "container_id": f"cntr_fake_{i}", "outputs": []})
    for quality, size in c.images:
        items.append({"type": "image_generation_call", "id": new_id("ig_"), "status": "completed",
                      "result": _PNG_1PX, "quality": quality, "size": size,
                      "output_format": "png", "background": "opaque", "revised_prompt": "p"})
    return items


def _charge_response(resp: JSON, c: FakeCharges) -> None:
    resp["output"] = [*_responses_items(c), *(resp.get("output") or [])]
    if c.images and c.image_tool_model:
        resp["tools"] = [{"type": "image_generation", "model": c.image_tool_model}]


def _charge_anthropic_usage(usage: JSON, c: FakeCharges) -> None:
    if c.web_searches or c.web_fetches:
        usage["server_tool_use"] = {"web_search_requests": c.web_searches,
                                    "web_fetch_requests": c.web_fetches}


def _charge_gemini(chunk: JSON, c: FakeCharges) -> None:
    usage = chunk.get("usageMetadata")
    if c.image_output_tokens and usage is not None:
        total = usage.get("candidatesTokenCount", 0)
        usage["candidatesTokensDetails"] = [
            {"modality": "TEXT", "tokenCount": total - c.image_output_tokens},
            {"modality": "IMAGE", "tokenCount": c.image_output_tokens}]
    meta: JSON = {}
    if c.web_searches:
        meta["webSearchQueries"] = [f"query {i}" for i in range(c.web_searches)]
        meta["groundingChunks"] = [{"web": {"uri": "https://example.com", "title": "ex"}}]
    if c.maps_grounding:
        meta["googleMapsWidgetContextToken"] = "widgetcontent/fake"
        meta.setdefault("groundingChunks", []).append(
            {"maps": {"uri": "https://maps.google.com/?cid=1", "title": "Cafe"}})
    if meta:
        for candidate in chunk.get("candidates") or []:
            candidate["groundingMetadata"] = meta


def charge_body(endpoint: str, body: Any, c: FakeCharges) -> Any:
    """A non-streamed answer body with the charges added (in place; returned)."""
    if not isinstance(body, dict):
        return body
    if endpoint == "openai.chat" and c.provider_cost is not None and body.get("usage"):
        body["usage"]["cost"] = c.provider_cost
    elif endpoint == "openai.responses":
        _charge_response(body, c)
    elif endpoint == "anthropic.messages" and body.get("usage"):
        _charge_anthropic_usage(body["usage"], c)
    elif endpoint.startswith("google.") and "candidates" in body:
        _charge_gemini(body, c)
    return body


def _rewrite_sse(event: bytes, change: Callable[[JSON], bool]) -> bytes:
    """An SSE event with its JSON ``data:`` changed when ``change`` says it applied."""
    crlf = b"\r\n" in event
    lines = event.replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data: ") and line[6:7] == b"{":
            data = json.loads(line[6:])
            if change(data):
                lines[i] = b"data: " + json.dumps(data, separators=(",", ":")).encode()
    out = b"\n".join(lines)
    return out.replace(b"\n", b"\r\n") if crlf else out


def charge_stream(endpoint: str, events: list[bytes], c: FakeCharges) -> list[bytes]:
    """Stream events with the charges added to the event that carries the final usage."""
    def change(data: JSON) -> bool:
        kind = data.get("type")
        if endpoint == "openai.chat":
            if data.get("usage") and c.provider_cost is not None:
                data["usage"]["cost"] = c.provider_cost
                return True
        elif endpoint == "openai.responses":
            if kind == "response.completed":
                _charge_response(data["response"], c)
                return True
        elif endpoint == "anthropic.messages":
            if kind == "message_delta":
                _charge_anthropic_usage(data["usage"], c)
                return True
        elif "candidates" in data:
            _charge_gemini(data, c)
            return True
        return False

    if events and events[0].startswith(b"["):  # legacy Gemini REST: a streamed JSON array
        return [_rewrite_array_item(e, c) for e in events]
    return [_rewrite_sse(e, change) for e in events]


def _rewrite_array_item(event: bytes, c: FakeCharges) -> bytes:
    head = b"[" if event.startswith(b"[") else b",\r\n" if event.startswith(b",\r\n") else b""
    rest = event[len(head):]
    if not rest.startswith(b"{"):
        return event
    data = json.loads(rest)
    _charge_gemini(data, c)
    return head + json.dumps(data).encode()
