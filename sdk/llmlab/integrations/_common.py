"""What every integration shares: the call wrapper, stream proxies and the once-only guard.

An integration describes a provider method with a `CallSpec` (how to read the model, the
usage and the stream chunks); `sync_wrapper` / `async_wrapper` turn it into a wrapt wrapper
that times the call, checks budgets before it, records one event after it, and otherwise
returns or raises exactly what the provider SDK did.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import wrapt

from llmlab._estimate import worst_case_cost
from llmlab._tracker import (
    INTERNAL_ERROR,
    NonRecordingTracker,
    capture_internal_exceptions,
    get_tracker,
)
from llmlab.usage import Usage

__all__ = ["AsyncStreamProxy", "Call", "CallSpec", "StreamState", "SyncStreamProxy",
           "async_wrapper", "sync_wrapper"]

logger = logging.getLogger("llmlab")

#: Set while an instrumented call runs: an instrumented call inside it (a wrapped client under
#: a patched class, `parse` calling `create`) is the same billed call and is not recorded again.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llmlab_in_call", default=False)


class StreamState(Protocol):
    """Accumulates a stream's chunks; made per stream by `CallSpec.new_stream_state`."""

    def on_chunk(self, chunk: Any) -> bool:
        """Observe one chunk; return False to hide it from the caller (an injected usage chunk)."""

    def result(self) -> tuple[str | None, Usage | None, int]:
        """(model reported, usage if the provider reported it, characters of output seen).

        A state may also define ``extra() -> dict`` with ``service_tier`` / ``region`` read
        from the stream; they are passed on to the event.
        """


@dataclass
class CallSpec:
    """How to read one kind of provider call."""

    provider: Callable[[Any], str]
    operation: str
    #: (model, usage, extra) from a non-stream result; extra may hold service_tier/region.
    read_result: Callable[[Any], tuple[str | None, Usage | None, dict[str, Any]]]
    #: Whether the request asks for a stream.
    is_stream: Callable[[dict[str, Any]], bool] = lambda kwargs: bool(kwargs.get("stream"))
    new_stream_state: Callable[[Call], StreamState] | None = None
    #: Changes to the request before it is sent (e.g. ask for stream usage); returns kwargs.
    prepare: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    #: Wraps a result that is neither a plain response nor a bare stream (raw responses).
    adapt_result: Callable[[Any, Call], Any] | None = None
    model_kwarg: str = "model"
    extra: dict[str, Any] = field(default_factory=dict)


class Call:
    """One provider call in flight: timing, identity and recording exactly once."""

    __slots__ = ("_done", "kwargs", "operation", "provider", "requested_model", "started",
                 "tracker", "ttfb_ms")

    def __init__(self, tracker: NonRecordingTracker, provider: str, requested_model: str | None,
                 operation: str, kwargs: dict[str, Any]) -> None:
        self.tracker = tracker
        self.provider = provider
        self.requested_model = requested_model
        self.operation = operation
        self.kwargs = kwargs
        self.started = time.perf_counter()
        self.ttfb_ms: float | None = None
        self._done = False

    def elapsed_ms(self) -> float:
        """Milliseconds since the call started (microsecond resolution)."""
        return int((time.perf_counter() - self.started) * 1_000_000) / 1000

    def mark_first_chunk(self) -> None:
        """Remember the time to the first streamed chunk."""
        if self.ttfb_ms is None:
            self.ttfb_ms = self.elapsed_ms()

    def finish(self, model: str | None, usage: Usage | None, *, stream: bool = False,
               estimated_output_chars: int = 0, status: str = "ok",
               error_type: str | None = None, **extra: Any) -> None:
        """Record the call's event (once; later calls are ignored)."""
        if self._done:
            return
        self._done = True
        with capture_internal_exceptions():
            estimated = False
            if usage is None:
                usage = self._estimate(estimated_output_chars) if status != "error" else Usage()
                estimated = status != "error"
            self.tracker.record_usage(
                provider=self.provider, model=model or self.requested_model or "unknown",
                requested_model=self.requested_model, operation=self.operation, usage=usage,
                latency_ms=self.elapsed_ms(), ttfb_ms=self.ttfb_ms, stream=stream,
                status=status, error_type=error_type, estimated=estimated, **extra)

    def fail(self, exc: BaseException, *, stream: bool = False) -> None:
        """Record a failed call (no usage was billed that we can see)."""
        self.finish(None, None, stream=stream, status="error", error_type=type(exc).__name__)

    def _estimate(self, output_chars: int) -> Usage:
        from llmlab._estimate import estimate_prompt_tokens, tokens_for_chars

        return Usage(input_tokens=estimate_prompt_tokens(self.kwargs),
                     output_tokens=tokens_for_chars(output_chars))


def _begin(spec: CallSpec, instance: Any, kwargs: dict[str, Any]) -> Call | None:
    """Start recording a call, or None when it must pass through untouched."""
    if _IN_CALL.get():
        return None
    tracker = get_tracker()
    provider = spec.provider(instance)
    model = kwargs.get(spec.model_kwarg)
    model_name = model if isinstance(model, str) else None
    # Budgets are checked outside capture_internal_exceptions: refusing is the point.
    if model_name:
        tracker.check_budget(provider, model_name,
                             _once(lambda: _worst_case(tracker, provider, model_name, kwargs)))
    if not tracker.active:
        return None
    return Call(tracker, provider, model_name, spec.operation, kwargs)


def _once(compute: Callable[[], Decimal]) -> Callable[[], Decimal]:
    """``compute`` evaluated at most once (a scope and a budget may both ask)."""
    cache: list[Decimal] = []

    def get() -> Decimal:
        if not cache:
            cache.append(compute())
        return cache[0]

    return get


def _worst_case(tracker: Any, provider: str, model: str, kwargs: dict[str, Any]) -> Decimal:
    try:
        return worst_case_cost(getattr(tracker, "catalogue", None), provider, model, kwargs)
    except Exception:
        logger.exception("llmlab: could not estimate the cost of a call; not blocking it",
                         extra={INTERNAL_ERROR: True})
        return Decimal(0)


def _handle_result(spec: CallSpec, call: Call, result: Any, stream: bool) -> Any:
    """Record a plain result, or wrap a stream / raw response so it records when consumed."""
    if spec.adapt_result is not None:
        adapted = spec.adapt_result(result, call)
        if adapted is not None:
            return adapted
    if stream and spec.new_stream_state is not None:
        state = spec.new_stream_state(call)
        if hasattr(result, "__aiter__") and not hasattr(result, "__next__"):
            return AsyncStreamProxy(result, call, state)
        return SyncStreamProxy(result, call, state)
    model, usage, extra = spec.read_result(result)
    call.finish(model, usage, **extra)
    return result


def sync_wrapper(spec: CallSpec) -> Callable[[Callable[..., Any], Any, tuple[Any, ...],
                                              dict[str, Any]], Any]:
    """A wrapt wrapper recording a synchronous provider method."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        call = None
        with capture_internal_exceptions():
            call = _begin(spec, instance, kwargs)
            if call is not None and spec.prepare is not None:
                kwargs = spec.prepare(instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc, stream=spec.is_stream(kwargs))
            raise
        finally:
            _IN_CALL.reset(token)
        adapted = result
        with capture_internal_exceptions():
            adapted = _handle_result(spec, call, result, spec.is_stream(kwargs))
        return adapted

    return wrapper


def async_wrapper(spec: CallSpec) -> Callable[[Callable[..., Awaitable[Any]], Any,
                                               tuple[Any, ...], dict[str, Any]], Any]:
    """A wrapt wrapper recording an async provider method."""

    async def wrapper(wrapped: Callable[..., Awaitable[Any]], instance: Any,
                      args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = None
        with capture_internal_exceptions():
            call = _begin(spec, instance, kwargs)
            if call is not None and spec.prepare is not None:
                kwargs = spec.prepare(instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc, stream=spec.is_stream(kwargs))
            raise
        finally:
            _IN_CALL.reset(token)
        adapted = result
        with capture_internal_exceptions():
            adapted = _handle_result(spec, call, result, spec.is_stream(kwargs))
        return adapted

    return wrapper


class _StreamProxyBase(wrapt.ObjectProxy[Any]):
    """Shared bookkeeping of the sync and async stream proxies."""

    def __init__(self, wrapped: Any, call: Call, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_state = state
        self._self_iterator: Any = None

    def _self_observe(self, chunk: Any) -> bool:
        self._self_call.mark_first_chunk()
        visible = True
        with capture_internal_exceptions():
            visible = self._self_state.on_chunk(chunk)
        return visible

    def _self_finish(self, *, early: bool = False, error: BaseException | None = None) -> None:
        with capture_internal_exceptions():
            model, usage, chars = self._self_state.result()
            if error is not None:
                if usage is None:
                    self._self_call.fail(error, stream=True)
                else:  # a stream that broke after reporting usage: those tokens were billed
                    self._self_call.finish(model, usage, stream=True, status="error",
                                           error_type=type(error).__name__)
                return
            extra_of = getattr(self._self_state, "extra", None)
            extra = extra_of() if callable(extra_of) else {}
            self._self_call.finish(model, usage, stream=True, estimated_output_chars=chars,
                                   status="cancelled" if early and usage is None else "ok",
                                   **extra)

    def __del__(self) -> None:
        # A stream dropped without being exhausted or closed is still recorded.
        self._self_finish(early=True)


class SyncStreamProxy(_StreamProxyBase):
    """Wraps a provider stream; records the call when it ends, however it ends."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        if self._self_iterator is None:
            self._self_iterator = iter(self.__wrapped__)
        while True:
            try:
                chunk = next(self._self_iterator)
            except StopIteration:
                self._self_finish()
                raise
            except BaseException as exc:
                self._self_finish(error=exc)
                raise
            if self._self_observe(chunk):
                return chunk

    def close(self) -> Any:
        """Close the underlying stream; a stream closed early is recorded with what was seen."""
        try:
            return self.__wrapped__.close()
        finally:
            self._self_finish(early=True)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finish(early=True)


class AsyncStreamProxy(_StreamProxyBase):
    """Wraps an async provider stream; records the call when it ends, however it ends."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        if self._self_iterator is None:
            self._self_iterator = self.__wrapped__.__aiter__()
        while True:
            try:
                chunk = await self._self_iterator.__anext__()
            except StopAsyncIteration:
                self._self_finish()
                raise
            except BaseException as exc:
                self._self_finish(error=exc)
                raise
            if self._self_observe(chunk):
                return chunk

    async def close(self) -> Any:
        """Close the underlying stream; a stream closed early is recorded with what was seen."""
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_finish(early=True)

    async def aclose(self) -> Any:
        """Alias of `close` for async-generator style callers."""
        closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
        try:
            return await closer()
        finally:
            self._self_finish(early=True)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finish(early=True)
