"""The legacy Google AI SDK (``google-generativeai``, ``import google.generativeai as genai``).

Patched: ``GenerativeModel.generate_content`` and ``generate_content_async``, plain and
``stream=True``. ``ChatSession.send_message`` (and ``send_message_async``, including its
automatic function calling) calls them once per request, so each billed request is one event.

A streamed call returns a ``GenerateContentResponse`` that has already read the first chunk
and reads the rest as the caller iterates (or calls ``resolve()``). llmlab leaves that object
as it is, the very object the SDK returned, and observes the chunks by wrapping its private
chunk iterator, so iteration, ``resolve()``, ``.text`` and ``.usage_metadata`` behave exactly
as without llmlab. Streamed usage is cumulative: the last chunk's ``usage_metadata`` is the
request's usage. The model is the response's ``model_version`` (else the GenerativeModel's
``model_name``), without its ``models/`` prefix; the provider is ``google``.

Thinking tokens: the ``UsageMetadata`` proto of google-ai-generativelanguage 0.6 (what 0.8
uses) has no ``thoughts_token_count`` (nor ``tool_use_prompt_token_count``), so the SDK drops
them while parsing, REST and gRPC alike, but ``total_token_count`` still includes them. The
tokens the total holds beyond prompt + candidates are therefore counted as thinking (output,
the usual case for Gemini 2.5 models; built-in tool-use prompt tokens cannot be told apart
and are counted the same way). When the proto does carry the fields, nothing is left over.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from llmlab._tools import gemini_tools
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import (
    AsyncStreamProxy,
    Call,
    CallSpec,
    SyncStreamProxy,
    async_wrapper,
    sync_wrapper,
)
from llmlab.integrations.google_genai import model_name, output_chars, request_view_wrapper
from llmlab.usage import Usage

__all__ = ["GoogleGenerativeAIIntegration"]


def _has(message: Any, name: str) -> bool:
    """Whether a proto-plus message has ``name`` set (unset messages read as empty defaults)."""
    try:
        return name in message
    except TypeError:  # not a proto-plus message
        return getattr(message, name, None) is not None


def _usage(message: Any) -> Usage | None:
    """The message's usage; tokens the proto cannot name are counted as thinking (see above)."""
    if not _has(message, "usage_metadata"):
        return None
    metadata = message.usage_metadata
    usage = Usage.from_any(metadata)
    total = getattr(metadata, "total_token_count", None)
    unnamed = (total - usage.input_tokens - usage.output_tokens) if isinstance(total, int) else 0
    if unnamed > 0:
        usage = dataclasses.replace(usage, output_tokens=usage.output_tokens + unnamed,
                                    reasoning_tokens=usage.reasoning_tokens + unnamed)
    # Grounding with Google Search is billed per query / grounded prompt (`llmlab._tools`).
    return usage.with_tools(gemini_tools(message))


def _model(message: Any) -> str | None:
    return model_name(message.model_version) if _has(message, "model_version") else None


def _view(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``generate_content(contents, *, stream=..., ...)`` as keywords, with the model's name."""
    contents = args[0] if args else kwargs.get("contents")
    return {**kwargs, "model": model_name(getattr(instance, "model_name", None)),
            "contents": contents}


class _Stream:
    """Raw ``protos.GenerateContentResponse`` chunks; each carries the running usage."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: Usage | None = None
        self.chars = 0

    def on_chunk(self, chunk: Any) -> bool:
        self.model = _model(chunk) or self.model
        self.usage = _usage(chunk) or self.usage  # cumulative: replace, never add
        self.chars += output_chars(getattr(chunk, "candidates", None))
        return True

    def result(self) -> tuple[str | None, Usage | None, int]:
        return self.model, self.usage, self.chars


def _read(response: Any) -> tuple[str | None, Usage | None, dict[str, Any]]:
    message = getattr(response, "_result", response)
    return _model(message), _usage(message), {}


def _adapt(response: Any, call: Call) -> Any:
    """Observe the rest of a streamed response's chunks through its own iterator."""
    if not call.kwargs.get("stream") or getattr(response, "_done", True):
        return None  # a plain response: read by _read
    iterator = response._iterator
    state = _Stream()
    call.mark_first_chunk()  # the SDK read the first chunk before returning
    for chunk in response._chunks:
        state.on_chunk(chunk)
    if hasattr(iterator, "__anext__"):
        response._iterator = AsyncStreamProxy(iterator, call, state)
    else:
        response._iterator = SyncStreamProxy(iterator, call, state)
    return response


_SPEC = CallSpec(provider=lambda instance: "google", operation="generate_content",
                 read_result=_read, adapt_result=_adapt)


class GoogleGenerativeAIIntegration(Integration):
    """Instruments the ``google-generativeai`` package (0.8)."""

    identifier: ClassVar[str] = "google_generativeai"
    module: ClassVar[str] = "google.generativeai"
    distribution: ClassVar[str] = "google-generativeai"
    min_version: ClassVar[tuple[int, ...]] = (0, 8)

    def setup_once(self) -> None:
        """Patch ``GenerativeModel.generate_content`` and ``generate_content_async``."""
        try:
            from google.generativeai.generative_models import GenerativeModel
        except ImportError as exc:
            raise DidNotEnable(f"google-generativeai layout not recognised: {exc}") from exc
        self.patch(GenerativeModel, "generate_content",
                   request_view_wrapper(sync_wrapper(_SPEC), _view))
        self.patch(GenerativeModel, "generate_content_async",
                   request_view_wrapper(async_wrapper(_SPEC), _view))

    def wrap_client(self, client: Any) -> bool:
        """Instrument one ``GenerativeModel`` instance."""
        import wrapt

        try:
            from google.generativeai.generative_models import GenerativeModel
        except ImportError:
            return False
        if not isinstance(client, GenerativeModel):
            return False
        for name, inner in (("generate_content", sync_wrapper(_SPEC)),
                            ("generate_content_async", async_wrapper(_SPEC))):
            if name not in vars(client):
                setattr(client, name, wrapt.FunctionWrapper(
                    getattr(client, name), request_view_wrapper(inner, _view)))
        return True
