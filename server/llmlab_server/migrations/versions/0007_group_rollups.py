"""cost_rollups_group_hourly/_daily: job, user and tag rollups, built from the stored events

Summaries by job, user and tag read these (hours and whole UTC days of the range) instead of
scanning events. The upgrade fills them from ``cost_events`` in set-based SQL (one pass over
the events on PostgreSQL), so existing databases answer the same as before; integer sums
saturate at BIGINT's maximum like the ingest upsert (``services/ingest_store.py``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX = 2**63 - 1
_SUMS = ('cost_nanos', 'calls', 'errors', 'input_tokens', 'output_tokens', 'cache_read_tokens',
         'cache_write_tokens', 'reasoning_tokens', 'latency_ms_sum', 'latency_count')
_TABLES = (('cost_rollups_group_hourly', 'hour'), ('cost_rollups_group_daily', 'day'))


def _columns(time_column: str) -> list[sa.Column[Any]]:
    types = {'latency_ms_sum': sa.Float()}
    return [
        sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('dimension', sa.String(length=72), nullable=False),
        sa.Column(time_column, sa.DateTime(), nullable=False),
        sa.Column('key', sa.String(length=256), nullable=False),
        *(sa.Column(name, types.get(name, sa.BigInteger()), nullable=False)
          for name in _SUMS),
    ]


def upgrade() -> None:
    for table, time_column in _TABLES:
        op.create_table(
            table, *_columns(time_column),
            sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                    name=op.f(f'fk_{table}_project_id_projects'),
                                    ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('project_id', 'dimension', time_column, 'key',
                                    name=op.f(f'pk_{table}')),
        )
    backfill(op.get_bind())


def downgrade() -> None:
    for table, _ in reversed(_TABLES):
        op.drop_table(table)


_VALUES = ('project_id', 'timestamp', 'cost_nanos', 'status', 'input_tokens', 'output_tokens',
           'cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens',
           'reasoning_tokens', 'latency_ms')


def _capped_sum(dialect: str, expr: str) -> str:
    """``sum(expr)`` saturated at BIGINT's maximum, never an overflow error.

    PostgreSQL sums bigints as numeric. SQLite's ``sum()`` raises past 2**63 - 1, so it sums
    the high and low 32 bits apart (as ``services/sums.py`` does) and joins them; an addition
    past the maximum turns into a real number, which ``min()`` brings back to the maximum.
    """
    if dialect == 'postgresql':
        return f'LEAST(sum({expr})::numeric, {_MAX})::bigint'
    high, low = f'sum(({expr}) >> 32)', f'sum(({expr}) & 4294967295)'
    return f'CASE WHEN {high} >= 2147483648 THEN {_MAX} ELSE min(({high} << 32) + {low}, {_MAX}) END'


def _event_sums(dialect: str) -> str:
    """The SELECT list of `_SUMS` over event rows."""
    capped = [_capped_sum(dialect, e) for e in (
        'cost_nanos', "CASE WHEN status = 'error' THEN 1 ELSE 0 END", 'input_tokens',
        'output_tokens', 'cache_read_tokens', 'cache_write_tokens + cache_write_1h_tokens',
        'reasoning_tokens')]
    return ', '.join([capped[0], 'count(*)', *capped[1:],
                      'coalesce(sum(latency_ms), 0)', 'count(latency_ms)'])


def _rollup_sums(dialect: str) -> str:
    """The SELECT list of `_SUMS` over hourly rollup rows."""
    return ', '.join('coalesce(sum(latency_ms_sum), 0)' if c == 'latency_ms_sum'
                     else _capped_sum(dialect, c) for c in _SUMS)


def backfill(conn: sa.Connection) -> None:
    """Fill both tables from ``cost_events`` (they are empty): one row per project, dimension,
    hour (day) and value, as ingest would have made them, written in key order (so a summary's
    rows of consecutive hours sit on few pages, as ingest leaves them).

    Also used by ``benchmarks/summary.py`` to build the rollups of its generated events.
    """
    dialect = conn.dialect.name
    columns = ', '.join(_SUMS)
    values = ', '.join(f'e.{c}' for c in _VALUES)
    if dialect == 'postgresql':  # one pass over the events
        source = (f"SELECT g.dimension, g.key, {values} FROM cost_events e CROSS JOIN LATERAL ("
                  "SELECT 'job', e.job_id WHERE e.job_id IS NOT NULL "
                  "UNION ALL SELECT 'user', e.user_id WHERE e.user_id IS NOT NULL "
                  "UNION ALL SELECT 'tag:' || t.key, t.value FROM json_each_text(e.tags) AS t "
                  "WHERE length(t.key) <= 64) AS g(dimension, key)")
        hour, day = "date_trunc('hour', timestamp)", "date_trunc('day', hour)"
    else:
        source = (f"SELECT 'job' AS dimension, e.job_id AS key, {values} FROM cost_events e "
                  "WHERE e.job_id IS NOT NULL "
                  f"UNION ALL SELECT 'user', e.user_id, {values} FROM cost_events e "
                  "WHERE e.user_id IS NOT NULL "
                  f"UNION ALL SELECT 'tag:' || t.key, t.value, {values} FROM cost_events e, "
                  "json_each(e.tags) AS t WHERE length(t.key) <= 64 AND t.type = 'text'")
        hour = "strftime('%Y-%m-%d %H:00:00.000000', timestamp)"
        day = "strftime('%Y-%m-%d 00:00:00.000000', hour)"
    conn.execute(sa.text(
        f'INSERT INTO cost_rollups_group_hourly (project_id, dimension, hour, key, {columns}) '
        f'SELECT project_id, dimension, {hour}, key, {_event_sums(dialect)} FROM ({source}) s '
        'WHERE project_id IN (SELECT id FROM projects) '
        f'GROUP BY project_id, dimension, {hour}, key ORDER BY 1, 2, 3, 4'))
    conn.execute(sa.text(
        f'INSERT INTO cost_rollups_group_daily (project_id, dimension, day, key, {columns}) '
        f'SELECT project_id, dimension, {day}, key, {_rollup_sums(dialect)} '
        f'FROM cost_rollups_group_hourly GROUP BY project_id, dimension, {day}, key '
        'ORDER BY 1, 2, 3, 4'))
