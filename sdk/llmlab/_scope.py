"""Attribution scopes: `track()` and `@track_cost`.

A scope names who pays for the calls made inside it (project, job, user, tags) and adds up
what they cost. Scopes live in a `contextvars.ContextVar`, so threads and asyncio tasks each
see their own; they nest (inner values win, tags merge) and every call counts towards every
enclosing scope. A scope with ``max_cost`` refuses, before it is made, a call whose
worst-case cost would take the scope past it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar, overload

from llmlab.errors import ScopeBudgetExceededError
from llmlab.pricing._engine import money
from llmlab.schema import MAX_TAGS, CostEvent

__all__ = ["Scope", "current_scope", "track", "track_cost"]

logger = logging.getLogger("llmlab")

F = TypeVar("F", bound=Callable[..., Any])
_CURRENT: ContextVar[Scope | None] = ContextVar("llmlab_scope", default=None)


_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _checked_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as the wire format accepts them; a bad key fails here, at the caller's line."""
    out = {str(k): str(v) for k, v in (tags or {}).items()}
    for key, value in out.items():
        if not _TAG_KEY.match(key):
            raise ValueError(f"tag key {key!r} must be 1-64 characters of letters, digits, _.:-")
        if len(value) > 256:
            raise ValueError(f"tag {key!r} is longer than 256 characters")
    if len(out) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags, got {len(out)}")
    return out


class Scope:
    """One attribution scope; use it through `track()` or `@track_cost`.

    ``cost`` (Decimal), ``calls`` and ``events`` include the calls of nested scopes.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        job: str | None = None,
        user: str | None = None,
        tags: Mapping[str, str] | None = None,
        max_cost: Decimal | str | float | None = None,
        name: str | None = None,
        keep_events: int = 1000,
    ) -> None:
        self.project = project
        self.job = job
        self.user = user
        self.tags = _checked_tags(tags)
        self.max_cost = None if max_cost is None else Decimal(str(max_cost))
        self.name = name
        self.parent: Scope | None = None
        self.cost = Decimal(0)
        self.calls = 0
        self.unpriced_calls = 0
        self._wire_events: list[dict[str, Any]] = []
        self._events: list[CostEvent] = []
        self._keep_events = keep_events
        self._lock = threading.Lock()
        self._token: Token[Scope | None] | None = None
        self._started = 0.0
        self.duration_s = 0.0

    # -- attribution -------------------------------------------------------------------------

    def attribution(self) -> dict[str, Any]:
        """Project, job, user, function and tags for an event made inside this scope."""
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        out: dict[str, Any] = {"project": None, "job_id": None, "user_id": None,
                               "function": None, "tags": {}}
        for s in reversed(chain):  # outermost first, so inner values win
            if s.project is not None:
                out["project"] = s.project
            if s.job is not None:
                out["job_id"] = s.job
            if s.user is not None:
                out["user_id"] = s.user
            if s.name is not None:
                out["function"] = s.name
            out["tags"].update(s.tags)
        return out

    def _add(self, wire: dict[str, Any], total: Decimal, priced: bool) -> None:
        with self._lock:
            self.cost += total
            self.calls += 1
            if not priced:
                self.unpriced_calls += 1
            if len(self._wire_events) < self._keep_events:
                self._wire_events.append(wire)

    @property
    def events(self) -> list[CostEvent]:
        """The events of this scope (the first ``keep_events`` of them), oldest first."""
        with self._lock:
            while len(self._events) < len(self._wire_events):
                self._events.append(
                    CostEvent.model_validate(self._wire_events[len(self._events)]))
            return list(self._events)

    def check(self, estimate: Decimal) -> None:
        """Raise `ScopeBudgetExceededError` if ``estimate`` would pass a ``max_cost`` here or above."""
        scope: Scope | None = self
        while scope is not None:
            if scope.max_cost is not None and scope.cost + estimate > scope.max_cost:
                raise ScopeBudgetExceededError(
                    f"this call could cost up to ${estimate} and take the "
                    f"{scope.label()} scope past its max_cost of ${scope.max_cost} "
                    f"(spent ${scope.cost}); the provider was not called",
                    scope=scope.attribution(), limit=scope.max_cost, spent=scope.cost,
                    estimate=estimate)
            scope = scope.parent
        return None

    def label(self) -> str:
        """A short human name: the function, job or project of the scope."""
        return self.job or self.name or self.project or "unnamed"

    # -- context management --------------------------------------------------------------------

    def __enter__(self) -> Scope:
        self.parent = _CURRENT.get()
        self._token = _CURRENT.set(self)
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.duration_s = time.perf_counter() - self._started
        if self._token is not None:
            try:
                _CURRENT.reset(self._token)
            except ValueError:  # exited in another context (a generator moved across tasks)
                _CURRENT.set(self.parent)
            self._token = None
        from llmlab._tracker import get_tracker

        get_tracker().scope_finished(self, failed=exc_type is not None)

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    def summary(self) -> str:
        """One line for logs: ``document analysis job = 4 calls, $0.045``."""
        unpriced = f" ({self.unpriced_calls} unpriced)" if self.unpriced_calls else ""
        return f"{self.label()} = {self.calls} calls, ${money(self.cost)}{unpriced}"

    def __repr__(self) -> str:
        return f"<Scope {self.summary()}>"


def current_scope() -> Scope | None:
    """The innermost active scope of this thread or task, if any."""
    return _CURRENT.get()


def add_to_scopes(wire: dict[str, Any], total: Decimal, priced: bool) -> None:
    """Count a wire event in the current scope and every scope enclosing it."""
    scope = _CURRENT.get()
    while scope is not None:
        scope._add(wire, total, priced)
        scope = scope.parent


def track(
    *,
    project: str | None = None,
    job: str | None = None,
    user: str | None = None,
    tags: Mapping[str, str] | None = None,
    max_cost: Decimal | str | float | None = None,
    name: str | None = None,
) -> Scope:
    """A scope for the calls made inside a ``with`` (or ``async with``) block.

    >>> import llmlab
    >>> with llmlab.track(job="ticket-4411", user="cust-42", tags={"feature": "triage"}) as scope:
    ...     pass  # provider calls here are attributed to the ticket and the customer
    >>> scope.cost, scope.calls
    (Decimal('0'), 0)
    """
    return Scope(project=project, job=job, user=user, tags=tags, max_cost=max_cost, name=name)


@overload
def track_cost(func: F) -> F: ...


@overload
def track_cost(
    func: None = None,
    *,
    project: str | None = None,
    job: str | Callable[..., str] | None = None,
    user: str | None = None,
    tags: Mapping[str, str] | None = None,
    max_cost: Decimal | str | float | None = None,
) -> Callable[[F], F]: ...


def track_cost(
    func: F | None = None,
    *,
    project: str | None = None,
    job: str | Callable[..., str] | None = None,
    user: str | None = None,
    tags: Mapping[str, str] | None = None,
    max_cost: Decimal | str | float | None = None,
) -> F | Callable[[F], F]:
    """Attribute every LLM call a function makes, and total its cost per invocation.

    Works bare or with options, on sync, async, generator and async-generator functions.
    ``job`` may be a callable receiving the function's arguments, to name a job per call.

    >>> import llmlab
    >>> @llmlab.track_cost(job="document-analysis", tags={"feature": "summaries"})
    ... def analyse(doc: str) -> str:
    ...     return doc.upper()  # the OpenAI/Anthropic/Gemini calls made here are attributed
    >>> analyse("ok")
    'OK'
    """

    def decorate(fn: F) -> F:
        qualname = f"{fn.__module__}.{fn.__qualname__}"

        def new_scope(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Scope:
            job_name = job(*args, **kwargs) if callable(job) else job
            return Scope(project=project, job=job_name, user=user, tags=tags,
                         max_cost=max_cost, name=qualname)

        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = new_scope(args, kwargs)
                agen = fn(*args, **kwargs)
                sent: Any = None
                scope.__enter__()
                failed: BaseException | None = None
                try:
                    while True:
                        try:
                            item = await agen.asend(sent)
                        except StopAsyncIteration:
                            return
                        # Yield outside the scope: the consumer's calls are not ours.
                        token = _CURRENT.set(scope.parent)
                        try:
                            sent = yield item
                        finally:
                            _CURRENT.reset(token)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    await agen.aclose()
                    scope.__exit__(type(failed) if failed else None, failed, None)

            return agen_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = new_scope(args, kwargs)
                gen = fn(*args, **kwargs)
                scope.__enter__()
                failed: BaseException | None = None
                try:
                    sent: Any = None
                    while True:
                        try:
                            item = gen.send(sent)
                        except StopIteration as stop:
                            return stop.value
                        token = _CURRENT.set(scope.parent)
                        try:
                            sent = yield item
                        finally:
                            _CURRENT.reset(token)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    gen.close()
                    scope.__exit__(type(failed) if failed else None, failed, None)

            return gen_wrapper  # type: ignore[return-value]

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with new_scope(args, kwargs):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            with new_scope(args, kwargs):
                return fn(*args, **kwargs)

        return sync_wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
