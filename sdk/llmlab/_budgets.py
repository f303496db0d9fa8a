"""The SDK's budget guard: refuse a call before it would break a hard budget.

The guard keeps the server's budget status for its project (``GET /api/budgets/status``),
refreshed on a background thread, so a provider call never waits on the network. Before each
call it adds the spend this process recorded since the status was fetched (not yet counted by
the server) and the call's worst-case cost; if a ``block`` budget would be passed it raises
`BudgetExceededError` and the provider is never called. ``alert`` budgets call
``on_budget_alert`` and log a warning once per threshold and period. With the server
unreachable the guard keeps enforcing from its last known status plus local spend.

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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from weakref import WeakSet

from llmlab.errors import BudgetExceededError

__all__ = ["Budget", "BudgetAlert", "BudgetGuard"]

logger = logging.getLogger("llmlab")

#: Seconds between status refreshes, and how long local spend is kept after a refresh (the
#: server may not have received the events of the last moments before it answered).
DEFAULT_REFRESH_INTERVAL = 15.0
ACK_SLACK = 30.0


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

    @classmethod
    def from_status(cls, data: Mapping[str, Any]) -> Budget:
        """Read one entry of the status contract."""
        resets = data.get("resets_at")
        return cls(
            id=str(data["id"]), name=str(data.get("name") or data["id"]),
            action=str(data.get("action", "alert")), amount=Decimal(str(data["amount"])),
            spent=Decimal(str(data.get("spent", "0"))),
            scope={k: (None if v is None else str(v))
                   for k, v in (data.get("scope") or {}).items()},
            thresholds=tuple(int(t) for t in data.get("thresholds") or (100,)),
            period_start=data.get("period_start"),
            resets_at=datetime.fromisoformat(str(resets).replace("Z", "+00:00")) if resets else None,
        )

    def covers(self, call: Mapping[str, Any]) -> bool:
        """Whether a call with this attribution (project, job, user, tags, model) counts."""
        for key in ("project", "job", "user", "model"):
            wanted = self.scope.get(key)
            if wanted is not None and call.get(key) != wanted:
                return False
        tag = self.scope.get("tag")
        if tag is not None:
            name, _, value = tag.partition("=")
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


#: Calls whose spend is kept locally until the server has counted them (see `BudgetGuard`).
MAX_LOCAL_SPEND = 50_000


@dataclass
class _Spend:
    at: float
    amount: Decimal
    call: dict[str, Any] = field(default_factory=dict)


class BudgetGuard:
    """Caches budget status and checks calls against it; see the module docstring."""

    def __init__(self, fetch: Callable[[], list[Mapping[str, Any]]], *,
                 refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 on_alert: Callable[[BudgetAlert], None] | None = None) -> None:
        self._fetch = fetch
        self._refresh_interval = refresh_interval
        self._on_alert = on_alert
        self._budgets: list[Budget] = []
        self._fetched_at: float | None = None
        # Bounded: while the server is unreachable nothing prunes it, and every check of a
        # covered call adds it up; beyond this many calls the oldest local spend is forgotten.
        self._local: deque[_Spend] = deque(maxlen=MAX_LOCAL_SPEND)
        self._alerted: set[tuple[str, str | None, int]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    # -- status ------------------------------------------------------------------------------

    def start(self) -> None:
        """Fetch in the background now and every ``refresh_interval`` seconds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llmlab-budgets", daemon=True)
            self._thread.start()
            _started.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked child has no refresh thread (threads do not survive ``fork``) and may
        inherit a held lock: new ones, and the refreshes start again unless stopped."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        if not self._stopped:
            self.start()

    def stop(self) -> None:
        """Stop refreshing (the last status stays in force)."""
        self._stopped = True
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopped:
            self.refresh()
            self._wake.wait(self._refresh_interval)
            self._wake.clear()

    def refresh(self) -> bool:
        """Fetch the status once (on the caller's thread); False when the server did not answer."""
        asked = time.monotonic()
        try:
            budgets = [Budget.from_status(b) for b in self._fetch()]
        except Exception as exc:  # the network is not the caller's problem
            logger.debug("llmlab: budget status unavailable: %s", exc)
            return False
        with self._lock:
            self._budgets = budgets
            self._fetched_at = asked
            # The server has counted what it received before it answered; keep the rest.
            while self._local and self._local[0].at < asked - ACK_SLACK:
                self._local.popleft()
        return True

    @property
    def budgets(self) -> list[Budget]:
        """The last known budgets."""
        return list(self._budgets)

    def has_budgets(self) -> bool:
        """Whether the server reported any budget at the last refresh (cheap: per call)."""
        return bool(self._budgets)

    # -- the per-call path -------------------------------------------------------------------

    def _pending(self, budget: Budget) -> Decimal:
        """Local spend the server has probably not counted yet, for one budget."""
        fetched = self._fetched_at or 0.0
        cutoff = fetched - ACK_SLACK
        return sum((s.amount for s in self._local if s.at >= cutoff and budget.covers(s.call)),
                   Decimal(0))

    def check(self, call: Mapping[str, Any], estimate: Callable[[], Decimal]) -> None:
        """Raise `BudgetExceededError` if the call's worst case would break a block budget."""
        budgets = [b for b in self._budgets if b.action == "block" and b.covers(call)]
        if not budgets:
            return
        worst = estimate()
        with self._lock:
            for budget in budgets:
                spent = budget.spent + self._pending(budget)
                if spent + worst > budget.amount:
                    raise BudgetExceededError(
                        f"budget {budget.name!r} ({budget.id}) would be exceeded: spent "
                        f"${spent} of ${budget.amount}, this call could cost up to ${worst}; "
                        "the provider was not called",
                        budget_id=budget.id, scope=dict(budget.scope), limit=budget.amount,
                        spent=spent, estimate=worst, resets_at=budget.resets_at)

    def record(self, call: Mapping[str, Any], amount: Decimal) -> None:
        """Count a recorded call's cost locally, and fire alert thresholds it crosses."""
        if not amount:
            return
        crossed: list[BudgetAlert] = []
        with self._lock:
            self._local.append(_Spend(time.monotonic(), amount, dict(call)))
            for budget in self._budgets:
                if budget.action != "alert" or not budget.covers(call) or not budget.amount:
                    continue
                spent = budget.spent + self._pending(budget)
                percent = spent * 100 / budget.amount
                for threshold in budget.thresholds:
                    key = (budget.id, budget.period_start, threshold)
                    if percent >= threshold and key not in self._alerted:
                        self._alerted.add(key)
                        crossed.append(BudgetAlert(budget, threshold, spent))
        for alert in crossed:
            logger.warning("llmlab: budget %r passed %d%% ($%s of $%s)", alert.budget.name,
                           alert.threshold, alert.spent, alert.budget.amount)
            if self._on_alert is not None:
                try:
                    self._on_alert(alert)
                except Exception:
                    logger.exception("llmlab: on_budget_alert callback raised (ignored)")


#: Guards whose refresh thread was started: restarted in a forked child (gunicorn --preload,
#: multiprocessing), where budgets would otherwise never refresh and local spend pile up.
_started: WeakSet[BudgetGuard] = WeakSet()


def _after_fork_in_child() -> None:
    for guard in list(_started):
        try:
            guard._after_fork_in_child()
        except Exception:
            logger.debug("llmlab: could not restart budget refreshes after fork", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
