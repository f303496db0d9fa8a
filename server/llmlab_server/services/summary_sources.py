"""Where a summary's sums come from, for any time range: rollups for the whole hours, events
for the rest — exact, and bounded work whatever the range.

A window [start, end) is cut into `Spans` (`summary_spans`):

* ``edges`` — the partial hours at either end (``start`` to the next whole hour, the last whole
  hour to ``end``), or the whole window when it holds no whole hour: read from
  ``cost_events`` through the (project, time) index, so at most two hours of events;
* ``hours`` — the whole UTC hours: ``cost_rollups_hourly`` (by model); for job, user and
  ``tag:<key>`` the whole ISO weeks among them from ``cost_rollups_group_weekly`` (PostgreSQL;
  SQLite reads days), the whole UTC days around those from ``cost_rollups_group_daily`` and the
  hours around the days from ``cost_rollups_group_hourly`` (a 30-day range reads about 30 rows
  per value, not 720), plus on PostgreSQL the deltas ingest appended that `rollup_compaction`
  has not merged yet (about a second of ingest), all in one statement: a merge in between
  cannot count a delta twice or miss it.

Group rollups only hold events that have the value; the "none" group (events without a job,
user or that tag) is the hours' total from ``cost_rollups_hourly`` less the groups. A value
whose rollup cost saturated at BIGINT's maximum (over $9.2 billion in an hour) is summed from
its events instead, exactly, as long as retention has kept them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from llmlab_server.models import (
    MAX_ID,
    CostEventRow,
    CostRollupGroupDaily,
    CostRollupGroupHourly,
    CostRollupHourly,
    Project,
)
from llmlab_server.models.rollup_deltas import GROUP_DELTAS, GROUP_WEEKLY
from llmlab_server.services.summary_spans import Spans, spans
from llmlab_server.services.sums import Exact, fold, select_list
from llmlab_server.services.windows import Window

__all__ = ["SUMS", "Acc", "Spans", "group_sums", "hour_sums", "spans"]

_E, _R = CostEventRow, CostRollupHourly
_GH, _GD, _DL, _GW = (CostRollupGroupHourly, CostRollupGroupDaily, GROUP_DELTAS.c,
                      GROUP_WEEKLY.c)
SUMS = ("cost_nanos", "calls", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "reasoning_tokens", "latency_ms_sum", "latency_count",
        "cost_tools_nanos")
_LATENCY = SUMS.index("latency_ms_sum")
_SMALL = ("calls", "errors", "latency_ms_sum", "latency_count")  # cannot overflow a sum


class Acc:
    """Running sums in `SUMS` order (money and tokens as exact ints, latency a float)."""

    __slots__ = ("sums",)

    def __init__(self, sums: list[Any] | None = None) -> None:
        self.sums: list[Any] = [0] * len(SUMS) if sums is None else sums

    def add(self, values: Sequence[Any]) -> None:
        # PostgreSQL sums bigints as numeric (Decimal): back to int, latency to float.
        self.sums = [a + (float(v or 0) if i == _LATENCY else int(v or 0))
                     for i, (a, v) in enumerate(zip(self.sums, values, strict=True))]

    def minus(self, other: Acc) -> Acc:
        out = Acc()
        out.sums = [a - b for a, b in zip(self.sums, other.sums, strict=True)]
        return out


def _within(column: Any, ranges: Sequence[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    return or_(*(and_(column >= a, column < b) for a, b in ranges))


def _event_sums() -> list[Any]:
    """`select_list` items of `SUMS` over events: money and tokens summed exactly."""
    return [
        Exact(_E.cost_nanos), func.count(),
        func.coalesce(func.sum(case((_E.status == "error", 1), else_=0)), 0),
        Exact(_E.input_tokens), Exact(_E.output_tokens), Exact(_E.cache_read_tokens),
        Exact(_E.cache_write_tokens + _E.cache_write_1h_tokens), Exact(_E.reasoning_tokens),
        func.coalesce(func.sum(_E.latency_ms), 0.0), func.count(_E.latency_ms),
        Exact(_E.cost_tools_nanos),
    ]


def _rollup_sums(table: Any) -> list[Any]:
    """`select_list` items of `SUMS` over a rollup table."""
    return [func.coalesce(func.sum(getattr(table, name)), 0) if name in _SMALL
            else Exact(getattr(table, name)) for name in SUMS]


def _read(session: Session, key: Any, sums: list[Any], table: Any, where: ColumnElement[bool],
          out: dict[Any, Acc], join_projects: bool = False) -> None:
    """Add ``table``'s sums grouped by ``key`` (None: ungrouped) to ``out``."""
    items = [key if key is not None else literal(None), *sums]
    stmt = select(*select_list(session.get_bind().dialect.name, items)).where(where)
    if join_projects:
        stmt = stmt.join(Project, Project.id == table.project_id)
    if key is not None:
        stmt = stmt.group_by(key)
    _fold_rows(session, stmt, items, out)


def _fold_rows(session: Session, stmt: Select[Any], items: list[Any], out: dict[Any, Acc],
               saturated: set[str | None] | None = None) -> None:
    """Add the rows of ``stmt`` (the `select_list` of ``items``: a key, `SUMS`, and with
    ``saturated`` a last column, the largest rollup cost, whose keys at BIGINT's maximum are
    added to ``saturated``) to ``out``.

    Rows are folded by hand (`sums.fold`'s work, inlined): a user grouping reads a thousand.
    On PostgreSQL an `Exact` sum's high half is the constant 0 (`sums.exact_sum`), so only the
    low columns are read.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    columns: list[int] = []  # per item: its (low) column
    highs: list[int] = []  # per item: its high column (-1: none)
    column = 0
    for item in items:
        exact = isinstance(item, Exact)
        highs.append(column if exact and not postgres else -1)
        columns.append(column + 1 if exact else column)
        column += 2 if exact else 1
    key_at, sum_at = columns[0], columns[1:len(SUMS) + 1]
    latency_at = sum_at[_LATENCY]
    max_at = columns[-1] if saturated is not None else -1
    result = session.connection().execute(stmt)
    if postgres:
        for row in result:
            name = row[key_at]
            if name is not None:
                name = str(name)
            if max_at >= 0 and int(row[max_at] or 0) >= MAX_ID:
                saturated.add(name)  # type: ignore[union-attr]
            sums: list[Any] = [int(row[c] or 0) for c in sum_at]
            sums[_LATENCY] = float(row[latency_at] or 0)
            found = out.get(name)
            if found is None:
                out[name] = Acc(sums)
            else:
                found.add(sums)
        return
    layout = list(zip(columns, highs, strict=True))
    convert: list[Any] = [float if i == _LATENCY else int for i in range(len(SUMS))]
    for row in result:
        values = [(int(row[h] or 0) << 32) + int(row[c] or 0) if h >= 0
                  else row[c] for c, h in layout]
        name = None if values[0] is None else str(values[0])
        if saturated is not None and int(values[-1] or 0) >= MAX_ID:
            saturated.add(name)
        sums = [f(v or 0) for f, v in zip(convert, values[1:len(SUMS) + 1], strict=True)]
        found = out.get(name)
        if found is None:
            out[name] = Acc(sums)
        else:
            found.add(sums)


def _event_key(group: str) -> Any:
    if group == "job":
        return _E.job_id
    if group == "user":
        return _E.user_id
    return _E.tags[group.removeprefix("tag:")].as_string()


def group_sums(session: Session, ids: Sequence[int], group: str | None, window: Window
               ) -> tuple[dict[str | None, Acc], bool]:
    """Sums per value of ``group`` (model, provider, project, job, user, tag:<key> or None:
    one row keyed None) over ``window``; and whether rollups answered any of it."""
    if group is not None and group not in ("model", "provider", "project"):
        return _dimension_sums(session, ids, group, window)
    cut = spans(window)
    out: dict[str | None, Acc] = {}
    projects = group == "project"
    if cut.edges:
        key = (None if group is None else Project.slug if projects else getattr(_E, group))
        _read(session, key, _event_sums(), _E,
              and_(_E.project_id.in_(ids), _within(_E.timestamp, cut.edges)), out, projects)
    if cut.hours is None:
        return out, False
    hourly = and_(_R.project_id.in_(ids), _within(_R.hour, [cut.hours]))
    key = None if group is None else Project.slug if projects else getattr(_R, group)
    _read(session, key, _rollup_sums(_R), _R, hourly, out, projects)
    return out, True


def _part(dialect: str, key: Any, sums: list[Any], saturation: Any, where: ColumnElement[bool]
          ) -> Select[Any]:
    """One source of `_dimension_sums`' union: its sums per key, columns named c0, c1, …"""
    columns = [*select_list(dialect, sums), saturation]
    return select(key.label("k"), *(c.label(f"c{i}") for i, c in enumerate(columns))).where(
        where).group_by(key)


def _merged(dialect: str, cut: Spans, ids: Sequence[int], group: str, key: Any
            ) -> tuple[Select[Any], list[Any]]:
    """SQLite: each source summed per value, the union summed again (the `_fold_rows` items
    of the result)."""
    parts = []
    if cut.edges:
        parts.append(_part(dialect, key, _event_sums(), literal(0, BigInteger), and_(
            _E.project_id.in_(ids), _within(_E.timestamp, cut.edges))))
    if cut.loose_hours:
        parts.append(_part(dialect, _GH.key, _rollup_sums(_GH), func.max(_GH.cost_nanos), and_(
            _GH.project_id.in_(ids), _GH.dimension == group,  # job, user or tag:<key>
            _within(_GH.hour, cut.loose_hours))))
    if cut.days is not None:
        parts.append(_part(dialect, _GD.key, _rollup_sums(_GD), func.max(_GD.cost_nanos), and_(
            _GD.project_id.in_(ids), _GD.dimension == group, _within(_GD.day, [cut.days]))))
    union = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    names = [c.name for c in union.columns][1:]
    merged = select(union.c.k, *(func.coalesce(func.sum(union.c[n]), 0) for n in names[:-1]),
                    func.max(union.c[names[-1]])).group_by(union.c.k)
    return merged, [None, *_rollup_sums(_GD), None]


def _rollup_columns(table: Any) -> list[Any]:
    return [getattr(table, name) for name in SUMS]


def _merged_postgres(cut: Spans, ids: Sequence[int], group: str, key: Any
                     ) -> tuple[Select[Any], list[Any]]:
    """PostgreSQL: the rows of every source (edge events, loose hours, loose days, weeks,
    unmerged deltas)
    in one ``UNION ALL``, summed per value by one aggregate (``sum(bigint)`` is numeric:
    exact). One hash aggregate over ~50 k rows instead of one per source and a sort of their
    results: a fifth less time for 1,000 users. Columns: the key, `SUMS`, the largest rollup
    cost (0 for events)."""
    zero = literal(0, BigInteger)
    parts: list[Select[Any]] = []
    if cut.edges:
        latency = _E.latency_ms
        parts.append(select(key, _E.cost_nanos, literal(1, BigInteger),
                            case((_E.status == "error", 1), else_=0), _E.input_tokens,
                            _E.output_tokens, _E.cache_read_tokens,
                            _E.cache_write_tokens + _E.cache_write_1h_tokens,
                            _E.reasoning_tokens, func.coalesce(latency, 0.0),
                            case((latency.is_(None), 0), else_=1), _E.cost_tools_nanos,
                            zero).where(_E.project_id.in_(ids),
                                        _within(_E.timestamp, cut.edges)))
    sources: list[tuple[Any, ColumnElement[bool]]] = []
    if cut.loose_hours:
        sources.append((_GH, _within(_GH.hour, cut.loose_hours)))
    if cut.loose_days:
        sources.append((_GD, _within(_GD.day, cut.loose_days)))
    if cut.weeks is not None:
        sources.append((_GW, _within(_GW.week, [cut.weeks])))
    if cut.hours is not None:  # deltas not merged yet
        sources.append((_DL, _within(_DL.hour, [cut.hours])))
    for table, when in sources:
        parts.append(select(table.key, *_rollup_columns(table), table.cost_nanos).where(
            table.project_id.in_(ids), table.dimension == group, when))
    union = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    columns = list(union.columns)
    # No coalesce: a group has rows, and no column is NULL.
    merged = select(columns[0], *(func.sum(c) for c in columns[1:-1]),
                    func.max(columns[-1])).group_by(columns[0])
    return merged, [None] * (len(SUMS) + 2)  # no `Exact` item: one column each


def _dimension_sums(session: Session, ids: Sequence[int], group: str, window: Window
                    ) -> tuple[dict[str | None, Acc], bool]:
    """`group_sums` of job, user or tag:<key>: the edges' events, the loose hours' and the
    days' rollup rows summed per value in one query (a thousand users reach Python once)."""
    dialect = session.get_bind().dialect.name
    cut = spans(window)
    key = _event_key(group)
    if dialect == "postgresql":
        merged, items = _merged_postgres(cut, ids, group, key)
    else:
        merged, items = _merged(dialect, cut, ids, group, key)
    out: dict[str | None, Acc] = {}
    saturated: set[str | None] = set()
    _fold_rows(session, merged, items, out, saturated)
    if cut.hours is None:
        return out, False
    if saturated:  # a rollup row at BIGINT's maximum: those values from their events
        for name in saturated:
            out.pop(name, None)
        _read(session, key, _event_sums(), _E, and_(
            _E.project_id.in_(ids), _E.timestamp >= window.start, _E.timestamp < window.end,
            key.in_(saturated)), out)
    # The "none" group of the whole hours: their total less the values' rollups (= the
    # merged values less what the edges' events gave them).
    total: dict[str | None, Acc] = {}
    _read(session, None, _rollup_sums(_R), _R, and_(
        _R.project_id.in_(ids), _within(_R.hour, [cut.hours])), total)
    edge_values: dict[str | None, Acc] = {}
    if cut.edges:
        _read(session, None, _event_sums(), _E, and_(
            _E.project_id.in_(ids), _within(_E.timestamp, cut.edges), key.is_not(None)),
            edge_values)
    valued = Acc([sum(column) for column in zip(
        *(acc.sums for name, acc in out.items() if name is not None), strict=True)] or None)
    none = total.get(None, Acc()).minus(valued.minus(edge_values.get(None, Acc())))
    if none.sums[SUMS.index("calls")] > 0:  # events without the value in the whole hours
        out.setdefault(None, Acc()).add(none.sums)
    return out, True


def _epoch_bucket(session: Session, column: Any, seconds: int) -> ColumnElement[Any]:
    """``floor(epoch(column) / seconds)`` for the session's dialect (naive UTC column)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / seconds), BigInteger)
    return cast(func.strftime("%s", column), BigInteger) / seconds


def hour_sums(session: Session, ids: Sequence[int], window: Window, size: int,
              use_rollups: bool) -> tuple[dict[datetime, Acc], bool]:
    """Sums per UTC bucket of ``size`` seconds (3600 or 900) starting at each key; whole
    hours from the hourly rollups when ``use_rollups`` (``size`` 3600), the rest from events.
    Also whether rollups answered any of it."""
    cut = spans(window) if use_rollups else Spans(edges=[(window.start, window.end)])
    out: dict[datetime, Acc] = {}
    dialect = session.get_bind().dialect.name
    if cut.edges:
        bucket = _epoch_bucket(session, _E.timestamp, size).label("bucket")
        items = [bucket, *_event_sums()]
        stmt = select(*select_list(dialect, items)).where(
            _E.project_id.in_(ids), _within(_E.timestamp, cut.edges)).group_by(bucket)
        for row in session.execute(stmt):
            number, *values = fold(items, row)
            out.setdefault(datetime.fromtimestamp(int(number) * size, UTC), Acc()).add(values)
    if cut.hours is None:
        return out, False
    items = [_R.hour, *_rollup_sums(_R)]
    stmt = select(*select_list(dialect, items)).where(
        _R.project_id.in_(ids), _within(_R.hour, [cut.hours])).group_by(_R.hour)
    for row in session.execute(stmt):
        hour, *values = fold(items, row)
        out.setdefault(hour, Acc()).add(values)
    return out, True
