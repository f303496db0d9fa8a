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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmlab import _tracker
from llmlab._estimate import worst_case_cost
from llmlab._internal import INTERNAL_ERROR, log_internal_error
from llmlab._scope import _CURRENT as _CURRENT_SCOPE
from llmlab.errors import BudgetExceededError
from llmlab.integrations._call import RELEASED, Call, UsageSource
from llmlab.integrations._streams import AsyncStreamProxy, StreamState, SyncStreamProxy

if TYPE_CHECKING:
    from llmlab._budget_routes import Token

__all__ = ["AsyncStreamProxy", "Call", "CallSpec", "StreamState", "SyncStreamProxy", "UsageSource",
           "async_wrapper", "sync_wrapper"]

logger = logging.getLogger("llmlab")
_perf_counter = time.perf_counter
_time = time.time

#: Set while an instrumented call runs: an instrumented call inside it (a wrapped client under
#: a patched class, `parse` calling `create`) is the same billed call and is not recorded again.
#: Async calls need a context variable (tasks interleave on one thread); a sync call runs to
#: its end on its thread, so a thread-local flag does, at a fraction of the cost.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llmlab_in_call", default=False)


class _InSyncCall(threading.local):
    active = False


_IN_SYNC_CALL = _InSyncCall()


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
    #: The model a request naming none is billed as (the Images API's default), or None.
    default_model: Callable[[dict[str, Any]], str | None] | None = None
    #: The data-residency region calls on an instance are billed in (an OpenAI client of a
    #: regional host), or None; read when the call's event is built (on the worker thread
    #: for a fast-path call), so the calling thread does not pay for it.
    region: Callable[[Any], str | None] | None = None

    def defers_plain_calls(self) -> bool:
        """Whether a plain (non-streamed) call may take the fast path: nothing but
        `read_result` is needed to record a result outside the `adapted_types`."""
        return self.adapt_result is None or self.adapted_types is not None


def _begin(spec: CallSpec, instance: Any,
           kwargs: dict[str, Any]) -> tuple[Call | None, bool, dict[str, Any]]:
    """Start recording a call: (the call, or None to pass it through untouched; whether it
    streams; the request's keywords as they will be sent).

    Raises `BudgetExceededError` (on purpose) when the call's worst case would break a
    ``max_cost`` scope or a blocking budget, and otherwise reserves that worst case in the
    block budgets covering the call (the call's record settles it); llmlab's own failures
    are logged and swallowed.
    """
    call = None
    stream = False
    reservation = None
    try:
        tracker = _tracker._TRACKER  # get_tracker(), without a call on the hot path
        provider = spec.provider(instance)
        model = kwargs.get(spec.model_kwarg)
        if model is None and spec.default_model is not None:
            model = spec.default_model(kwargs)
        model_name = model if isinstance(model, str) else None
        guard = tracker.budget_guard
        if model_name and (_CURRENT_SCOPE.get() is not None
                           or (guard is not None and guard.blocking)):
            reservation = tracker.check_budget(provider, model_name, _once(
                lambda: _worst_case(tracker, provider, model_name, kwargs)))
        if tracker.active:
            call = Call(tracker, provider, model_name, spec.operation, kwargs,
                        reservation=reservation)
            if spec.region is not None:
                call.region = spec.region(instance)
            is_stream = spec.is_stream
            stream = bool(kwargs.get("stream")) if is_stream is stream_kwarg else is_stream(
                kwargs)
            if stream and spec.prepare_stream is not None:
                kwargs = spec.prepare_stream(instance, kwargs)
    except BudgetExceededError:
        raise
    except Exception:
        log_internal_error()
        if call is None and reservation is not None:  # the call goes unrecorded: kept
            tracker.budget_guard.keep(reservation)
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
        return worst_case_cost(getattr(tracker, "catalogue", None), provider, model, kwargs,
                               tracker.options.project)
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
    extra, started, ended, when, reservation)``: a tuple is the cheapest record to make on
    the calling thread (see `llmlab._event_items.encode`). None when it cannot be built
    (logged; a budget reservation is then kept as spend).
    """
    (_, tracker, spec, instance, requested, model, usage, extra, started, ended, when,
     reservation) = record
    try:
        call = Call(tracker, spec.provider(instance),
                    requested if isinstance(requested, str) else None, spec.operation,
                    RELEASED, started, reservation)
        if spec.region is not None:
            call.region = spec.region(instance)
        call._set_outcome(model, usage, False, 0, "ok", None, extra, ended, when)
    except Exception:
        log_internal_error()
        if reservation is not None:
            tracker.budget_guard.keep(reservation)
        return None
    return tracker.build_deferred(call)  # type: ignore[no-any-return]


def _finish_unqueued(spec: CallSpec, tracker: Any, instance: Any, kwargs: dict[str, Any],
                     started: float, result: Any, reservation: Token | None) -> Any:
    """The fast path after a plain call whose result is not queued as it is (one
    `adapt_result` wraps, or one without usage, estimated from the request, which the caller
    may change later): recorded by the full path now."""
    try:
        return _handle_result(spec, _late_call(spec, tracker, instance, kwargs, started,
                                               reservation), result, False)
    except Exception:
        log_internal_error()
        _keep(tracker, reservation)
        return result


def _keep(tracker: Any, reservation: Token | None) -> None:
    """Keep an unrecorded call's reservation as spend (a no-op once settled; never raises)."""
    if reservation is not None:
        try:
            tracker.budget_guard.keep(reservation)
        except Exception:
            log_internal_error()


def _fail_plain(spec: CallSpec, tracker: Any, instance: Any, kwargs: dict[str, Any],
                started: float, exc: BaseException, reservation: Token | None) -> None:
    """The fast path after a plain call raised: record the failed call (it settles the
    reservation at what the failure cost, nothing unless it reported usage)."""
    try:
        _late_call(spec, tracker, instance, kwargs, started, reservation).fail(exc)
    except Exception:
        log_internal_error()
        _keep(tracker, reservation)  # unrecorded: the worst case stays


def _late_call(spec: CallSpec, tracker: Any, instance: Any, kwargs: dict[str, Any],
               started: float, reservation: Token | None) -> Call:
    model = kwargs.get(spec.model_kwarg)
    return Call(tracker, spec.provider(instance), model if isinstance(model, str) else None,
                spec.operation, kwargs, started, reservation)


# The wrappers below are the per-call hot path: they use try/except (free in Python 3.11
# when nothing is raised) instead of `capture_internal_exceptions()` blocks.
#
# The fast path: a plain call (not streamed) whose pricing the tracker defers (no `track()`
# scope, no ``on_event`` callback: `defers_pricing`) is checked against the block budgets
# (`BudgetGuard.reserve_request`), timed and queued as a `_build_plain` record, priced on
# the worker, which settles the reservation; everything else goes through `_begin` and
# `_handle_result`. Both record the same event (the tests run every integration both ways).
# The sync and async wrappers repeat their few lines of queueing instead of sharing a
# function: a call more on this path costs about half a microsecond between the provider
# SDK's steps (docs/performance.md).

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
    stream_flag = spec.is_stream is stream_kwarg  # the usual ``stream=True``: read inline
    read_result, adapted, model_kwarg = spec.read_result, spec.adapted_types, spec.model_kwarg

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        in_call = _IN_SYNC_CALL
        if in_call.active:  # the same billed call, seen again one layer down
            return wrapped(*args, **kwargs)
        tracker = _tracker._TRACKER
        # `_takes_fast_path`, inlined for the usual case (one call less on every call).
        if plain_ok and ((tracker.worker is not None and _CURRENT_SCOPE.get() is None
                          and not tracker.options.on_event and not kwargs.get("stream"))
                         if stream_flag else _takes_fast_path(spec, tracker, kwargs)):
            guard = tracker.budget_guard
            reservation = (guard.reserve_request(
                tracker.options.project, kwargs.get(model_kwarg), kwargs, tracker.catalogue,
                spec.provider, instance) if guard is not None and guard.blocking else None)
            started = _perf_counter()
            in_call.active = True
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                in_call.active = False
                _fail_plain(spec, tracker, instance, kwargs, started, exc, reservation)
                raise
            in_call.active = False
            # Queue the call for the worker (`_build_plain`): inlined, as every frame on this
            # path costs more here, after the provider SDK's work, than in a loop.
            ended = _perf_counter()
            try:
                if adapted is None or type(result).__name__ not in adapted:
                    model, usage, extra = read_result(result)
                    if usage is not None:
                        if not tracker.worker.submit((
                                _build_plain, tracker, spec, instance, kwargs.get(model_kwarg),
                                model, usage, extra, started, ended, _time(), reservation)) \
                                and reservation is not None:
                            _keep(tracker, reservation)  # never priced: its worst case stays
                        return result
            except Exception:
                log_internal_error()
                _keep(tracker, reservation)
                return result
            return _finish_unqueued(spec, tracker, instance, kwargs, started, result,
                                    reservation)
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
    stream_flag = spec.is_stream is stream_kwarg
    read_result, adapted, model_kwarg = spec.read_result, spec.adapted_types, spec.model_kwarg

    async def wrapper(wrapped: Callable[..., Awaitable[Any]], instance: Any,
                      args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _IN_CALL.get():
            return await wrapped(*args, **kwargs)
        tracker = _tracker._TRACKER
        if plain_ok and ((tracker.worker is not None and _CURRENT_SCOPE.get() is None
                          and not tracker.options.on_event and not kwargs.get("stream"))
                         if stream_flag else _takes_fast_path(spec, tracker, kwargs)):
            guard = tracker.budget_guard
            reservation = (guard.reserve_request(
                tracker.options.project, kwargs.get(model_kwarg), kwargs, tracker.catalogue,
                spec.provider, instance) if guard is not None and guard.blocking else None)
            started = _perf_counter()
            token = _IN_CALL.set(True)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                _IN_CALL.reset(token)
                _fail_plain(spec, tracker, instance, kwargs, started, exc, reservation)
                raise
            _IN_CALL.reset(token)
            ended = _perf_counter()  # as in `sync_wrapper`
            try:
                if adapted is None or type(result).__name__ not in adapted:
                    model, usage, extra = read_result(result)
                    if usage is not None:
                        if not tracker.worker.submit((
                                _build_plain, tracker, spec, instance, kwargs.get(model_kwarg),
                                model, usage, extra, started, ended, _time(), reservation)) \
                                and reservation is not None:
                            _keep(tracker, reservation)
                        return result
            except Exception:
                log_internal_error()
                _keep(tracker, reservation)
                return result
            return _finish_unqueued(spec, tracker, instance, kwargs, started, result,
                                    reservation)
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
