"""A budget as the server's status reports it (``GET /api/budgets/status``), the alert the
guard (`llmlab._budgets`) passes to ``on_budget_alert``, and what it logs when the status
request is refused."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from llmlab.errors import APIError, BudgetExceededError

__all__ = ["Budget", "BudgetAlert", "announce", "crossed_thresholds", "log_unavailable"]

logger = logging.getLogger("llmlab")

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

    def exceeded(self, local: Decimal, reserved: Decimal, worst: Decimal) -> BudgetExceededError:
        """The error raised for a call of worst case ``worst`` that would pass this budget,
        with ``local`` spend on top of the status's and ``reserved`` by calls in flight."""
        spent = self.spent + local
        held = f" (and ${reserved} reserved by calls in flight)" if reserved else ""
        return BudgetExceededError(
            f"budget {self.name!r} ({self.id}) would be exceeded: spent "
            f"${spent}{held} of ${self.amount}, this call could cost up to ${worst}; "
            "the provider was not called",
            budget_id=self.id, scope=dict(self.scope), limit=self.amount,
            spent=spent, estimate=worst, resets_at=self.resets_at)


def log_unavailable(exc: Exception, advised: set[int], project: str | None) -> None:
    """Log a failed status request: at WARNING with the fix, once per status in
    ``advised``, when the answer means the configuration is wrong; else at DEBUG."""
    status = exc.status if isinstance(exc, APIError) else None
    advice = _ADVICE.get(status) if status is not None else None
    if status is None or advice is None or status in advised:
        logger.debug("llmlab: budget status unavailable: %s", exc)
        return
    advised.add(status)  # logged once: refreshes keep failing until it is fixed
    logger.warning("llmlab: budgets are not enforced: the server answered %s to the budget "
                   "status request (%s). Fix: %s", status, exc, advice.format(project=project))


@dataclass(frozen=True)
class BudgetAlert:
    """Passed to ``on_budget_alert`` when local spend crosses an ``alert`` budget threshold."""

    budget: Budget
    threshold: int
    spent: Decimal


def crossed_thresholds(budgets: Sequence[Budget], totals: Sequence[Decimal],
                       cover: Iterable[int],
                       alerted: set[tuple[str, str | None, int]]) -> list[BudgetAlert]:
    """The alert thresholds the budgets of ``cover`` passed for the first time this period,
    with ``totals`` of local spend on top of their status (each noted in ``alerted``)."""
    crossed = []
    for i in cover:
        budget = budgets[i]
        if budget.action != "alert" or not budget.amount:
            continue
        spent = budget.spent + totals[i]
        percent = spent * 100 / budget.amount
        for threshold in budget.thresholds:
            key = (budget.id, budget.period_start, threshold)
            if percent >= threshold and key not in alerted:
                alerted.add(key)
                crossed.append(BudgetAlert(budget, threshold, spent))
    return crossed


def announce(crossed: Iterable[BudgetAlert],
             on_alert: Callable[[BudgetAlert], None] | None) -> None:
    """Log each threshold crossed at WARNING and pass it to ``on_alert`` (whose failures are
    logged, never raised)."""
    for alert in crossed:
        logger.warning("llmlab: budget %r passed %d%% ($%s of $%s)", alert.budget.name,
                       alert.threshold, alert.spent, alert.budget.amount)
        if on_alert is not None:
            try:
                on_alert(alert)
            except Exception:
                logger.exception("llmlab: on_budget_alert callback raised (ignored)")
