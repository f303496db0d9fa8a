"""OpenAI (and OpenAI-compatible providers reached through the ``openai`` SDK).

Patched, sync and async: ``chat.completions.create`` and ``parse`` (``parse`` does not go
through ``create``; the ``stream()`` helpers do), ``responses.create`` and ``parse`` (and so
``responses.stream``), ``embeddings.create``. ``with_raw_response`` and
``with_streaming_response`` call the same patched methods and are costed when parsed.

Streaming chat completions only report usage when asked with
``stream_options={"include_usage": True}``. When the caller did not ask, llmlab asks (for
OpenAI and Azure hosts, `init(openai_stream_usage=False)` to disable) and hides the extra
usage-only chunk, so the caller iterates exactly what it would have without llmlab.

A client pointed at a regional OpenAI host (``https://eu.api.openai.com/v1``, ``us.``) is
billed OpenAI's regional-processing uplift: its calls carry that region (``eu``, ``us``).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from llmlab import _consts
from llmlab._tracker import capture_internal_exceptions, get_tracker
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import (
    Call,
    CallSpec,
    UsageSource,
    _handle_result,
)
from llmlab.integrations._openai_usage import provider_cost, with_tools

__all__ = ["OpenAIIntegration", "provider_for_base_url", "region_for_base_url"]

_RAW_RESPONSE_TYPES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})
_NO_EXTRA: dict[str, Any] = {}  # read-only: `Call.finish` takes it as **extra
#: Hosts where llmlab may add ``stream_options.include_usage`` to a streamed chat request.
_INJECT_USAGE_PROVIDERS = frozenset({"openai", "azure"})


def provider_for_base_url(host: str) -> str:
    """The provider id of an OpenAI-compatible host (``api.groq.com`` → ``groq``)."""
    host = host.lower()
    for suffix, provider in _consts.OPENAI_COMPATIBLE_HOSTS.items():
        if host == suffix or host.endswith("." + suffix):
            return provider
    return "openai"


def region_for_base_url(host: str) -> str | None:
    """The OpenAI data-residency region of a host (``eu.api.openai.com`` → ``eu``), or None."""
    label, _, rest = host.lower().partition(".")
    return label if rest == "api.openai.com" and label.isalpha() else None


#: id(base_url object) → (that object, provider, region): parsing the host on every call is
#: not free.
_PROVIDER_BY_URL: dict[int, tuple[Any, str, str | None]] = {}
_NO_CLIENT = (None, "openai", None)
_NO_DICT: dict[str, Any] = {}


def _host_info(resource: Any) -> tuple[Any, str, str | None]:
    client = getattr(resource, "_client", None)
    if client is None:
        return _NO_CLIENT
    # openai's `base_url` (and, since 3.x, `_base_url`) properties run an import on every
    # access: read the attribute they return from the instance (3.x, then 1.x/2.x).
    stored = getattr(client, "__dict__", _NO_DICT)
    base_url = (stored.get("_configured_base_url") or stored.get("_base_url")
                or getattr(client, "base_url", None))
    cached = _PROVIDER_BY_URL.get(id(base_url))
    if cached is not None and cached[0] is base_url:
        return cached
    host = getattr(base_url, "host", None)
    region = None
    if type(client).__name__.startswith(("AzureOpenAI", "AsyncAzureOpenAI")):
        provider = "azure"
    else:
        provider = provider_for_base_url(str(host)) if host else "openai"
        region = region_for_base_url(str(host)) if host and provider == "openai" else None
    if len(_PROVIDER_BY_URL) > 1000:
        _PROVIDER_BY_URL.clear()
    info = _PROVIDER_BY_URL[id(base_url)] = (base_url, provider, region)
    return info


def _provider(resource: Any) -> str:
    return _host_info(resource)[1]


def _region(resource: Any) -> str | None:
    """The data-residency region of a resource's client (`CallSpec.region`)."""
    return _host_info(resource)[2]


def _read(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    # The usage object is normalised when the event is built (see `UsageSource`).
    tier = getattr(result, "service_tier", None)
    usage = getattr(result, "usage", None)
    extra = {"service_tier": tier} if isinstance(tier, str) else _NO_EXTRA
    if getattr(usage, "__pydantic_extra__", None):  # undeclared fields: OpenRouter's cost?
        reported = provider_cost(usage)
        if reported is not None:
            extra = {**extra, "provider_cost": reported}
    return getattr(result, "model", None), usage, extra


def _read_response(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    model, usage, extra = _read(result)
    return model, with_tools(result, usage), extra


def _tool_call_chars(tool_calls: Any) -> int:
    """Characters of function-call arguments in a chunk's tool-call deltas."""
    return sum(len(getattr(getattr(call, "function", None), "arguments", None) or "")
               for call in tool_calls)


class _ChatStream:
    """Chat Completions chunks: model, usage from the final chunk, text length."""

    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide_usage_chunk = hide_usage_chunk
        self.model: str | None = None
        self.usage: UsageSource | None = None
        self.chars = 0

    def extra(self) -> dict[str, Any]:
        reported = provider_cost(self.usage)
        return {"provider_cost": reported} if reported is not None else _NO_EXTRA

    def on_chunk(self, chunk: Any) -> bool:
        # Per streamed token: plain attribute reads of the SDK's chunk models; anything
        # shaped otherwise takes the careful path.
        try:
            model, usage, choices = chunk.model, chunk.usage, chunk.choices
            chars = 0
            for choice in choices or ():
                delta = choice.delta
                content = delta.content
                if content:
                    chars += len(content)
                if delta.tool_calls:
                    chars += _tool_call_chars(delta.tool_calls)
        except AttributeError:
            return self._on_other_chunk(chunk)
        if model:
            self.model = model
        if usage is not None:
            self.usage = usage
        self.chars += chars
        # The usage-only chunk llmlab asked for has no choices: the caller never sees it.
        return not (self.hide_usage_chunk and usage is not None and not choices)

    def _on_other_chunk(self, chunk: Any) -> bool:
        self.model = getattr(chunk, "model", None) or self.model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        choices = getattr(chunk, "choices", None) or ()
        for choice in choices:
            delta = getattr(choice, "delta", None)
            content = getattr(delta, "content", None)
            if content:
                self.chars += len(content)
            self.chars += _tool_call_chars(getattr(delta, "tool_calls", None) or ())
        return not (self.hide_usage_chunk and usage is not None and not choices)

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        return self.model, self.usage, self.chars


class _ResponsesStream:
    """Responses API events: the final response carries model and usage."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: UsageSource | None = None
        self.response: Any = None
        self.chars = 0

    def on_chunk(self, event: Any) -> bool:
        kind = getattr(event, "type", "")
        if kind.endswith(".delta"):
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self.chars += len(delta)
        response = getattr(event, "response", None)
        if response is not None:
            self.model = getattr(response, "model", None) or self.model
            usage = getattr(response, "usage", None)
            if usage is not None:
                self.usage = usage
                self.response = response
        return True

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        usage = self.usage
        if self.response is not None:
            usage = with_tools(self.response, usage)
        return self.model, usage, self.chars


def _injects_usage(provider: str, kwargs: dict[str, Any]) -> bool:
    """Whether llmlab adds ``include_usage`` to this (original) request."""
    if not kwargs.get("stream") or not get_tracker().options.openai_stream_usage:
        return False
    options = kwargs.get("stream_options")
    if isinstance(options, dict) and "include_usage" in options:
        return False
    return provider in _INJECT_USAGE_PROVIDERS


def _prepare_chat_stream(instance: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    if _injects_usage(_provider(instance), kwargs):
        options = kwargs.get("stream_options")
        kwargs = {**kwargs, "stream_options": {**(options if isinstance(options, dict) else {}),
                                               "include_usage": True}}
    return kwargs


def _adapt_raw(result: Any, call: Call, spec: CallSpec) -> Any:
    """Cost ``with_raw_response`` / ``with_streaming_response`` results when they are parsed."""
    if type(result).__name__ not in _RAW_RESPONSE_TYPES:
        return None
    parse = result.parse
    stream = spec.is_stream(call.kwargs)

    def settle(parsed: Any) -> Any:
        adapted = parsed
        with capture_internal_exceptions():
            adapted = _handle_result(spec, call, parsed, stream)
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

    if type(result).__name__ == "LegacyAPIResponse" and not stream:
        # The body is already read: cost it now (the SDK caches the parse for the caller).
        settle(parse())
        return result
    result.parse = sync_parse
    return result


def _spec(operation: str, *, stream_state: Any = None, prepare_stream: Any = None,
          read_result: Any = _read) -> CallSpec:
    spec = CallSpec(provider=_provider, operation=operation, read_result=read_result,
                    new_stream_state=stream_state, prepare_stream=prepare_stream,
                    adapted_types=_RAW_RESPONSE_TYPES, region=_region)
    spec.adapt_result = _adapter(spec)
    return spec


def _adapter(spec: CallSpec) -> Any:
    def adapt(result: Any, call: Call) -> Any:
        if type(result).__name__ not in _RAW_RESPONSE_TYPES:
            return None  # the common case, decided without another call
        return _adapt_raw(result, call, spec)

    return adapt


def _chat_state(call: Call) -> _ChatStream:
    return _ChatStream(hide_usage_chunk=_injects_usage(call.provider, call.kwargs))


class OpenAIIntegration(Integration):
    """Instruments the ``openai`` package, 1.92 to 3.x: 2.x is what LlamaIndex, Instructor and
    OpenLIT pin. The patched resource classes and models are the same across that range (1.92
    moved ``parse`` out of ``beta``; 1.91 and older are refused, with a warning); only the
    HTTP library differs (httpx before 3.0, httpx2 since), which llmlab never touches."""

    identifier: ClassVar[str] = "openai"
    module: ClassVar[str] = "openai"
    distribution: ClassVar[str] = "openai"
    min_version: ClassVar[tuple[int, ...]] = (1, 92)
    max_version: ClassVar[tuple[int, ...] | None] = (4,)

    def _targets(self) -> list[tuple[Any, str, CallSpec, bool]]:
        try:
            from openai.resources.chat.completions import AsyncCompletions, Completions
            from openai.resources.embeddings import AsyncEmbeddings, Embeddings
            from openai.resources.responses import AsyncResponses, Responses
        except ImportError as exc:
            raise DidNotEnable(f"openai layout not recognised: {exc}") from exc
        chat = _spec("chat.completions", stream_state=_chat_state,
                     prepare_stream=_prepare_chat_stream)
        chat_parse = _spec("chat.completions.parse")
        responses = _spec("responses", stream_state=lambda call: _ResponsesStream(),
                          read_result=_read_response)
        responses_parse = _spec("responses.parse", read_result=_read_response)
        embeddings = _spec("embeddings")
        return [
            (Completions, "create", chat, False), (AsyncCompletions, "create", chat, True),
            (Completions, "parse", chat_parse, False),
            (AsyncCompletions, "parse", chat_parse, True),
            (Responses, "create", responses, False), (AsyncResponses, "create", responses, True),
            (Responses, "parse", responses_parse, False),
            (AsyncResponses, "parse", responses_parse, True),
            (Embeddings, "create", embeddings, False),
            (AsyncEmbeddings, "create", embeddings, True),
        ]


    def wrap_client(self, client: Any) -> bool:
        """Instrument one ``OpenAI`` / ``AsyncOpenAI`` / Azure client instance."""
        import wrapt

        if not type(client).__module__.startswith("openai"):
            return False
        resources = {"Completions": client.chat.completions, "AsyncCompletions":
                     client.chat.completions, "Responses": client.responses,
                     "AsyncResponses": client.responses, "Embeddings": client.embeddings,
                     "AsyncEmbeddings": client.embeddings}
        for owner, name, spec, is_async in self._targets():
            resource = resources[owner.__name__]
            if type(resource) is not owner or name in vars(resource):
                continue
            wrapper = self._wrapper(spec, is_async)
            setattr(resource, name, wrapt.FunctionWrapper(getattr(resource, name), wrapper))
        return True

