"""Google Gen AI SDK (``google-genai``): the Gemini API and Vertex AI.

Patched, sync and async (``client.models`` and ``client.aio.models``): the per-request methods
``Models._generate_content`` and ``Models._generate_content_stream``, below the public
``generate_content`` / ``generate_content_stream``. The public methods may send several billed
requests for one call: automatic function calling (AFC) sends one per round trip, and
automatic continuation one per hop, yet the response they return carries only the last
request's usage (or, for continued streams, a merge of the hops). Patching the per-request
layer records every billed request exactly once, each with its own usage. Chats
(``client.chats``) go through the same methods. If a future release drops the private
methods, the public ones are patched instead (one event per public call) and a note is logged.

Streamed usage is cumulative: every chunk carries the running total, so the last chunk's
``usage_metadata`` is the request's usage; it is never summed. The model is the response's
``model_version`` (else the requested model), without a ``models/`` prefix. The provider is
``google`` for the Gemini API and ``vertex`` for a client configured for Vertex AI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import wrapt

from llmlab._tools import gemini_tools
from llmlab._tracker import capture_internal_exceptions
from llmlab.errors import UsageError
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import (
    Call,
    CallSpec,
    UsageSource,
    async_wrapper,
    sync_wrapper,
)
from llmlab.usage import Usage

__all__ = ["GoogleGenAIIntegration", "model_name", "request_view_wrapper", "with_grounding"]

logger = logging.getLogger("llmlab")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def model_name(model: Any) -> str | None:
    """A Gemini model name without its resource path (``models/gemini-2.5-flash`` and
    ``projects/p/locations/l/publishers/google/models/gemini-2.5-flash`` → ``gemini-2.5-flash``);
    tuned models (``tunedModels/…``) are kept whole."""
    if not isinstance(model, str) or not model:
        return None
    if "models/" in model and not model.startswith("tunedModels/"):
        return model.rsplit("models/", 1)[1] or model
    return model


def request_view_wrapper(inner: Wrapper,
                         view: Callable[[Any, tuple[Any, ...], dict[str, Any]], dict[str, Any]],
                         ) -> Wrapper:
    """A wrapt wrapper that lets ``inner`` (a `sync_wrapper` / `async_wrapper`) read a
    normalised view of the request (``model`` without its prefix, positional arguments by name)
    while the provider method still receives exactly the caller's arguments."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        seen: dict[str, Any] | None = None
        with capture_internal_exceptions():
            seen = view(instance, args, kwargs)
        if seen is None:
            return inner(wrapped, instance, args, kwargs)

        def original(*_args: Any, **_kwargs: Any) -> Any:
            return wrapped(*args, **kwargs)

        return inner(original, instance, (), seen)

    return wrapper


def _view(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "model": model_name(kwargs.get("model"))}


def _provider(models: Any) -> str:
    api_client = getattr(models, "_api_client", None)
    return "vertex" if getattr(api_client, "vertexai", False) else "google"


def _http_body(result: Any) -> dict[str, Any] | None:
    """The JSON body of a ``should_return_http_response`` result (usage is only there)."""
    http = getattr(result, "sdk_http_response", None)
    body = getattr(http, "body", None)
    if not body:
        return None
    data = json.loads(body)
    return data if isinstance(data, dict) else None


def _read(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    """(model, usage, extra) of a response; the usage is the SDK's own ``usage_metadata``
    (or its JSON), normalised by the tracker (on the worker thread when nothing needs it
    now)."""
    model = getattr(result, "model_version", None)
    usage_metadata = getattr(result, "usage_metadata", None)
    if usage_metadata is None:
        body = _http_body(result)
        if body is not None:
            usage_metadata = body.get("usageMetadata")
            model = model or body.get("modelVersion")
            result = body
    return model_name(model), with_grounding(result, usage_metadata), {}


def with_grounding(response: Any, usage: UsageSource | None) -> UsageSource | None:
    """The usage plus the response's grounding tool uses (Google Search queries, Google
    Maps), which Gemini reports in each candidate's ``grounding_metadata``, not in usage."""
    if usage is None:
        return None
    tools = gemini_tools(response)
    if not tools:
        return usage  # the common case: normalised later, by the tracker
    try:
        return Usage.from_any(usage).with_tools(tools)
    except UsageError:
        return usage  # malformed: left to the tracker, which reports it once


def output_chars(candidates: Any) -> int:
    """Characters of generated text and function-call arguments in a chunk's candidates."""
    chars = 0
    for candidate in candidates or ():
        content = getattr(candidate, "content", None)
        for part in getattr(content, "parts", None) or ():
            text = getattr(part, "text", None)
            if isinstance(text, str):
                chars += len(text)
            function_call = getattr(part, "function_call", None)
            args = getattr(function_call, "args", None) if function_call is not None else None
            if args:
                chars += len(json.dumps(dict(args), default=str))
    return chars


class _Stream:
    """Gemini stream chunks: every chunk's usage is the running total, so keep the latest."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: UsageSource | None = None
        self.grounded: Any = None
        self.chars = 0

    def on_chunk(self, chunk: Any) -> bool:
        self.model = model_name(getattr(chunk, "model_version", None)) or self.model
        usage_metadata = getattr(chunk, "usage_metadata", None)
        if usage_metadata is not None:
            # Cumulative: the latest replaces, never adds; normalised once, by the tracker.
            self.usage = usage_metadata
        candidates = getattr(chunk, "candidates", None)
        self.chars += output_chars(candidates)
        if candidates and any(getattr(c, "grounding_metadata", None) for c in candidates):
            self.grounded = chunk  # grounding arrives with the last chunks; keep the latest
        return True

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        usage = self.usage
        if self.grounded is not None:
            usage = with_grounding(self.grounded, usage)
        return self.model, usage, self.chars


def _stream_state(call: Call) -> _Stream:
    return _Stream()


_PLAIN = CallSpec(provider=_provider, operation="generate_content", read_result=_read,
                  is_stream=lambda kwargs: False)
_STREAM = CallSpec(provider=_provider, operation="generate_content", read_result=_read,
                   is_stream=lambda kwargs: True, new_stream_state=_stream_state)

#: (private per-request method, public fallback, spec)
_METHODS = (("_generate_content", "generate_content", _PLAIN),
            ("_generate_content_stream", "generate_content_stream", _STREAM))


def _wrapper(spec: CallSpec, is_async: bool) -> Wrapper:
    inner = async_wrapper(spec) if is_async else sync_wrapper(spec)
    return request_view_wrapper(inner, _view)


class GoogleGenAIIntegration(Integration):
    """Instruments the ``google-genai`` package (``from google import genai``)."""

    identifier: ClassVar[str] = "google_genai"
    module: ClassVar[str] = "google.genai"
    distribution: ClassVar[str] = "google-genai"
    min_version: ClassVar[tuple[int, ...]] = (1, 0)

    _noted_fallback: ClassVar[bool] = False

    @classmethod
    def _targets(cls) -> list[tuple[Any, str, CallSpec, bool]]:
        try:
            from google.genai.models import AsyncModels, Models
        except ImportError as exc:
            raise DidNotEnable(f"google-genai layout not recognised: {exc}") from exc
        targets: list[tuple[Any, str, CallSpec, bool]] = []
        for owner, is_async in ((Models, False), (AsyncModels, True)):
            private = all(name in vars(owner) for name, _, _ in _METHODS)
            if not private and not cls._noted_fallback:
                cls._noted_fallback = True
                logger.info("llmlab: google-genai %s has no per-request methods; patching the "
                            "public ones (automatic function calling and continuation are "
                            "then counted once per call, with the last request's usage)",
                            owner.__name__)
            for private_name, public_name, spec in _METHODS:
                targets.append((owner, private_name if private else public_name, spec, is_async))
        return targets

    def _wrapper(self, spec: Any, is_async: bool) -> Any:
        """The common wrapper, reading the request through `_view` (model without prefix)."""
        return _wrapper(spec, is_async)

    def wrap_client(self, client: Any) -> bool:
        """Instrument one ``genai.Client`` (its ``models`` and ``aio.models``), or one
        ``client.aio`` (``AsyncClient``, its ``models``)."""
        try:
            from google.genai.client import AsyncClient, Client
        except ImportError:
            return False
        if isinstance(client, Client):
            resources = {False: client.models, True: client.aio.models}
        elif isinstance(client, AsyncClient):
            resources = {True: client.models}
        else:
            return False
        for owner, name, spec, is_async in self._targets():
            resource = resources.get(is_async)
            if not isinstance(resource, owner) or name in vars(resource):
                continue  # another type, not asked for, or already wrapped
            setattr(resource, name,
                    wrapt.FunctionWrapper(getattr(resource, name), _wrapper(spec, is_async)))
        return True
