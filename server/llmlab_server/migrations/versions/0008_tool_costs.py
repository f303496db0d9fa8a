"""Tool costs: built-in tool fees and counts, and the provider-reported cost, per event

``cost_events`` gains ``cost_tools_nanos`` (the per-use fees of built-in tools: web search,
file search, containers, image generation …), ``tools`` (the call's uses per tool kind, JSON,
NULL when none), ``provider_cost_nanos`` (what the provider itself reported the call cost,
e.g. OpenRouter's ``usage.cost``) and ``provider_cost_mismatch``. Every rollup that sums cost
gains ``cost_tools_nanos``. Stored events and rollups had no tool fees: 0 is their value, so
there is nothing to backfill.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLLUPS = ('cost_rollups_hourly', 'cost_rollups_group_hourly', 'cost_rollups_group_daily')


def _tools_nanos() -> sa.Column[int]:
    return sa.Column('cost_tools_nanos', sa.BigInteger(), nullable=False,
                     server_default=sa.text('0'))


def upgrade() -> None:
    # Plain ADD COLUMN (constant defaults): no table rebuild, which on SQLite would trip the
    # project delete trigger on cost_events.
    op.add_column('cost_events', _tools_nanos())
    op.add_column('cost_events', sa.Column('tools', sa.JSON(), nullable=True))
    op.add_column('cost_events', sa.Column('provider_cost_nanos', sa.BigInteger(), nullable=True))
    op.add_column('cost_events', sa.Column('provider_cost_mismatch', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    for table in _ROLLUPS:
        op.add_column(table, _tools_nanos())


def downgrade() -> None:
    for table in reversed(_ROLLUPS):
        op.drop_column(table, 'cost_tools_nanos')
    for column in ('provider_cost_mismatch', 'provider_cost_nanos', 'tools', 'cost_tools_nanos'):
        op.drop_column('cost_events', column)
