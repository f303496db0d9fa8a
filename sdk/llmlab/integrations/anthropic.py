"""Anthropic (and Claude on Bedrock / Vertex reached through the ``anthropic`` SDK).

Patched, sync and async, on ``messages`` and ``beta.messages``: ``create`` (plain and
``stream=True``), ``parse`` and the ``stream()`` helper. ``parse`` and ``stream()`` post
directly instead of calling ``create``, so each is patched on its own. ``with_raw_response``
and ``with_streaming_response`` call the same patched methods and are costed too.

Streams report usage in two places: ``message_start`` carries the input and cache counts, and
``message_delta`` carries CUMULATIVE counts, which replace the earlier ones and are never
added (openllmetry #4377). ``stream()`` returns a ``MessageStreamManager``; llmlab wraps it,
and when it is entered puts a recording proxy around the raw event stream the real
``MessageStream`` reads. So ``text_stream``, ``get_final_message()``, ``get_final_text()``,
``until_done()``, iteration and ``close()`` keep working unchanged, and the call is recorded
exactly once however the stream ends: exhausted, broken off, closed, the ``with`` block left,
or dropped and garbage-collected. The usage recorded is the same the SDK accumulates into
``current_message_snapshot``, from the same events. A stream that ends before its final
``message_delta`` is recorded as estimated (``cancelled`` if closed early).

The usage object's ``service_tier`` (``standard`` / ``priority`` / ``batch``) and ``speed``
(``fast`` prices as the ``fast`` tier) set the event's service tier, and ``inference_geo``
(``us``) is passed as the region, so regional multipliers apply.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import wrapt

from llmlab._tracker import capture_internal_exceptions
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import (
    AsyncStreamProxy,
    Call,
    CallSpec,
    SyncStreamProxy,
    async_wrapper,
    sync_wrapper,
)
from llmlab.usage import Usage

__all__ = ["AnthropicIntegration"]

#: Client class names (anywhere in the MRO) → provider id; optional deps are never imported.
_PROVIDER_MARKERS = (("Bedrock", "bedrock"), ("Vertex", "vertex"), ("GoogleCloud", "vertex"))


def _provider(resource: Any) -> str:
    client = getattr(resource, "_client", None)
    if client is None:
        return "anthropic"
    for klass in type(client).__mro__:
        for marker, provider in _PROVIDER_MARKERS:
            if marker in klass.__name__:
                return provider
    return "anthropic"


def _fields(obj: Any) -> dict[str, Any]:
    """A usage object (or dict) as a new plain dict (nested objects are kept as they are)."""
    if obj is None:
        return {}
    if hasattr(obj, "__pydantic_fields_set__"):  # the SDK's models: a copy of their __dict__
        # is ten times faster than model_dump(); fields this SDK version does not declare
        # (newer server responses) live in __pydantic_extra__.
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**obj.__dict__, **extra} if extra else dict(obj.__dict__)
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        data = dump()
        if isinstance(data, Mapping):
            return dict(data)
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``service_tier`` / ``region`` for the tracker from a usage object's fields."""
    extra: dict[str, Any] = {}
    tier = fields.get("service_tier")
    if fields.get("speed") == "fast":
        extra["service_tier"] = "fast"
    elif isinstance(tier, str) and tier:
        extra["service_tier"] = tier
    geo = fields.get("inference_geo")
    if isinstance(geo, str) and geo:
        extra["region"] = geo
    return extra


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _read(result: Any) -> tuple[str | None, dict[str, Any] | None, dict[str, Any]]:
    """(model, usage, extra) of a ``Message`` (or its JSON body). The usage is its fields as
    a dict, normalised by the tracker (on the worker thread when nothing needs it now)."""
    model = _get(result, "model")
    usage = _get(result, "usage")
    if usage is None:
        return model if isinstance(model, str) else None, None, {}
    fields = _fields(usage)
    return model if isinstance(model, str) else None, fields, _extra(fields)


class _MessageStream:
    """Raw Messages stream events: model and usage from ``message_start``, then the
    cumulative counts of ``message_delta`` replace them (exactly as the SDK's snapshot)."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.fields: dict[str, Any] = {}
        self.final = False
        self.chars = 0

    def on_chunk(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = getattr(event, "message", None)
            self.model = getattr(message, "model", None) or self.model
            self.fields = _fields(getattr(message, "usage", None))
        elif kind == "message_delta":
            usage = getattr(event, "usage", None)
            if usage is not None:
                # Cumulative totals: overwrite what message_start said, never add to it.
                self.fields.update({k: v for k, v in _fields(usage).items() if v is not None})
                self.final = True
        elif kind == "content_block_delta":
            delta = getattr(event, "delta", None)
            for name in ("text", "partial_json", "thinking"):
                value = getattr(delta, name, None)
                if isinstance(value, str):
                    self.chars += len(value)
        return True

    def result(self) -> tuple[str | None, Usage | None, int]:
        usage = Usage.from_any(self.fields, "anthropic") if self.final else None
        return self.model, usage, self.chars

    def extra(self) -> dict[str, Any]:
        return _extra(self.fields)


def _wrap_stream(stream: Any, call: Call) -> Any:
    if hasattr(stream, "__aiter__") and not hasattr(stream, "__next__"):
        return AsyncStreamProxy(stream, call, _MessageStream())
    return SyncStreamProxy(stream, call, _MessageStream())


def _instrument_message_stream(message_stream: Any, call: Call) -> None:
    """Put a recording proxy around the raw events a (Beta)(Async)MessageStream reads."""
    with capture_internal_exceptions():
        raw = message_stream._raw_stream
        if not isinstance(raw, (SyncStreamProxy, AsyncStreamProxy)):
            message_stream._raw_stream = _wrap_stream(raw, call)


class _StreamManagerProxy(wrapt.ObjectProxy[Any]):
    """A ``(Beta)MessageStreamManager``: the request is made, and timed, on ``__enter__``."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call

    def __enter__(self) -> Any:
        self._self_call.started = time.perf_counter()
        try:
            message_stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            self._self_call.fail(exc, stream=True)
            raise
        _instrument_message_stream(message_stream, self._self_call)
        return message_stream

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)


class _AsyncStreamManagerProxy(wrapt.ObjectProxy[Any]):
    """A ``(Beta)AsyncMessageStreamManager``: the request is awaited on ``__aenter__``."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call

    async def __aenter__(self) -> Any:
        self._self_call.started = time.perf_counter()
        try:
            message_stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            self._self_call.fail(exc, stream=True)
            raise
        _instrument_message_stream(message_stream, self._self_call)
        return message_stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)


def _adapt_manager(result: Any, call: Call) -> Any:
    if hasattr(result, "__aenter__"):
        return _AsyncStreamManagerProxy(result, call)
    if hasattr(result, "__enter__"):
        return _StreamManagerProxy(result, call)
    return None


def _adapt_raw(result: Any, call: Call, spec: CallSpec) -> Any:
    """Cost ``with_raw_response`` / ``with_streaming_response`` results; streams and
    unread bodies when they are parsed."""
    parse = getattr(result, "parse", None)
    http_response = getattr(result, "http_response", None)
    if parse is None or http_response is None:
        if spec.is_stream(call.kwargs) and hasattr(result, "response"):
            return _wrap_stream(result, call)  # a bare Stream / AsyncStream
        return None
    stream = spec.is_stream(call.kwargs)
    if not stream and http_response.is_closed:
        # ``with_raw_response``: the body is already read. Cost it from the JSON, leaving the
        # caller's ``parse()`` (and its cache) untouched.
        model, usage, extra = _read(http_response.json())
        call.finish(model, usage, **extra)
        return result

    def settle(parsed: Any) -> Any:
        adapted = parsed
        with capture_internal_exceptions():
            if stream:
                adapted = _wrap_stream(parsed, call)
            else:
                model, usage, extra = _read(parsed)
                call.finish(model, usage, **extra)
        return adapted

    if inspect.iscoroutinefunction(parse):
        async def async_parse(*args: Any, **kwargs: Any) -> Any:
            parsed = await parse(*args, **kwargs)
            return settle(parsed) if not kwargs.get("to") else parsed

        result.parse = async_parse
        return result

    def sync_parse(*args: Any, **kwargs: Any) -> Any:
        parsed = parse(*args, **kwargs)
        return settle(parsed) if not kwargs.get("to") else parsed

    result.parse = sync_parse
    return result


#: The SDK's raw response types (``with_raw_response`` / ``with_streaming_response``), which
#: `_adapt_raw` wraps; any other plain result is a ``Message`` and may take the fast path.
_RAW_RESPONSE_TYPES = frozenset({
    "APIResponse", "AsyncAPIResponse", "LegacyAPIResponse", "BinaryAPIResponse",
    "AsyncBinaryAPIResponse", "StreamedBinaryAPIResponse", "AsyncStreamedBinaryAPIResponse"})


def _spec(operation: str) -> CallSpec:
    spec = CallSpec(provider=_provider, operation=operation, read_result=_read,
                    adapted_types=_RAW_RESPONSE_TYPES)
    spec.adapt_result = lambda result, call: _adapt_raw(result, call, spec)
    return spec


def _stream_spec(operation: str) -> CallSpec:
    return CallSpec(provider=_provider, operation=operation, read_result=_read,
                    is_stream=lambda kwargs: True, adapt_result=_adapt_manager)


class AnthropicIntegration(Integration):
    """Instruments the ``anthropic`` package (2.x)."""

    identifier: ClassVar[str] = "anthropic"
    module: ClassVar[str] = "anthropic"
    distribution: ClassVar[str] = "anthropic"
    min_version: ClassVar[tuple[int, ...]] = (2, 0)

    def _targets(self) -> list[tuple[Any, str, CallSpec, bool]]:
        try:
            from anthropic.resources.beta.messages.messages import AsyncMessages as AsyncBeta
            from anthropic.resources.beta.messages.messages import Messages as Beta
            from anthropic.resources.messages.messages import AsyncMessages, Messages
        except ImportError as exc:
            raise DidNotEnable(f"anthropic layout not recognised: {exc}") from exc
        create, parse, stream = _spec("messages"), _spec("messages.parse"), _stream_spec(
            "messages.stream")
        targets: list[tuple[Any, str, CallSpec, bool]] = []
        for sync_cls, async_cls in ((Messages, AsyncMessages), (Beta, AsyncBeta)):
            targets += [(sync_cls, "create", create, False), (async_cls, "create", create, True),
                        # AsyncMessages.stream is a plain function returning a manager.
                        (sync_cls, "stream", stream, False), (async_cls, "stream", stream, False)]
            if "parse" in vars(sync_cls):  # structured outputs, in recent versions
                targets += [(sync_cls, "parse", parse, False), (async_cls, "parse", parse, True)]
        return targets


    def wrap_client(self, client: Any) -> bool:
        """Instrument one ``Anthropic`` / ``AsyncAnthropic`` (or Bedrock / Vertex) instance."""
        if not type(client).__module__.startswith("anthropic"):
            return False
        messages = getattr(client, "messages", None)
        beta = getattr(getattr(client, "beta", None), "messages", None)
        if messages is None:
            return False
        for owner, name, spec, is_async in self._targets():
            for resource in (messages, beta):
                if resource is None or not isinstance(resource, owner) or name in vars(resource):
                    continue
                wrapper = async_wrapper(spec) if is_async else sync_wrapper(spec)
                setattr(resource, name, wrapt.FunctionWrapper(getattr(resource, name), wrapper))
        return True
