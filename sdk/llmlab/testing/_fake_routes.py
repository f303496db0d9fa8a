"""Which endpoint a fake-provider request hits, and the :class:`Reply` it gets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmlab.testing import _fake_gemini_wire as gemini_wire
from llmlab.testing import _fake_media
from llmlab.testing import _fake_wire as wire
from llmlab.testing._fake_settings import FakeSettings, Provider

__all__ = ["build_reply", "route"]


_GEMINI_ROUTE = re.compile(  # Gemini API and Vertex AI (projects/…/publishers/google/…) paths
    r"^/(?:v1beta1|v1beta|v1|v1alpha)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"(?P<model>(?:models|tunedModels)/[^:/]+)"
    r":(?P<method>generateContent|streamGenerateContent|countTokens)$"
)
_OPENAI_ROUTES = {
    "/chat/completions": "openai.chat",
    "/responses": "openai.responses",
    "/embeddings": "openai.embeddings",
    **_fake_media.ROUTES,  # images and audio (#15)
}
_ANTHROPIC_ROUTES = {
    "/v1/messages": "anthropic.messages",
    "/v1/messages/count_tokens": "anthropic.count_tokens",
}
_GEMINI_METHODS = {
    "generateContent": "google.generate_content",
    "streamGenerateContent": "google.stream_generate_content",
    "countTokens": "google.count_tokens",
}


def route(path: str) -> tuple[Provider | None, str | None, str | None]:
    """Map a path to (provider, endpoint, model-from-path)."""
    if (media := _fake_media.route(path)) is not None:  # Imagen (#15)
        return media
    if path in _ANTHROPIC_ROUTES:
        return "anthropic", _ANTHROPIC_ROUTES[path], None
    # Accept OpenAI paths with or without /v1 so a base_url missing "/v1" still works.
    openai_path = path.removeprefix("/v1")
    if openai_path in _OPENAI_ROUTES:
        return "openai", _OPENAI_ROUTES[openai_path], None
    match = _GEMINI_ROUTE.match(path)
    if match:
        return "google", _GEMINI_METHODS[match["method"]], match["model"].split("/", 1)[1]
    if path.startswith("/v1beta") or ":" in path:
        return "google", None, None
    return ("anthropic" if path.startswith("/v1/messages") else "openai"), None, None


def build_reply(
    endpoint: str, data: Mapping[str, Any], path_model: str | None, settings: FakeSettings
) -> tuple[wire.Reply, tuple[str, Mapping[str, Any]] | None]:
    """The answer to one request, plus the Gemini function call to make (if any)."""
    model = settings.model or path_model or str(data.get("model") or "fake-model")
    text = settings.text
    schema = wire.request_schema(endpoint, data)
    if schema is not None:
        text = wire.structured_text(text, schema)
    reply = wire.Reply(
        model=model,
        text=text,
        usage=settings.usage,
        pieces=wire.split_text(text, settings.stream_chunks),
        embedding_dimensions=settings.embedding_dimensions,
    )
    call = None
    declared = gemini_wire.gemini_wants_function_call(data) if settings.function_call else None
    if settings.function_call and declared:
        call = (settings.function_call.name or declared, settings.function_call.args)
    return reply, call
