"""The reads recommendations learn from: per-model, per-job, failed and successful calls.

Money and token sums are `Exact` (`sums`), so a window of absurd spend is read, not a 500 on
SQLite. Per-model totals come from the hourly rollups; everything narrower from the events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, case, cast, func, or_, select
from sqlalchemy.orm import Session

from llmlab_server.budget_schemas import TokenMix
from llmlab_server.models import CostEventRow, CostRollupHourly
from llmlab_server.services.sums import Exact, fold, select_list

__all__ = ["CAP_MIN_CALLS", "OUTPUT_SAMPLE", "Mix", "ModelStats", "failed_calls", "job_stats",
           "model_stats", "ok_stats", "output_sample", "over_cap"]

_E = CostEventRow
_R = CostRollupHourly
#: Successful calls of the latest that `output_sample` reads.
OUTPUT_SAMPLE = 20_000
#: Fewest successful calls of a model before an output cap is suggested.
CAP_MIN_CALLS = 50


@dataclass(frozen=True, slots=True)
class Mix:
    """Token sums of some calls (``input`` includes cache reads and writes)."""

    calls: int
    input: int
    output: int
    cache_read: int
    cache_write: int

    @property
    def avg_prompt(self) -> int:
        """Average input tokens per call."""
        return self.input // self.calls if self.calls else 0

    def wire(self) -> TokenMix:
        """The evidence form."""
        return TokenMix(input=self.input, output=self.output, cache_read=self.cache_read,
                        cache_write=self.cache_write)


@dataclass(slots=True)
class ModelStats:
    project_id: int
    provider: str
    model: str
    cost: int
    errors: int
    mix: Mix
    max_prompt: int = 0
    max_output: int = 0


def _exact_rows(session: Session, items: Sequence[Any],
                narrow: Callable[[Select[Any]], Select[Any]]) -> list[tuple[Any, ...]]:
    """The rows of ``items`` (money and tokens as `Exact` sums: no overflow on SQLite)."""
    stmt = narrow(select(*select_list(session.get_bind().dialect.name, items)))
    return [fold(items, row) for row in session.execute(stmt)]


def model_stats(session: Session, ids: Sequence[int], start: datetime, end: datetime
                 ) -> list[ModelStats]:
    items = [_R.project_id, _R.provider, _R.model, *(
        func.coalesce(func.sum(getattr(_R, c)), 0) if c in ("calls", "errors")
        else Exact(getattr(_R, c)) for c in (
            "cost_nanos", "calls", "errors", "input_tokens", "output_tokens",
            "cache_read_tokens", "cache_write_tokens"))]
    rows = _exact_rows(session, items, lambda stmt: stmt
                       .where(_R.project_id.in_(ids), _R.hour >= start, _R.hour < end)
                       .group_by(_R.project_id, _R.provider, _R.model))
    stats = {(r[0], r[1], r[2]): ModelStats(
        r[0], r[1], r[2], int(r[3]), int(r[5]),
        Mix(int(r[4]), int(r[6]), int(r[7]), int(r[8]), int(r[9]))) for r in rows}
    peaks = session.execute(
        select(_E.project_id, _E.provider, _E.model, func.max(_E.input_tokens),
               func.max(_E.output_tokens))
        .where(_E.project_id.in_(ids), _E.timestamp >= start, _E.timestamp < end)
        .group_by(_E.project_id, _E.provider, _E.model)).all()
    for pid, provider, model, max_in, max_out in peaks:
        found = stats.get((pid, provider, model))
        if found is not None:
            found.max_prompt, found.max_output = int(max_in or 0), int(max_out or 0)
    return list(stats.values())


def _hour_and_weekday(session: Session) -> tuple[Any, Any]:
    if session.get_bind().dialect.name == "postgresql":
        return (cast(func.extract("hour", _E.timestamp), Integer),
                cast(func.extract("dow", _E.timestamp), Integer))
    return (cast(func.strftime("%H", _E.timestamp), Integer),
            cast(func.strftime("%w", _E.timestamp), Integer))


def job_stats(session: Session, ids: Sequence[int], start: datetime, end: datetime
               ) -> list[Any]:
    hour, weekday = _hour_and_weekday(session)
    job = func.coalesce(_E.job_id, _E.function).label("job")
    interactive = _E.tags["interactive"].as_string()
    batchable = _E.tags["batchable"].as_string()
    tagged = or_(interactive == "false",
                 (batchable.is_not(None)) & (batchable.not_in(["false", "0", "no"])))
    off_hours = or_(weekday.in_([0, 6]), hour < 8, hour >= 18)
    items = [_E.project_id, job, _E.provider, _E.model, func.count(), Exact(_E.cost_nanos),
             Exact(_E.input_tokens), Exact(_E.output_tokens), Exact(_E.cache_read_tokens),
             Exact(_E.cache_write_tokens + _E.cache_write_1h_tokens),
             func.coalesce(func.sum(case((tagged, 1), else_=0)), 0),
             func.coalesce(func.sum(case((off_hours, 1), else_=0)), 0)]
    return _exact_rows(session, items, lambda stmt: stmt
                       .where(_E.project_id.in_(ids), _E.timestamp >= start,
                              _E.timestamp < end, job.is_not(None))
                       .group_by(_E.project_id, job, _E.provider, _E.model))


def failed_calls(session: Session, ids: Sequence[int], start: datetime, end: datetime) -> list[Any]:
    items = [_E.project_id, _E.provider, _E.model, func.count(), Exact(_E.cost_nanos),
             Exact(_E.input_tokens), Exact(_E.output_tokens)]
    return _exact_rows(session, items, lambda stmt: stmt
                       .where(_E.project_id.in_(ids), _E.timestamp >= start,
                              _E.timestamp < end, _E.status == "error", _E.cost_nanos > 0)
                       .group_by(_E.project_id, _E.provider, _E.model))


def ok_stats(session: Session, ids: Sequence[int], start: datetime, end: datetime
              ) -> list[Any]:
    """Per model: successful calls, their cost, token sums and longest output (≥ 50 calls)."""
    items = [_E.project_id, _E.provider, _E.model, func.count(), Exact(_E.cost_nanos),
             Exact(_E.input_tokens), Exact(_E.output_tokens), Exact(_E.cache_read_tokens),
             Exact(_E.cache_write_tokens + _E.cache_write_1h_tokens),
             Exact(_E.reasoning_tokens), func.coalesce(func.max(_E.output_tokens), 0)]
    return _exact_rows(session, items, lambda stmt: stmt
                       .where(_E.project_id.in_(ids), _E.timestamp >= start,
                              _E.timestamp < end, _E.status == "ok")
                       .group_by(_E.project_id, _E.provider, _E.model)
                       .having(func.count() >= CAP_MIN_CALLS))


def _one_model(pid: int, provider: str, model: str, start: datetime, end: datetime) -> Any:
    return (_E.project_id == pid, _E.model == model, _E.provider == provider,
            _E.timestamp >= start, _E.timestamp < end, _E.status == "ok")


def output_sample(session: Session, pid: int, provider: str, model: str, start: datetime,
                   end: datetime) -> list[int]:
    """Output tokens of the model's latest ``OUTPUT_SAMPLE`` successful calls, ascending."""
    return sorted(int(v) for v in session.scalars(
        select(_E.output_tokens).where(*_one_model(pid, provider, model, start, end))
        .order_by(_E.timestamp.desc()).limit(OUTPUT_SAMPLE)))


def over_cap(session: Session, pid: int, provider: str, model: str, start: datetime,
              end: datetime, cap: int) -> tuple[int, int]:
    """Successful calls whose output exceeds ``cap``, and their output tokens beyond it."""
    over = _E.output_tokens > cap
    calls, excess = session.execute(
        select(func.coalesce(func.sum(case((over, 1), else_=0)), 0),
               func.coalesce(func.sum(case((over, _E.output_tokens - cap), else_=0)), 0))
        .where(*_one_model(pid, provider, model, start, end))).one()
    return int(calls), int(excess)
