"""LiteLLM as a client library: every provider it reaches, and so DSPy and the ``Router``.

Patched, on the ``litellm`` module: ``completion`` / ``acompletion``, ``embedding`` /
``aembedding``, ``text_completion`` / ``atext_completion`` and ``responses`` / ``aresponses``,
plain and streamed (sync and async), and ``<entry>(..., a<entry>=True)``, which returns a
coroutine. ``Router`` and DSPy call these module attributes at call time, so each deployment
attempt of a router (retries and fallbacks are billed calls too) is recorded once.

Patching, not a LiteLLM callback, because only patching keeps both guarantees:

* **The budget guard runs before the call.** LiteLLM catches and logs what its callbacks
  raise, so a callback cannot stop a call with `BudgetExceededError`.
* **Exactly once.** The patched entry marks the call in progress, as every llmlab patch does,
  so when LiteLLM reaches a provider through an SDK llmlab also patches, that inner call is
  not recorded again. In litellm 1.110, Azure chat and embeddings and OpenAI embeddings go
  through the ``openai`` SDK's patched methods; OpenAI chat and legacy completions use the
  SDK's unpatched ``post`` / ``completions``; every other provider and the Responses API use
  LiteLLM's own httpx (or its Rust core). Success callbacks also run on LiteLLM's thread
  pool, where the caller's `track()` scope is not current, and miss abandoned streams.

Each call is priced by llmlab's catalogue from the usage in the response (LiteLLM's own cost
is ignored), under the provider LiteLLM resolves for the model before the call
(``get_llm_provider``: ``anthropic/…`` → ``anthropic``, ``gemini/…`` → ``google``; an
OpenAI-compatible ``api_base`` is recognised by host as for the openai SDK). LiteLLM reports
every provider's usage in OpenAI's shape with cache reads and writes inside
``prompt_tokens``, as llmlab's rule wants. Streamed usage is read from the chunk that carries
it or, when the caller did not ask for ``stream_options.include_usage``, from the final
chunk's hidden parameters (LiteLLM's own estimate there is not taken as reported usage: the
event is estimated instead). Cache hits (``litellm.cache``) and ``mock_response`` calls are
not billed and not recorded.

The entries are module attributes: code that ran ``from litellm import completion`` before
`init()` keeps the unpatched function (``litellm.completion(...)`` is always recorded).
LiteLLM fetches its price map from the internet at import unless
``LITELLM_LOCAL_MODEL_COST_MAP=True``; llmlab does not need that map.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from llmlab._tracker import log_internal_error
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import (
    AsyncStreamProxy,
    Call,
    CallSpec,
    SyncStreamProxy,
    UsageSource,
    async_wrapper,
    sync_wrapper,
)
from llmlab.integrations.openai import provider_for_base_url
from llmlab.pricing._names import PREFIXES
from llmlab.usage import Usage

__all__ = ["LiteLLMIntegration", "litellm_usage"]

#: Patched entry → (operation of its events, whether it is the async twin).
_ENTRIES = {
    "completion": ("chat.completions", False), "acompletion": ("chat.completions", True),
    "embedding": ("embeddings", False), "aembedding": ("embeddings", True),
    "text_completion": ("completions", False), "atext_completion": ("completions", True),
    "responses": ("responses", False), "aresponses": ("responses", True),
}
#: LiteLLM provider names the catalogue's prefixes do not spell.
_PROVIDERS = {**PREFIXES, "cohere_chat": "cohere", "text-completion-openai": "openai",
              "text-completion-codestral": "mistral", "vertex_ai_beta": "vertex"}
#: LiteLLM providers that are an OpenAI-compatible endpoint named by ``api_base``.
_OPENAI_LIKE = frozenset({"openai", "custom_openai", "text-completion-openai"})
_NO_EXTRA: dict[str, Any] = {}
#: What the event schema accepts as a provider id.
_PROVIDER_ID = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_CHAT_KEYS = ("prompt_tokens", "completion_tokens", "prompt_tokens_details",
              "completion_tokens_details")
_RESPONSES_KEYS = ("input_tokens", "output_tokens", "input_tokens_details",
                   "output_tokens_details")


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    """Where LiteLLM sends a call: llmlab's provider id and the model without its prefix.

    Passed as the wrapper's ``instance`` (module functions have none), so the shared
    wrappers in `_common` read the provider from it.
    """

    provider: str
    model: str | None


_UNKNOWN = _Route("litellm", None)
#: (model, custom_llm_provider, api_base) → route: resolving runs LiteLLM's provider logic.
_ROUTES: dict[tuple[str, Any, Any], _Route] = {}


def _route(kwargs: Mapping[str, Any]) -> _Route:
    model = kwargs.get("model")
    if not isinstance(model, str):
        return _UNKNOWN
    declared = kwargs.get("custom_llm_provider")
    api_base = kwargs.get("api_base") or kwargs.get("base_url")
    key = (model, declared, api_base)
    route = _ROUTES.get(key)
    if route is None:
        route = _resolve(model, declared, api_base)
        if len(_ROUTES) > 1000:
            _ROUTES.clear()
        _ROUTES[key] = route
    return route


def _resolve(model: str, declared: Any, api_base: Any) -> _Route:
    import litellm

    try:
        bare, name, _, _ = litellm.get_llm_provider(
            model=model, custom_llm_provider=declared,
            api_base=api_base if isinstance(api_base, str) else None)
    except Exception:  # LiteLLM raises the same for the call itself, which is recorded failed
        return _Route("litellm", model)
    provider = _PROVIDERS.get(name)
    if name in _OPENAI_LIKE and isinstance(api_base, str):
        host = urlsplit(api_base).hostname
        provider = provider_for_base_url(host) if host else "openai"
    if provider is None:  # a provider the catalogue does not price (ollama, vllm…): its name
        valid = isinstance(name, str) and _PROVIDER_ID.fullmatch(name)
        provider = name if valid else "litellm"
    return _Route(provider, bare if isinstance(bare, str) else model)


def _fields(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    if hasattr(obj, "__pydantic_fields_set__"):
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**obj.__dict__, **extra} if extra else obj.__dict__
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def litellm_usage(raw: Any) -> Usage | None:
    """A LiteLLM usage object (chat / embeddings / Responses shape) normalised; None when
    the provider did not report one.

    LiteLLM puts Anthropic-style cache writes in ``prompt_tokens_details.cache_write_tokens``
    or ``cache_creation_input_tokens`` and their 5-minute / 1-hour split in
    ``cache_creation_token_details``; both are read here.
    """
    if raw is None or type(raw).__name__ == "UnreportedUsage":
        return None
    data = _fields(raw)
    keys = _CHAT_KEYS if "prompt_tokens" in data else _RESPONSES_KEYS
    base = Usage.from_any({k: data[k] for k in keys if data.get(k) is not None})
    details = data.get(keys[2])
    details = _fields(details) if details is not None else {}
    split = details.get("cache_creation_token_details")
    split = _fields(split) if split is not None else {}
    read = max(base.cache_read_tokens, _count(data.get("cache_read_input_tokens")))
    write = max(base.cache_write_tokens + base.cache_write_1h_tokens,
                _count(data.get("cache_creation_input_tokens")),
                _count(details.get("cache_creation_tokens")))
    long_lived = min(_count(split.get("ephemeral_1h_input_tokens"))
                     + _count(split.get("ephemeral_12h_input_tokens")), write)
    long_lived = max(long_lived, min(base.cache_write_1h_tokens, write))
    prompt = base.input_tokens
    if read + write + base.audio_input_tokens + base.image_input_tokens > prompt:
        prompt += read + write  # a prompt count that left the cache out (not LiteLLM's rule)
    return dataclasses.replace(base, input_tokens=prompt, cache_read_tokens=read,
                               cache_write_tokens=write - long_lived,
                               cache_write_1h_tokens=long_lived)


def _read(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    model = getattr(result, "model", None)
    tier = getattr(result, "service_tier", None)
    return (model if isinstance(model, str) else None, litellm_usage(getattr(result, "usage", None)),
            {"service_tier": tier} if isinstance(tier, str) and tier else _NO_EXTRA)


class _ChunkStream:
    """Chat and text-completion chunks: model, usage and the length of the text streamed."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: Usage | None = None
        self.chars = 0

    def on_chunk(self, chunk: Any) -> bool:
        model = getattr(chunk, "model", None)
        if isinstance(model, str) and model:
            self.model = model
        raw = getattr(chunk, "usage", None)
        if raw is None:  # the caller did not ask for usage: LiteLLM keeps it hidden
            hidden = getattr(chunk, "_hidden_params", None)
            raw = hidden.get("usage") if isinstance(hidden, Mapping) else None
        if raw is not None:
            self.usage = litellm_usage(raw) or self.usage
        for choice in getattr(chunk, "choices", None) or ():
            delta = getattr(choice, "delta", None)
            text = getattr(delta, "content", None) if delta is not None else getattr(
                choice, "text", None)
            if isinstance(text, str):
                self.chars += len(text)
            for tool in getattr(delta, "tool_calls", None) or ():
                arguments = getattr(getattr(tool, "function", None), "arguments", None)
                self.chars += len(arguments) if isinstance(arguments, str) else 0
        return True

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        return self.model, self.usage, self.chars


class _ResponsesStream(_ChunkStream):
    """Responses API events: the final response carries model and usage."""

    def on_chunk(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if isinstance(kind, str) and kind.endswith(".delta"):
            delta = getattr(event, "delta", None)
            self.chars += len(delta) if isinstance(delta, str) else 0
        response = getattr(event, "response", None)
        if response is not None:
            model = getattr(response, "model", None)
            self.model = model if isinstance(model, str) and model else self.model
            self.usage = litellm_usage(getattr(response, "usage", None)) or self.usage
        return True


def _not_billed(result: Any) -> bool:
    """A response LiteLLM served from its cache: no provider call, nothing to record."""
    if getattr(result, "custom_llm_provider", None) == "cached_response":
        return True
    hidden = getattr(result, "_hidden_params", None)
    return isinstance(hidden, Mapping) and bool(hidden.get("cache_hit"))


def _spec(operation: str, is_async: bool) -> CallSpec:
    state_cls = _ResponsesStream if operation == "responses" else _ChunkStream

    def adapt(result: Any, call: Call) -> Any:
        if _not_billed(result):
            return result  # returned as is, and the call is never finished: not recorded
        if not call.kwargs.get("stream"):
            return None
        proxy = AsyncStreamProxy if is_async else SyncStreamProxy
        return proxy(result, call, state_cls())

    # Every result goes through `adapt` (adapted_types None): LiteLLM's own work per call
    # dwarfs the fast path's savings.
    return CallSpec(provider=lambda route: route.provider, operation=operation,
                    read_result=_read, adapt_result=adapt, adapted_types=None)


def _keyword_names(function: Any) -> tuple[str, ...]:
    """The names positional arguments of ``function`` bind to (LiteLLM's public signature)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return ()
    names = []
    for parameter in parameters:
        if parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            break
        names.append(parameter.name)
    return tuple(names)


def _entry_wrapper(name: str, original: Any) -> Callable[..., Any]:
    """The wrapt wrapper of one LiteLLM entry: resolves the route, then records the call
    through the shared wrappers (budget guard, once-only flag, stream proxies)."""
    operation, is_async = _ENTRIES[name]
    spec = _spec(operation, is_async)
    record = async_wrapper(spec) if is_async else sync_wrapper(spec)
    # `completion(..., acompletion=True)` returns a coroutine: recorded as the async entry.
    async_record = async_wrapper(_spec(operation, True)) if not is_async else record
    async_flag = "a" + name
    names = _keyword_names(original)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        if (len(args) > len(names) or "mock_response" in kwargs
                or not kwargs.keys().isdisjoint(names[:len(args)])):
            return wrapped(*args, **kwargs)  # not a billed call / LiteLLM raises its TypeError
        try:
            # Positional arguments become keywords (the same call) so the model and the
            # prompt are read in one place; the events name the model without its prefix.
            called = {**dict(zip(names, args, strict=False)), **kwargs}
            route = _route(called)
            original_model = called.get("model")
            seen = {**called, "model": route.model} if route.model else called
            chosen = async_record if not is_async and kwargs.get(async_flag) is True else record
        except Exception:
            log_internal_error()
            return wrapped(*args, **kwargs)

        def call(*_: Any, **sent: Any) -> Any:
            return wrapped(**{**sent, "model": original_model}) if route.model else wrapped(**sent)

        return chosen(call, route, (), seen)

    return wrapper


class LiteLLMIntegration(Integration):
    """Instruments the ``litellm`` package (1.110+)."""

    identifier: ClassVar[str] = "litellm"
    module: ClassVar[str] = "litellm"
    distribution: ClassVar[str] = "litellm"
    min_version: ClassVar[tuple[int, ...]] = (1, 110)

    def setup_once(self) -> None:
        """Patch LiteLLM's public entries on the ``litellm`` module."""
        import litellm

        missing = [name for name in _ENTRIES if vars(litellm).get(name) is None]
        if missing:  # checked first: a half-patched module would record some entries only
            raise DidNotEnable(f"litellm.{', litellm.'.join(missing)} missing in this version")
        for name in _ENTRIES:
            self.patch(litellm, name, _entry_wrapper(name, vars(litellm)[name]))
