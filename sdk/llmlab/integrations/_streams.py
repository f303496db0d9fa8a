"""Stream proxies: a provider stream passed through chunk by chunk, its call recorded when it
ends, however it ends (exhausted, closed, broken, or dropped unfinished)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import wrapt

from llmlab._internal import capture_internal_exceptions, log_internal_error
from llmlab.integrations._call import Call, UsageSource

__all__ = ["AsyncStreamProxy", "StreamState", "SyncStreamProxy"]


class StreamState(Protocol):
    """Accumulates a stream's chunks; made per stream by `CallSpec.new_stream_state`."""

    def on_chunk(self, chunk: Any) -> bool:
        """Observe one chunk; return False to hide it from the caller (an injected usage chunk)."""

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        """(model reported, usage if the provider reported it, characters of output seen).

        A state may also define ``extra() -> dict`` with ``service_tier`` / ``region`` read
        from the stream; they are passed on to the event.
        """


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
