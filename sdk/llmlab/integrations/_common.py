"""What every integration shares: the call wrapper, stream proxies and the once-only guard.

An integration describes a provider method with a `CallSpec` (how to read the model, the
usage and the stream chunks); `sync_wrapper` / `async_wrapper` turn it into a wrapt wrapper
that times the call, checks budgets before it, records one event after it, and otherwise
returns or raises exactly what the provider SDK did.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import wrapt

from llmlab import _tracker
from llmlab._estimate import worst_case_cost
from llmlab._scope import _CURRENT as _CURRENT_SCOPE
from llmlab._tracker import (
    INTERNAL_ERROR,
    NonRecordingTracker,
    capture_internal_exceptions,
    log_internal_error,
)
from llmlab.errors import BudgetExceededError
from llmlab.usage import Usage

__all__ = ["AsyncStreamProxy", "Call", "CallSpec", "StreamState", "SyncStreamProxy", "UsageSource",
           "async_wrapper", "sync_wrapper"]

logger = logging.getLogger("llmlab")
_perf_counter = time.perf_counter
_RELEASED: dict[str, Any] = {}

#: Set while an instrumented call runs: an instrumented call inside it (a wrapped client under
#: a patched class, `parse` calling `create`) is the same billed call and is not recorded again.
#: Async calls need a context variable (tasks interleave on one thread); a sync call runs to
#: its end on its thread, so a thread-local flag does, at a fraction of the cost.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llmlab_in_call", default=False)


class _InSyncCall(threading.local):
    active = False


_IN_SYNC_CALL = _InSyncCall()


#: A call's usage: a `Usage`, or the provider's own usage object, which `Usage.from_any`
#: normalises when the event is built (on the worker thread when the call is deferred).
UsageSource = Usage | Any


class StreamState(Protocol):
    """Accumulates a stream's chunks; made per stream by `CallSpec.new_stream_state`."""

    def on_chunk(self, chunk: Any) -> bool:
        """Observe one chunk; return False to hide it from the caller (an injected usage chunk)."""

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        """(model reported, usage if the provider reported it, characters of output seen).

        A state may also define ``extra() -> dict`` with ``service_tier`` / ``region`` read
        from the stream; they are passed on to the event.
        """


def stream_kwarg(kwargs: dict[str, Any]) -> bool:
    """Whether a request asks for a stream with ``stream=True`` (the usual way)."""
    return bool(kwargs.get("stream"))


@dataclass
class CallSpec:
    """How to read one kind of provider call."""

    provider: Callable[[Any], str]
    operation: str
    #: (model, usage, extra) from a non-stream result; extra may hold service_tier/region.
    read_result: Callable[[Any], tuple[str | None, UsageSource | None, dict[str, Any]]]
    #: Whether the request asks for a stream.
    is_stream: Callable[[dict[str, Any]], bool] = stream_kwarg
    new_stream_state: Callable[[Call], StreamState] | None = None
    #: Changes to a streamed request before it is sent (ask for stream usage); returns kwargs.
    prepare_stream: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    #: Wraps a result that is neither a plain response nor a bare stream (raw responses).
    adapt_result: Callable[[Any, Call], Any] | None = None
    #: Names of the result types `adapt_result` wraps when the request does not stream; None
    #: when it may wrap any result (then every call takes the full path, see `sync_wrapper`).
    adapted_types: frozenset[str] | None = None
    model_kwarg: str = "model"

    def defers_plain_calls(self) -> bool:
        """Whether a plain (non-streamed) call may take the fast path: nothing but
        `read_result` is needed to record a result outside the `adapted_types`."""
        return self.adapt_result is None or self.adapted_types is not None


class Call:
    """One provider call: its timing and identity while it runs, then its record.

    `finish` fills in the outcome and hands the call itself to the tracker (once), which
    builds its event from these fields, now or later on the worker thread.
    """

    __slots__ = ("_done", "error_type", "estimated", "extra", "kwargs", "latency_ms", "model",
                 "operation", "provider", "requested_model", "started", "status", "stream",
                 "tracker", "ttfb_ms", "usage", "when")

    def __init__(self, tracker: NonRecordingTracker, provider: str, requested_model: str | None,
                 operation: str, kwargs: dict[str, Any], started: float | None = None) -> None:
        self.tracker = tracker
        self.provider = provider
        self.requested_model = requested_model
        self.operation = operation
        self.kwargs = kwargs
        self.started = _perf_counter() if started is None else started
        self.ttfb_ms: float | None = None
        self._done = False

    def elapsed_ms(self) -> float:
        """Milliseconds since the call started (microsecond resolution)."""
        return int((_perf_counter() - self.started) * 1_000_000) / 1000

    def mark_first_chunk(self) -> None:
        """Remember the time to the first streamed chunk."""
        if self.ttfb_ms is None:
            self.ttfb_ms = self.elapsed_ms()

    def finish(self, model: str | None, usage: UsageSource | None, *,
               stream: bool = False, estimated_output_chars: int = 0, status: str = "ok",
               error_type: str | None = None, **extra: Any) -> None:
        """Record the call (once; later calls are ignored).

        ``usage`` may be the provider's own usage object, normalised later (on the worker
        thread when nothing needs the priced event now).
        """
        if self._done:
            return
        self._done = True
        try:
            self._set_outcome(model, usage, stream, estimated_output_chars, status, error_type,
                              extra, _perf_counter(), time.time())
            self.tracker.record_call(self)
        except Exception:
            log_internal_error()

    def _set_outcome(self, model: str | None, usage: UsageSource | None, stream: bool,
                     estimated_output_chars: int, status: str, error_type: str | None,
                     extra: dict[str, Any], ended: float, when: float) -> None:
        """Fill in the record's outcome fields (``ended``: `perf_counter` time; ``when``:
        wall-clock time) and release the request."""
        self.latency_ms = int((ended - self.started) * 1_000_000) / 1000
        self.when = when
        self.estimated = False
        if usage is None:
            usage = self._estimate(estimated_output_chars) if status != "error" else Usage()
            self.estimated = status != "error"
        self.model = model or self.requested_model or "unknown"
        self.usage = usage
        self.stream = stream
        self.status = status
        self.error_type = error_type
        self.extra = extra
        self.kwargs = _RELEASED  # a large request is not kept alive by a queued record

    def fail(self, exc: BaseException, *, stream: bool = False) -> None:
        """Record a failed call (no usage was billed that we can see)."""
        self.finish(None, None, stream=stream, status="error", error_type=type(exc).__name__)

    def _estimate(self, output_chars: int) -> Usage:
        from llmlab._estimate import estimate_prompt_tokens, tokens_for_chars

        return Usage(input_tokens=estimate_prompt_tokens(self.kwargs),
                     output_tokens=tokens_for_chars(output_chars))


def _begin(spec: CallSpec, instance: Any,
           kwargs: dict[str, Any]) -> tuple[Call | None, bool, dict[str, Any]]:
    """Start recording a call: (the call, or None to pass it through untouched; whether it
    streams; the request's keywords as they will be sent).

    Raises `BudgetExceededError` (on purpose) when the call's worst case would break a
    ``max_cost`` scope or a blocking budget; llmlab's own failures are logged and swallowed.
    """
    call = None
    stream = False
    try:
        tracker = _tracker._TRACKER  # get_tracker(), without a call on the hot path
        provider = spec.provider(instance)
        model = kwargs.get(spec.model_kwarg)
        model_name = model if isinstance(model, str) else None
        guard = tracker.budget_guard
        if model_name and (_CURRENT_SCOPE.get() is not None
                           or (guard is not None and guard.has_budgets())):
            tracker.check_budget(provider, model_name, _once(
                lambda: _worst_case(tracker, provider, model_name, kwargs)))
        if tracker.active:
            call = Call(tracker, provider, model_name, spec.operation, kwargs)
            is_stream = spec.is_stream
            stream = bool(kwargs.get("stream")) if is_stream is stream_kwarg else is_stream(
                kwargs)
            if stream and spec.prepare_stream is not None:
                kwargs = spec.prepare_stream(instance, kwargs)
    except BudgetExceededError:
        raise
    except Exception:
        log_internal_error()
    return call, stream, kwargs


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


def _build_plain(record: tuple[Any, ...]) -> dict[str, Any] | None:
    """The wire event of a plain call the fast path queued (on the worker thread).

    The record is ``(_build_plain, tracker, spec, instance, requested model, model, usage,
    extra, started, ended, when)``: a tuple is the cheapest record to make on the calling
    thread (see `llmlab._event_items.encode`). None when it cannot be built (logged).
    """
    _, tracker, spec, instance, requested, model, usage, extra, started, ended, when = record
    with capture_internal_exceptions():
        call = Call(tracker, spec.provider(instance),
                    requested if isinstance(requested, str) else None, spec.operation,
                    _RELEASED, started)
        call._set_outcome(model, usage, False, 0, "ok", None, extra, ended, when)
        return tracker.build_deferred(call)  # type: ignore[no-any-return]
    return None


def _finish_plain(spec: CallSpec, tracker: Any, instance: Any, kwargs: dict[str, Any],
                  started: float, result: Any) -> Any:
    """The fast path after a plain call returned: queue it for the worker (`_build_plain`).

    A result `adapt_result` wraps, or one without usage (estimated from the request, which
    the caller may change later), is recorded by the full path now instead.
    """
    ended = _perf_counter()
    try:
        adapted = spec.adapted_types
        if adapted is None or type(result).__name__ not in adapted:
            model, usage, extra = spec.read_result(result)
            if usage is not None:
                tracker.worker.submit((_build_plain, tracker, spec, instance,
                                       kwargs.get(spec.model_kwarg), model, usage, extra,
                                       started, ended, time.time()))
                return result
        return _handle_result(spec, _late_call(spec, tracker, instance, kwargs, started),
                              result, False)
    except Exception:
        log_internal_error()
        return result


def _fail_plain(spec: CallSpec, tracker: Any, instance: Any, kwargs: dict[str, Any],
                started: float, exc: BaseException) -> None:
    """The fast path after a plain call raised: record the failed call."""
    try:
        _late_call(spec, tracker, instance, kwargs, started).fail(exc)
    except Exception:
        log_internal_error()


def _late_call(spec: CallSpec, tracker: Any, instance: Any, kwargs: dict[str, Any],
               started: float) -> Call:
    model = kwargs.get(spec.model_kwarg)
    return Call(tracker, spec.provider(instance), model if isinstance(model, str) else None,
                spec.operation, kwargs, started)


# The wrappers below are the per-call hot path: they use try/except (free in Python 3.11
# when nothing is raised) instead of `capture_internal_exceptions()` blocks.
#
# The fast path: a plain call (not streamed) whose pricing the tracker defers (no `track()`
# scope, no ``on_event`` callback, no server budget to enforce: `defers_pricing`) is timed
# and queued as a `_build_plain` record; everything else goes through `_begin` and
# `_handle_result`. Both record the same event (the tests run every integration both ways).

def _takes_fast_path(spec: CallSpec, tracker: Any, kwargs: dict[str, Any]) -> bool:
    """Whether this call of a spec that `defers_plain_calls` takes the fast path."""
    try:
        is_stream = spec.is_stream
        return bool(tracker.worker is not None
                    and not (kwargs.get("stream") if is_stream is stream_kwarg
                             else is_stream(kwargs))
                    and tracker.defers_pricing())
    except Exception:
        log_internal_error()
        return False


def sync_wrapper(spec: CallSpec) -> Callable[[Callable[..., Any], Any, tuple[Any, ...],
                                              dict[str, Any]], Any]:
    """A wrapt wrapper recording a synchronous provider method."""
    plain_ok = spec.defers_plain_calls()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        in_call = _IN_SYNC_CALL
        if in_call.active:  # the same billed call, seen again one layer down
            return wrapped(*args, **kwargs)
        tracker = _tracker._TRACKER
        if plain_ok and _takes_fast_path(spec, tracker, kwargs):
            started = _perf_counter()
            in_call.active = True
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                in_call.active = False
                _fail_plain(spec, tracker, instance, kwargs, started, exc)
                raise
            in_call.active = False
            return _finish_plain(spec, tracker, instance, kwargs, started, result)
        call, stream, kwargs = _begin(spec, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        in_call.active = True
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc, stream=stream)
            raise
        finally:
            in_call.active = False
        try:
            return _handle_result(spec, call, result, stream)
        except Exception:
            log_internal_error()
            return result

    return wrapper


def async_wrapper(spec: CallSpec) -> Callable[[Callable[..., Awaitable[Any]], Any,
                                               tuple[Any, ...], dict[str, Any]], Any]:
    """A wrapt wrapper recording an async provider method (the same paths as `sync_wrapper`)."""
    plain_ok = spec.defers_plain_calls()

    async def wrapper(wrapped: Callable[..., Awaitable[Any]], instance: Any,
                      args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _IN_CALL.get():
            return await wrapped(*args, **kwargs)
        tracker = _tracker._TRACKER
        if plain_ok and _takes_fast_path(spec, tracker, kwargs):
            started = _perf_counter()
            token = _IN_CALL.set(True)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                _IN_CALL.reset(token)
                _fail_plain(spec, tracker, instance, kwargs, started, exc)
                raise
            _IN_CALL.reset(token)
            return _finish_plain(spec, tracker, instance, kwargs, started, result)
        call, stream, kwargs = _begin(spec, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc, stream=stream)
            raise
        finally:
            _IN_CALL.reset(token)
        try:
            return _handle_result(spec, call, result, stream)
        except Exception:
            log_internal_error()
            return result

    return wrapper


def _finish_stream(call: Call, state: StreamState, *, early: bool = False,
                   error: BaseException | None = None) -> None:
    """Record a stream's call from what its chunks said (once: `Call.finish` guards it)."""
    if call._done:  # recorded already: a proxy freed after its stream ended, say
        return
    with capture_internal_exceptions():
        model, usage, chars = state.result()
        if error is not None:
            if usage is None:
                call.fail(error, stream=True)
            else:  # a stream that broke after reporting usage: those tokens were billed
                call.finish(model, usage, stream=True, status="error",
                            error_type=type(error).__name__)
            return
        extra_of = getattr(state, "extra", None)
        extra = extra_of() if callable(extra_of) else {}
        call.finish(model, usage, stream=True, estimated_output_chars=chars,
                    status="cancelled" if early and usage is None else "ok", **extra)


class _StreamRecord:
    """A stream's call and what its chunks said; records the call when the stream ends, and
    at the latest when the last of the proxy and its chunk generator is freed."""

    __slots__ = ("call", "state")

    def __init__(self, call: Call, state: StreamState) -> None:
        self.call = call
        self.state = state

    def finish(self, *, early: bool = False, error: BaseException | None = None) -> None:
        _finish_stream(self.call, self.state, early=early, error=error)

    def observe(self, chunk: Any) -> bool:
        """Whether the caller sees ``chunk``, after the stream state has read it."""
        call = self.call
        if call.ttfb_ms is None:
            call.ttfb_ms = call.elapsed_ms()
        try:
            return bool(self.state.on_chunk(chunk))
        except Exception:
            log_internal_error()
            return True

    def __del__(self) -> None:
        # A stream dropped without being exhausted or closed is still recorded.
        self.finish(early=True)


def _recorded_chunks(iterator: Iterator[Any], record: _StreamRecord) -> Iterator[Any]:
    """The provider's chunks, read on the way through; the call is recorded when they end.

    Per chunk this is a generator step and one `StreamState.on_chunk` call. It holds no
    reference to the proxy, so a proxy and its generator never keep each other alive.
    """
    call, state = record.call, record.state
    on_chunk = state.on_chunk
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            record.finish()
            return
        except BaseException as exc:
            record.finish(error=exc)
            raise
        if call.ttfb_ms is None:
            call.ttfb_ms = call.elapsed_ms()
        try:
            visible = on_chunk(chunk)
        except Exception:
            log_internal_error()
            visible = True
        if visible:
            try:
                yield chunk
            except GeneratorExit:  # the consumer stopped early (closed or dropped us)
                record.finish(early=True)
                raise


class _StreamProxyBase(wrapt.ObjectProxy[Any]):
    """Shared bookkeeping of the sync and async stream proxies."""

    def __init__(self, wrapped: Any, call: Call, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_record = _StreamRecord(call, state)
        self._self_iterator: Any = None

    def _self_observe(self, chunk: Any) -> bool:
        return self._self_record.observe(chunk)

    def _self_finish(self, *, early: bool = False, error: BaseException | None = None) -> None:
        self._self_record.finish(early=early, error=error)


class SyncStreamProxy(_StreamProxyBase):
    """Wraps a provider stream; records the call when it ends, however it ends.

    Iterating it runs one generator, `_recorded_chunks` (the provider SDKs' streams iterate
    through a generator too); ``next()`` on the proxy steps the same generator.
    """

    def __iter__(self) -> Iterator[Any]:
        chunks = self._self_iterator
        if chunks is None:
            chunks = self._self_iterator = _recorded_chunks(iter(self.__wrapped__),
                                                            self._self_record)
        return chunks  # type: ignore[no-any-return]

    def __next__(self) -> Any:
        return next(self.__iter__())

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
        iterator = self._self_iterator
        if iterator is None:
            iterator = self._self_iterator = self.__wrapped__.__aiter__()
        while True:
            try:
                chunk = await iterator.__anext__()
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
