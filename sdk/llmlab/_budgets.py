"""The SDK's budget guard: refuse a call before it would break a hard budget.

The guard keeps the server's budget status for its project (``GET /api/budgets/status``),
refreshed on a background thread, so a provider call never waits on the network. Before each
call it adds the local spend the status may not include yet (`llmlab._local_spend`: calls
whose events the server had not acknowledged when the status was requested) and the call's
worst-case cost; if a ``block`` budget would be passed it raises `BudgetExceededError` and
the provider is never called. ``alert`` budgets call ``on_budget_alert`` and log a warning
once per threshold and period. With the server unreachable the guard keeps enforcing from
its last known status plus local spend; a status the server refuses for the configuration
(a ``project=`` that is not the key's project, a bad key) is logged once with the fix.

Acknowledgements reach the guard from every delivery worker of the process
(`llmlab._results.ACK_LISTENERS`). The tracker records a call here before queueing its
event, so an acknowledgement always finds the call it acknowledges.

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
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from weakref import WeakSet

from llmlab._local_spend import MAX_OPEN, Key, LocalSpend, attribution
from llmlab._results import ACK_LISTENERS
from llmlab._tracker import INTERNAL_ERROR
from llmlab.errors import APIError, BudgetExceededError

__all__ = ["Budget", "BudgetAlert", "BudgetGuard"]

logger = logging.getLogger("llmlab")

#: Seconds between status refreshes.
DEFAULT_REFRESH_INTERVAL = 15.0

#: Status answers that mean the guard's configuration is wrong (budgets are not enforced
#: until it is fixed), with the fix.
_ADVICE = {
    401: "the API key was refused: check llmlab.init(api_key=...) or LLMLAB_API_KEY",
    403: "the API key may not read its project's budgets: use a key of the project",
    404: "project={project!r} is not the API key's project: pass the key's project (its slug "
         "or id) to llmlab.init(project=...), or leave it unset to use the key's project",
}


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class Budget:
    """One budget as the server reports it."""

    id: str
    name: str
    action: str
    amount: Decimal
    spent: Decimal
    scope: dict[str, str | None]
    thresholds: tuple[int, ...]
    period_start: str | None
    resets_at: datetime | None
    #: ``period_start`` as a POSIX time (None for ``total`` budgets).
    period_start_at: float | None = None
    # The scope as `covers` tests it, made once: it runs for every budget on every call.
    _project: str | None = field(default=None, init=False, repr=False, compare=False)
    _rules: tuple[tuple[str, str], ...] = field(default=(), init=False, repr=False,
                                                compare=False)
    _tag: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scope = self.scope
        tag = scope.get("tag")
        object.__setattr__(self, "_project", scope.get("project"))
        object.__setattr__(self, "_rules", tuple(
            (key, wanted) for key in ("job", "user", "model")
            if (wanted := scope.get(key)) is not None))
        if tag is not None:
            name, _, value = tag.partition("=")
            object.__setattr__(self, "_tag", (name, value))

    @classmethod
    def from_status(cls, data: Mapping[str, Any]) -> Budget:
        """Read one entry of the status contract."""
        start = _timestamp(data.get("period_start"))
        return cls(
            id=str(data["id"]), name=str(data.get("name") or data["id"]),
            action=str(data.get("action", "alert")), amount=Decimal(str(data["amount"])),
            spent=Decimal(str(data.get("spent", "0"))),
            scope={k: (None if v is None else str(v))
                   for k, v in (data.get("scope") or {}).items()},
            thresholds=tuple(int(t) for t in data.get("thresholds") or (100,)),
            period_start=data.get("period_start"),
            resets_at=_timestamp(data.get("resets_at")),
            period_start_at=start.timestamp() if start is not None else None,
        )

    @property
    def project_only(self) -> str | None:
        """Its project, when the scope names nothing else."""
        return None if self._rules or self._tag is not None else self._project

    @property
    def identity(self) -> tuple[str, tuple[tuple[str, str | None], ...]]:
        """What decides which calls count toward it: its id and scope."""
        return self.id, tuple(sorted(self.scope.items()))

    def covers(self, call: Mapping[str, Any]) -> bool:
        """Whether a call with this attribution (project, job, user, tags, model) counts.

        A call without a project counts toward the budgets of the key's project: the
        server files its event there, and that is the project whose status the guard reads
        when ``project=`` is unset.
        """
        if self._project is not None:
            project = call.get("project")
            if project is not None and project != self._project:
                return False
        for key, wanted in self._rules:
            if call.get(key) != wanted:
                return False
        if self._tag is not None:
            name, value = self._tag
            tags = call.get("tags") or {}
            if name not in tags or (value and tags[name] != value):
                return False
        return True


@dataclass(frozen=True)
class BudgetAlert:
    """Passed to ``on_budget_alert`` when local spend crosses an ``alert`` budget threshold."""

    budget: Budget
    threshold: int
    spent: Decimal


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
        #: its whole scope; the running totals): read without the lock by `check`, replaced
        #: as a whole under it.
        self._view: tuple[list[tuple[int, Budget, Decimal, str | None]], list[Decimal]] = (
            [], [])
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
        self._view = (self._view[0], self._spend.totals)
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
                              self._spend.totals)
                self._alerting = any(b.action == "alert" for b in budgets)
                periods = {(b.id, b.period_start) for b in budgets}
                self._alerted = {key for key in self._alerted if key[:2] in periods}
        return True

    def _unavailable(self, exc: Exception) -> None:
        status = exc.status if isinstance(exc, APIError) else None
        advice = _ADVICE.get(status) if status is not None else None
        if status is None or advice is None or status in self._advised:
            logger.debug("llmlab: budget status unavailable: %s", exc)
            return
        self._advised.add(status)  # logged once: refreshes keep failing until it is fixed
        logger.warning("llmlab: budgets are not enforced: the server answered %s to the budget "
                       "status request (%s). Fix: %s", status, exc,
                       advice.format(project=self._project))

    @property
    def budgets(self) -> list[Budget]:
        """The last known budgets."""
        return list(self._spend.budgets)

    def has_budgets(self) -> bool:
        """Whether the server reported any budget at the last refresh (cheap: per call)."""
        return bool(self._spend.budgets)

    # -- the per-call path -------------------------------------------------------------------

    def check(self, call: Mapping[str, Any], estimate: Callable[[], Decimal]) -> None:
        """Raise `BudgetExceededError` if the call's worst case would break a block budget."""
        blocks, totals = self._view
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
            if totals[i] + worst > headroom:
                spent = budget.spent + totals[i]
                raise BudgetExceededError(
                    f"budget {budget.name!r} ({budget.id}) would be exceeded: spent "
                    f"${spent} of ${budget.amount}, this call could cost up to ${worst}; "
                    "the provider was not called",
                    budget_id=budget.id, scope=dict(budget.scope), limit=budget.amount,
                    spent=spent, estimate=worst, resets_at=budget.resets_at)

    def record(self, call: Mapping[str, Any], amount: Decimal,
               event_id: str | None = None) -> None:
        """Count a recorded call's cost locally until the server has counted ``event_id``
        (without an id: until its period ends), and fire alert thresholds it crosses."""
        self.record_attributed(attribution(call), amount, event_id)

    def record_attributed(self, key: Key, amount: Decimal, event_id: str | None) -> None:
        """`record` given the call's attribution tuple, as the tracker has it per call."""
        if not amount:
            return
        lock = self._lock
        lock.acquire()  # not `with`: this runs on every call, and costs half as much
        try:
            cover = self._spend.record(key, amount, event_id, time.time())
            crossed = self._crossed(cover) if self._alerting else None
        finally:
            lock.release()
        if not crossed:
            return
        for alert in crossed:
            logger.warning("llmlab: budget %r passed %d%% ($%s of $%s)", alert.budget.name,
                           alert.threshold, alert.spent, alert.budget.amount)
            if self._on_alert is not None:
                try:
                    self._on_alert(alert)
                except Exception:
                    logger.exception("llmlab: on_budget_alert callback raised (ignored)")

    def _crossed(self, cover: tuple[int, ...]) -> list[BudgetAlert]:
        """Alert thresholds the budgets of ``cover`` passed for the first time this period
        (caller holds the lock)."""
        crossed = []
        budgets, totals = self._spend.budgets, self._spend.totals
        for i in cover:
            budget = budgets[i]
            if budget.action != "alert" or not budget.amount:
                continue
            spent = budget.spent + totals[i]
            percent = spent * 100 / budget.amount
            for threshold in budget.thresholds:
                key = (budget.id, budget.period_start, threshold)
                if percent >= threshold and key not in self._alerted:
                    self._alerted.add(key)
                    crossed.append(BudgetAlert(budget, threshold, spent))
        return crossed

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
