"""cost_rollups_group_deltas and _weekly: ingest appends, a compaction merges; weeks for long ranges

PostgreSQL ingest appends each batch's job/user/tag sums to ``cost_rollups_group_deltas`` with a
plain INSERT (no upsert); a compaction run by any server process merges them into
``cost_rollups_group_hourly``, ``_daily`` and ``_weekly`` (``services/rollup_compaction.py``).
The deltas are a heap without key, index or foreign key (see ``models/rollup_deltas.py``). The
weekly rollup (PostgreSQL reads it; SQLite leaves it empty) is filled from the daily one.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX = 2**63 - 1
_SUMS = ('cost_nanos', 'calls', 'errors', 'input_tokens', 'output_tokens', 'cache_read_tokens',
         'cache_write_tokens', 'reasoning_tokens', 'latency_ms_sum', 'latency_count',
         'cost_tools_nanos')


def _sums() -> list[sa.Column[Any]]:
    return [sa.Column(name, sa.Float() if name == 'latency_ms_sum' else sa.BigInteger(),
                      nullable=False) for name in _SUMS]


def upgrade() -> None:
    op.create_table(
        'cost_rollups_group_weekly',
        sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('dimension', sa.String(length=72), nullable=False),
        sa.Column('week', sa.DateTime(), nullable=False),
        sa.Column('key', sa.String(length=256), nullable=False),
        *_sums(),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_cost_rollups_group_weekly_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'dimension', 'week', 'key',
                                name=op.f('pk_cost_rollups_group_weekly')),
    )
    backfill(op.get_bind())
    op.create_table(
        'cost_rollups_group_deltas',
        sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('dimension', sa.String(length=72), nullable=False),
        sa.Column('hour', sa.DateTime(), nullable=False),
        sa.Column('key', sa.String(length=256), nullable=False),
        *_sums(),
    )


def backfill(conn: sa.Connection) -> None:
    """PostgreSQL: the weekly rollup from the daily one, in key order (also used by
    ``benchmarks/summary.py``). SQLite never reads it."""
    if conn.dialect.name != 'postgresql':
        return
    columns = ', '.join(_SUMS)
    sums = ', '.join('coalesce(sum(latency_ms_sum), 0)' if c == 'latency_ms_sum'
                     else f'LEAST(sum({c})::numeric, {_MAX})::bigint' for c in _SUMS)
    conn.execute(sa.text(
        f'INSERT INTO cost_rollups_group_weekly (project_id, dimension, week, key, {columns}) '
        f"SELECT project_id, dimension, date_trunc('week', day), key, {sums} "
        "FROM cost_rollups_group_daily GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"))


def downgrade() -> None:
    # Merge what is left first, so the rollups lose nothing.
    from llmlab_server.services.rollup_compaction import compact_connection

    compact_connection(op.get_bind())
    op.drop_table('cost_rollups_group_deltas')
    op.drop_table('cost_rollups_group_weekly')
