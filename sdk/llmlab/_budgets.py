"""The SDK's budget guard: refuse a call before it would break a hard budget.

The guard keeps the server's budget status for its project (``GET /api/budgets/status``),
refreshed on a background thread, so a provider call never waits on the network. Before each
call (`reserve`) it adds the local spend the status may not include yet
(`llmlab._local_spend`: calls whose events the server had not acknowledged when the status
was requested), the worst cases reserved by calls not yet priced, and the call's own worst
case (`llmlab._estimate`); if a ``block`` budget would be passed it raises
`BudgetExceededError` and the provider is never called, else it reserves that worst case,
in the same locked step. The call is priced later, on the delivery worker, which *settles*
the reservation: replaces it with the real cost (`record_attributed` with the token).
Far from a budget's limit, `reserve_request` reserves the dearest call the model allows
instead, without reading the request: a slot kept reserved (`llmlab._budget_routes`).
Amounts on this path are whole pico-dollars (ints). ``alert`` budgets call
``on_budget_alert`` and log a warning once per threshold and period.

With the server unreachable the guard keeps enforcing from
its last known status plus local spend; a status the server refuses for the configuration
(a ``project=`` that is not the key's project, a bad key) is logged once with the fix.

Acknowledgements reach the guard from every delivery worker of the process
(`llmlab._results.ACK_LISTENERS`). A call is recorded (settled) here when its event is
built, before the event is sent, so an acknowledgement always finds the call it
acknowledges.

The status contract (one entry per budget of the project)::

    {"budgets": [{"id": "b_1", "name": "monthly cap", "action": "block" | "alert",
                  "scope": {"project": "support-bot", "job": null, "user": null,
                            "tag": null, "model": null},
                  "amount": "100", "spent": "12.5", "thresholds": [50, 80, 100],
                  "period": "monthly", "period_start": "...", "resets_at": "...",
                  "as_of": "2026-11-22T10:00:00Z"}]}
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any
from weakref import WeakSet

from llmlab import _budget_routes as slots
from llmlab._budget_routes import ROOM_FACTOR, Route, Token
from llmlab._budget_status import Budget, BudgetAlert, announce, crossed_thresholds, log_unavailable
from llmlab._estimate import ceiling_pico, from_pico, to_pico, worst_case_pico
from llmlab._internal import INTERNAL_ERROR, log_internal_error
from llmlab._local_spend import MAX_OPEN, MAX_REMEMBERED, Key, LocalSpend, attribution
from llmlab._results import ACK_LISTENERS
from llmlab.errors import BudgetExceededError
from llmlab.pricing import Catalogue

__all__ = ["ROOM_FACTOR", "Budget", "BudgetAlert", "BudgetGuard"]

logger = logging.getLogger("llmlab")

#: Seconds between status refreshes.
DEFAULT_REFRESH_INTERVAL = 15.0


class BudgetGuard:
    """Caches budget status and checks calls against it; see the module docstring."""

    def __init__(self, fetch: Callable[[], Sequence[Mapping[str, Any]]], *,
                 refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 on_alert: Callable[[BudgetAlert], None] | None = None,
                 project: str | None = None, max_open: int = MAX_OPEN) -> None:
        """``fetch()`` returns the status entries (and raises when the server does not
        answer); ``project`` is only named in the advice logged when it is refused."""
        self._fetch = fetch
        self._refresh_interval = refresh_interval
        self._on_alert = on_alert
        self._project = project
        self._spend = LocalSpend(max_open)
        #: (per block budget: its index, itself, ``amount - spent``, its project when that is
        #: its whole scope; the running totals; the reserved totals in pico-dollars): read
        #: without the lock by `check`, replaced as a whole under it.
        self._view: tuple[list[tuple[int, Budget, Decimal, str | None]], list[Decimal],
                          list[int]] = ([], [], [])
        #: Per budget index: ``amount - spent`` of a block budget, None for an alert one.
        self._limits: list[Decimal | None] = []
        #: Whether any budget of the last status is a ``block`` one (read on every call).
        self.blocking = False
        #: Model -> the `Route` of its calls (a new dict on every refresh).
        self._routes: dict[str, Route] = {}
        #: Attribution -> the block budgets covering it (a new dict when the budgets change).
        self._blocks_of: dict[Key, tuple[int, ...]] = {}
        self._alerting = False
        self._alerted: set[tuple[str, str | None, int]] = set()
        self._advised: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        ACK_LISTENERS.add(self)

    # -- status ------------------------------------------------------------------------------

    def start(self) -> None:
        """Fetch in the background now and every ``refresh_interval`` seconds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llmlab-budgets", daemon=True)
            self._thread.start()
            _started.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked child has no refresh thread (threads do not survive ``fork``) and may
        inherit a held lock: new ones, and the refreshes start again unless stopped. The
        parent's unacknowledged calls stay the parent's to count (its worker delivers them):
        the child starts with none, as its worker does."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._spend.reset()
        self._routes = {}
        self._view = (self._view[0], self._spend.totals, self._spend.reserved)
        if not self._stopped:
            self.start()

    def stop(self) -> None:
        """Stop refreshing (the last status stays in force)."""
        self._stopped = True
        self._wake.set()
        ACK_LISTENERS.discard(self)

    def _loop(self) -> None:
        while not self._stopped:
            self.refresh()
            self._wake.wait(self._refresh_interval)
            self._wake.clear()

    def refresh(self) -> bool:
        """Fetch the status once (on the caller's thread); False when the server did not answer."""
        with self._lock:
            cut = self._spend.cut()  # before the request: what is acknowledged by now is in it
        try:
            budgets = [Budget.from_status(b) for b in self._fetch()]
        except Exception as exc:  # the network is not the caller's problem
            self._unavailable(exc)
            return False
        with self._lock:
            if self._spend.apply(budgets, cut):
                self._view = ([(i, b, b.amount - b.spent, b.project_only)
                               for i, b in enumerate(budgets) if b.action == "block"],
                              self._spend.totals, self._spend.reserved)
                limits = [b.amount - b.spent if b.action == "block" else None for b in budgets]
                self._limits = limits if any(x is not None for x in limits) else []
                self.blocking = bool(self._limits)
                self._blocks_of = {}
                for route in self._routes.values():
                    slots.retire(self._spend, route)
                self._routes = {}
                self._alerting = any(b.action == "alert" for b in budgets)
                periods = {(b.id, b.period_start) for b in budgets}
                self._alerted = {key for key in self._alerted if key[:2] in periods}
        return True

    def _unavailable(self, exc: Exception) -> None:
        log_unavailable(exc, self._advised, self._project)

    @property
    def budgets(self) -> list[Budget]:
        """The last known budgets."""
        return list(self._spend.budgets)

    def has_budgets(self) -> bool:
        """Whether the server reported any budget at the last refresh (cheap: per call)."""
        return bool(self._spend.budgets)

    # -- the per-call path -------------------------------------------------------------------

    def check(self, call: Mapping[str, Any], estimate: Callable[[], Decimal]) -> None:
        """Raise `BudgetExceededError` if the call's worst case would break a block budget
        (nothing reserved: `reserve` is what the integrations call)."""
        blocks, totals, reserved = self._view
        worst: Decimal | None = None
        for i, budget, headroom, project in blocks:
            if project is not None:  # `covers`, inlined for the usual project-wide budget
                called = call.get("project")
                if called is not None and called != project:
                    continue
            elif not budget.covers(call):
                continue
            if worst is None:
                worst = estimate()
            held = from_pico(reserved[i])
            if totals[i] + held + worst > headroom:
                with self._lock:
                    if slots.reclaim(self._spend):  # idle slots refuse nothing
                        held = from_pico(reserved[i])
                if totals[i] + held + worst > headroom:
                    raise budget.exceeded(totals[i], held, worst)

    def reserve(self, key: Key, estimate: Callable[[], Decimal | int]) -> int | None:
        """Check a call attributed ``key`` (`attribution`) against the block budgets covering
        it and reserve its worst case in their totals, as one step under the lock (so
        concurrent callers cannot both pass on the same headroom). Returns the reservation's
        token for `record_attributed` (None: nothing reserved, no block budget covers it or
        its worst case is $0); raises `BudgetExceededError` with nothing reserved.
        ``estimate()`` gives the worst case in dollars, or in whole pico-dollars (an int,
        `worst_case_pico`: what the integrations pass, so the check is integer arithmetic)."""
        blocks_of = self._blocks_of  # read without the lock: replaced, never changed, on refresh
        blocks = blocks_of.get(key)
        if blocks is None:
            with self._lock:
                blocks_of = self._blocks_of
                blocks = self._blocks_covering(key)
        if not blocks:
            return None
        try:
            worst = estimate()  # outside the lock: it reads the request
        except Exception:
            logger.exception("llmlab: could not estimate the cost of a call; not blocking it",
                             extra={INTERNAL_ERROR: True})
            return None
        if not worst:
            return None
        if not isinstance(worst, int):
            worst = to_pico(worst)
        lock = self._lock
        lock.acquire()  # not `with`: this runs on every budgeted call
        try:
            if self._blocks_of is not blocks_of:  # the budgets changed meanwhile
                blocks = self._blocks_covering(key)
                if not blocks:
                    return None
            spend = self._spend
            short = slots.short_of(spend, blocks, worst)
            if short is not None and slots.reclaim(spend):  # idle slots refuse nothing
                short = slots.short_of(spend, blocks, worst)
            if short is not None:
                raise spend.budgets[short].exceeded(
                    spend.totals[short], from_pico(spend.reserved[short]), from_pico(worst))
            return spend.reserve(key, blocks, worst)
        finally:
            lock.release()

    def reserve_request(self, project: str | None, model: Any, kwargs: Mapping[str, Any],
                        catalogue: Catalogue, provider_of: Callable[[Any], str],
                        instance: Any) -> Token | None:
        """Check and reserve a call made outside any scope (what the integrations call):
        ``model`` and ``kwargs`` are the request's, ``provider_of(instance)`` its provider.
        Returns the reservation's token (None: nothing reserved); raises
        `BudgetExceededError`; llmlab's own failures are logged and reserve nothing.

        Far from the limits of the block budgets covering the call, it takes a slot of its
        model's route: the most any call to the model can cost, reserved already, so the
        request is never read (`llmlab._budget_routes`). Nearer the limit, and for requests
        with tools (fees the ceiling does not hold), under a markup, or to a model without
        token limits, `reserve` with the request's worst case (`worst_case_pico`).
        """
        try:
            if type(model) is not str or not model:
                return None
            if "tools" not in kwargs:
                route = self._routes.get(model)  # read without the lock: replaced on refresh
                if (route is None or route.project != project
                        or route.resolved is not catalogue._resolved):
                    route = self._route(project, model, catalogue)
                unit = route.unit
                if not route.cover or unit == 0:
                    return None
                if unit is not None and not catalogue._markups:
                    try:
                        return route.idle.pop()  # atomic: a slot no other call holds
                    except IndexError:
                        pass
                    lock = self._lock
                    lock.acquire()  # not `with`: a cheaper exit on the path of a new slot
                    try:
                        if slots.take_slot(self._spend, route):
                            return route
                    finally:
                        lock.release()
            return self.reserve((project, None, None, model, ()), partial(
                worst_case_pico, catalogue, provider_of(instance), model, kwargs, project))
        except BudgetExceededError:
            raise
        except Exception:
            log_internal_error()
            return None

    def _route(self, project: str | None, model: str, catalogue: Catalogue) -> Route:
        """A new route for ``model``'s calls (the one it replaces is retired)."""
        key: Key = (project, None, None, model, ())
        with self._lock:
            routes = self._routes
            cover = self._blocks_covering(key)
        route = Route(key, cover, ceiling_pico(catalogue, model) if cover else 0,
                      catalogue._resolved)
        with self._lock:
            if self._routes is not routes:  # a new status meanwhile: used once, not kept
                route.live = False
                return route
            old = routes.pop(model, None)
            if old is not None:
                slots.retire(self._spend, old)
            if len(routes) >= MAX_REMEMBERED:
                for old in routes.values():
                    slots.retire(self._spend, old)
                routes.clear()
            routes[model] = route
        return route

    def _blocks_covering(self, key: Key) -> tuple[int, ...]:
        """The block budgets covering ``key``, remembered (caller holds the lock)."""
        limits = self._limits
        blocks = tuple([i for i in self._spend.cover(key) if limits and limits[i] is not None])
        if len(self._blocks_of) >= MAX_REMEMBERED:
            self._blocks_of = {}
        self._blocks_of[key] = blocks
        return blocks

    @property
    def reservations(self) -> int:
        """Calls whose worst case is reserved and not yet settled (priced)."""
        with self._lock:
            return self._spend.reservations + slots.in_flight(self._spend)

    def local(self) -> list[tuple[Decimal, Decimal]]:
        """Per budget of the last status: (local spend the status may not include, worst
        cases reserved by calls not yet settled)."""
        with self._lock:
            spend = self._spend
            return [(total, from_pico(held - idle)) for total, held, idle
                    in zip(spend.totals, spend.reserved, slots.idle_reserved(spend), strict=True)]

    def keep(self, token: Token) -> None:
        """Keep a reservation as spend: its call's event could not be built, so its real
        cost is unknown (and the server will never count it)."""
        with self._lock:
            if isinstance(token, Route):
                slots.keep_slot(self._spend, token, time.time())
            else:
                self._spend.keep(token)

    def record(self, call: Mapping[str, Any], amount: Decimal,
               event_id: str | None = None) -> None:
        """Count a recorded call's cost locally until the server has counted ``event_id``
        (without an id: until its period ends), and fire alert thresholds it crosses."""
        self.record_attributed(attribution(call), amount, event_id)

    def record_attributed(self, key: Key, amount: Decimal, event_id: str | None,
                          reservation: Token | None = None) -> None:
        """`record` given the call's attribution tuple, as the tracker has it per call;
        with ``reservation`` (its `reserve_request` token) this *settles* the call: the
        reservation is replaced by ``amount``, the real cost, in one step."""
        if not amount and reservation is None:
            return
        lock = self._lock
        lock.acquire()  # not `with`: this runs on every call, and costs half as much
        try:
            spend = self._spend
            if isinstance(reservation, int) and not spend.settle(reservation):
                spend.unkeep(reservation)  # kept for the bound: replaced, not added
            cover = spend.record(key, amount, event_id, time.time()) if amount else ()
            if isinstance(reservation, Route):
                slots.give_back(spend, reservation)  # after its cost counts: is there room still?
            crossed = (crossed_thresholds(spend.budgets, spend.totals, cover, self._alerted)
                       if self._alerting and cover else None)
        finally:
            lock.release()
        if crossed:
            announce(crossed, self._on_alert)

    def acknowledged(self, event_ids: Iterable[str]) -> None:
        """The server stored these events (called by the delivery worker, never raises)."""
        try:
            with self._lock:
                self._spend.acknowledge(event_ids)
        except Exception:
            logger.exception("llmlab: internal error in the budget guard (ignored)",
                             extra={INTERNAL_ERROR: True})


#: Guards whose refresh thread was started: restarted in a forked child (gunicorn --preload,
#: multiprocessing), where budgets would otherwise never refresh.
_started: WeakSet[BudgetGuard] = WeakSet()


def _after_fork_in_child() -> None:
    for guard in list(_started):
        try:
            guard._after_fork_in_child()
        except Exception:
            logger.debug("llmlab: could not restart budget refreshes after fork", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
