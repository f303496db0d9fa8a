"""DSPy's default engine: the copy of lm15 that DSPy vendors (``dspy._vendor.lm15``).

Since DSPy 3.4, ``dspy.LM``'s default engine (``"auto"``) sends each request it can represent
(OpenAI, Anthropic, Gemini, xAI models) through lm15, whose HTTP transport is written on raw
sockets: no provider SDK, httpx or LiteLLM that llmlab patches. This integration patches
DSPy's two lm15 engines, ``dspy.clients.engines.lm15_engine.LM15Engine`` and
``AsyncLM15Engine``: ``complete`` (one request, one `Response`) and ``stream`` (one request,
lm15 stream events), each attempt of DSPy's retry loop being one billed request, recorded as
a Chat Completions call (a Responses call when the engine's ``model_type`` is ``"responses"``).

* **Where it is priced.** The provider comes from the engine's own offline routing
  (``engine.resolve(model)``: ``openai-chat`` → ``openai``, ``gemini`` → ``google``; an
  OpenAI-compatible ``api_base`` is recognised by host as for the openai SDK). The usage is the
  provider's own, read from ``Response.provider_data`` (Anthropic's cache reads and 5-minute /
  1-hour writes included) and normalised by llmlab's rule; without it, from lm15's
  provider-verbatim ``Usage``. lm15 does not surface the prompt and cache counts of an Anthropic
  stream (they come in ``message_start``); its ``AnthropicLM.parse_stream_events`` is wrapped to
  hand them to the stream being recorded (without it, those streams are recorded as estimated).
* **Never twice, never changed.** DSPy's response cache answers before the engine is called,
  so a cache hit is not recorded; ``engine="litellm"`` (or DSPy's fallback to it) does not reach
  these engines and is recorded by the LiteLLM integration. The patched call is marked in
  progress like every llmlab patch, so an SDK lm15 might call is not recorded again. What the
  engine returns or raises is passed through untouched; the budget guard runs before the request.
* **DSPy internals.** These engines are not DSPy's public API. Every access is checked when
  patching, and a DSPy release that moves them is not instrumented, with one WARNING (the
  tested range is ``min_version`` / ``max_version``); a request whose shape is not recognised is
  passed through unrecorded.
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib
import inspect
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from llmlab._tracker import log_internal_error
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import Call, CallSpec, UsageSource, async_wrapper, sync_wrapper
from llmlab.integrations.openai import provider_for_base_url
from llmlab.usage import Usage

__all__ = ["DSPyIntegration", "lm15_usage"]

logger = logging.getLogger("llmlab")

_ENGINES_MODULE = "dspy.clients.engines.lm15_engine"
_ANTHROPIC_MODULE = "dspy._vendor.lm15.providers.anthropic"
#: The usage of the Anthropic ``message_start`` lm15 just parsed, for the `_EventStream` that
#: sees its start event next (lm15 parses in the consumer's thread / task, so its context).
_START_USAGE: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "llmlab_dspy_start_usage", default=None)
#: lm15 provider id → llmlab's (a declared provider keeps its own id when it is a valid one).
_PROVIDERS = {"openai": "openai", "openai-chat": "openai", "anthropic": "anthropic",
              "gemini": "google", "xai": "xai", "azure": "azure", "azure-chat": "azure"}
_OPENAI_LIKE = frozenset({"openai", "openai-chat"})
#: lm15 counts cache tokens apart from the prompt (Anthropic), reasoning apart from the output
#: (Gemini, xAI); llmlab counts both inside.
_CACHE_APART = frozenset({"anthropic"})
_REASONING_APART = frozenset({"google", "xai"})
_PROVIDER_ID = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_NO_EXTRA: dict[str, Any] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    """llmlab's provider id and the model lm15 sends (the shared wrappers' ``instance``)."""

    provider: str
    model: str | None


#: engine → {requested model → route}: routing runs lm15's resolver, once per model.
_ROUTES: weakref.WeakKeyDictionary[Any, dict[str, _Route]] = weakref.WeakKeyDictionary()
_ROUTES_LOCK = threading.Lock()


def _route(engine: Any, model: str) -> _Route:
    with _ROUTES_LOCK:
        routes = _ROUTES.get(engine)
        if routes is None:
            routes = _ROUTES[engine] = {}
        route = routes.get(model)
    if route is None:
        route = _resolve(engine, model)
        with _ROUTES_LOCK:
            if len(routes) > 1000:
                routes.clear()
            routes[model] = route
    return route


def _resolve(engine: Any, model: str) -> _Route:
    try:
        resolution = engine.resolve(model)
    except Exception:  # lm15 refuses the call itself the same way: recorded as failed
        return _Route("lm15", model)
    name, bare = getattr(resolution, "provider", None), getattr(resolution, "model", None)
    provider = _PROVIDERS.get(name) if isinstance(name, str) else None
    if name in _OPENAI_LIKE:
        base_urls = getattr(getattr(engine, "config", None), "base_urls", None)
        url = base_urls.get(name) if isinstance(base_urls, Mapping) else None
        host = urlsplit(url).hostname if isinstance(url, str) else None
        provider = provider_for_base_url(host) if host else provider
    if provider is None:
        provider = name if isinstance(name, str) and _PROVIDER_ID.fullmatch(name) else "lm15"
    return _Route(provider, bare if isinstance(bare, str) and bare else model)


def _request_kwargs(request: Any, model: str | None, stream: bool) -> dict[str, Any]:
    """What the budget guard's worst case and an estimate read, from an lm15 ``Request``."""
    texts = [getattr(message, "text", None) for message in getattr(request, "messages", ())]
    kwargs: dict[str, Any] = {"model": model, "messages": [t for t in texts if isinstance(t, str)]}
    system = getattr(request, "system", None)
    if isinstance(system, str):
        kwargs["system"] = system
    cap = getattr(getattr(request, "config", None), "max_tokens", None)
    if type(cap) is int:
        kwargs["max_tokens"] = cap
    if stream:
        kwargs["stream"] = True
    return kwargs


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def lm15_usage(usage: Any, provider: str | None) -> Usage | None:
    """lm15's provider-verbatim ``Usage`` by llmlab's rule; None when the prompt count is
    missing (the event is then estimated)."""
    prompt, output = getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None)
    if type(prompt) is not int or type(output) is not int:
        return None
    read, write = _count(usage.cache_read_tokens), _count(usage.cache_write_tokens)
    reasoning = _count(usage.reasoning_tokens)
    if provider in _CACHE_APART or (provider is None and read + write > prompt):
        prompt += read + write
    if provider in _REASONING_APART or (provider is None and reasoning > output):
        output += reasoning
    try:
        return Usage(input_tokens=prompt, output_tokens=output, cache_read_tokens=read,
                     cache_write_tokens=write, reasoning_tokens=reasoning,
                     audio_input_tokens=_count(getattr(usage, "input_audio_tokens", None)),
                     audio_output_tokens=_count(getattr(usage, "output_audio_tokens", None)))
    except Exception:
        return None


def _usage(data: Any, usage: Any, provider: str | None) -> Usage | None:
    """The provider's own usage in ``provider_data`` if it holds a whole one, else lm15's."""
    if isinstance(data, Mapping):
        raw = data.get("usageMetadata")
        hint: str | None = "google"
        if not isinstance(raw, Mapping):
            raw = data.get("usage")
            hint = "anthropic" if data.get("type") in ("message", "message_delta") else provider
        complete = isinstance(raw, Mapping) and (hint != "anthropic" or "input_tokens" in raw)
        if complete:
            try:
                return Usage.from_any(raw, hint)
            except Exception:
                pass  # an unexpected shape: lm15's reading below
    return lm15_usage(usage, provider)


def _read(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    model = getattr(result, "model", None)
    return (model if isinstance(model, str) and model else None,
            _usage(getattr(result, "provider_data", None), getattr(result, "usage", None), None),
            _NO_EXTRA)


class _EventStream:
    """lm15 stream events: the start names the model, the end carries the usage."""

    def __init__(self, call: Call) -> None:
        self.provider: str | None = call.provider
        self.model: str | None = None
        self.usage: Usage | None = None
        self.chars = 0
        self.start_usage: Mapping[str, Any] | None = None

    def on_chunk(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "delta":
            text = getattr(getattr(event, "delta", None), "text", None)
            self.chars += len(text) if isinstance(text, str) else 0
        elif kind == "start":
            model = getattr(event, "model", None)
            self.model = model if isinstance(model, str) and model else self.model
            self.start_usage = _START_USAGE.get()
            if self.start_usage is not None:
                _START_USAGE.set(None)
        elif kind == "end":
            data = getattr(event, "provider_data", None)
            if self.start_usage is not None and isinstance(data, Mapping) and isinstance(
                    data.get("usage"), Mapping):  # Anthropic: final counts over message_start's
                data = {"type": "message", "usage": {**self.start_usage, **data["usage"]}}
            usage = _usage(data, getattr(event, "usage", None), self.provider)
            self.usage = usage or self.usage
        return True

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        return self.model, self.usage, self.chars


def _start_usage_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
    """``AnthropicLM.parse_stream_events``: keeps the usage of ``message_start`` (read again
    from the raw event, once per stream) for the stream being recorded."""
    raw = args[1] if len(args) == 2 else None
    if getattr(raw, "event", None) == "message_start":
        try:
            message = json.loads(getattr(raw, "data", "")).get("message")
            usage = message.get("usage") if isinstance(message, Mapping) else None
            _START_USAGE.set(usage if isinstance(usage, Mapping) else None)
        except Exception:  # lm15 parses it itself and raises what it raises
            pass
    return wrapped(*args, **kwargs)


def _spec(operation: str) -> CallSpec:
    return CallSpec(provider=lambda route: route.provider, operation=operation,
                    read_result=_read, new_stream_state=_EventStream)


def _engine_wrapper(wrap: Callable[[CallSpec], Callable[..., Any]],
                    stream: bool) -> Callable[..., Any]:
    """The wrapt wrapper of one engine method: routes the request, then records it through
    the shared wrappers made by ``wrap`` (budget guard, once-only flag, stream proxies), as a
    Chat Completions or a Responses call by the engine's ``model_type``."""
    chat, responses = wrap(_spec("chat.completions")), wrap(_spec("responses"))

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        if len(args) + len(kwargs) != 1 or (kwargs and "request" not in kwargs):
            return wrapped(*args, **kwargs)  # not the call shape this release of DSPy makes
        try:
            request = args[0] if args else kwargs["request"]
            model = getattr(request, "model", None)
            route = _route(instance, model) if isinstance(model, str) else _Route("lm15", None)
            seen = _request_kwargs(request, route.model, stream)
            record = responses if getattr(instance, "model_type", None) == "responses" else chat
        except Exception:
            log_internal_error()
            return wrapped(*args, **kwargs)

        def call(*_: Any, **__: Any) -> Any:
            return wrapped(*args, **kwargs)

        return record(call, route, (), seen)

    return wrapper


class DSPyIntegration(Integration):
    """Instruments DSPy's default (lm15) engine (dspy 3.4)."""

    identifier: ClassVar[str] = "dspy"
    module: ClassVar[str] = "dspy"
    distribution: ClassVar[str] = "dspy"
    min_version: ClassVar[tuple[int, ...]] = (3, 4)
    max_version: ClassVar[tuple[int, ...] | None] = (3, 5)

    def setup_once(self) -> None:
        """Patch ``complete`` and ``stream`` of DSPy's sync and async lm15 engines."""
        try:
            engines = importlib.import_module(_ENGINES_MODULE)
            sync_cls, async_cls = engines.LM15Engine, engines.AsyncLM15Engine
            methods = {(cls, name): vars(cls).get(name) for cls in (sync_cls, async_cls)
                       for name in ("complete", "stream")}
            expected: dict[tuple[Any, str], Callable[[Any], bool]] = {
                (sync_cls, "complete"): inspect.isfunction,
                (async_cls, "complete"): inspect.iscoroutinefunction,
                (sync_cls, "stream"): inspect.isgeneratorfunction,
                (async_cls, "stream"): inspect.isasyncgenfunction}
            moved = [f"{cls.__name__}.{name}" for (cls, name), check in expected.items()
                     if not check(methods[cls, name])]
            moved += [f"{cls.__name__}.resolve" for cls in (sync_cls, async_cls)
                      if not callable(getattr(cls, "resolve", None))]
        except Exception as exc:  # a DSPy release that moved its engines
            raise DidNotEnable(f"DSPy's lm15 engines are not where llmlab expects them "
                               f"({type(exc).__name__}: {exc})") from exc
        if moved:
            raise DidNotEnable(f"DSPy's lm15 engines changed ({', '.join(moved)}); "
                               "dspy.LM's default engine is not recorded")
        self.patch(sync_cls, "complete", _engine_wrapper(sync_wrapper, False))
        self.patch(async_cls, "complete", _engine_wrapper(async_wrapper, False))
        # Both streams are made by a plain call (an async generator is not awaited): the
        # budget guard runs when DSPy makes it, the proxy records the call when it ends.
        self.patch(sync_cls, "stream", _engine_wrapper(sync_wrapper, True))
        self.patch(async_cls, "stream", _engine_wrapper(sync_wrapper, True))
        try:
            anthropic_lm = importlib.import_module(_ANTHROPIC_MODULE).AnthropicLM
            if not inspect.isfunction(vars(anthropic_lm).get("parse_stream_events")):
                raise AttributeError("AnthropicLM.parse_stream_events")
        except Exception as exc:  # only Anthropic streams lose their exact prompt counts
            logger.debug("llmlab: DSPy's Anthropic streams are estimated: %s", exc)
            return
        self.patch(anthropic_lm, "parse_stream_events", _start_usage_wrapper)
