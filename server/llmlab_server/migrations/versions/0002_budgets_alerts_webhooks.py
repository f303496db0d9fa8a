# ruff: noqa: E501  (Alembic style: one column per line, long lines kept)
"""budgets, budget alerts, webhooks

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('budgets',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('project_id', BIG_ID, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('amount_nanos', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('scope_job', sa.String(length=256), nullable=True),
    sa.Column('scope_user', sa.String(length=256), nullable=True),
    sa.Column('scope_tag', sa.String(length=330), nullable=True),
    sa.Column('scope_model', sa.String(length=256), nullable=True),
    sa.Column('created_by', BIG_ID, nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_budgets_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_budgets_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budgets'))
    )
    op.create_index(op.f('ix_budgets_project_id'), 'budgets', ['project_id'])
    op.create_table('budget_alerts',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('project_id', BIG_ID, nullable=False),
    sa.Column('budget_id', BIG_ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('period_key', sa.String(length=40), nullable=False),
    sa.Column('period_start', sa.DateTime(), nullable=True),
    sa.Column('spent_nanos', sa.BigInteger(), nullable=False),
    sa.Column('amount_nanos', sa.BigInteger(), nullable=False),
    sa.Column('forecast_nanos', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], name=op.f('fk_budget_alerts_budget_id_budgets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_budget_alerts_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_alerts')),
    sa.UniqueConstraint('budget_id', 'kind', 'threshold', 'period_key', name='uq_budget_alerts_once')
    )
    op.create_index(op.f('ix_budget_alerts_budget_id'), 'budget_alerts', ['budget_id'])
    op.create_index('ix_budget_alerts_project_created', 'budget_alerts', ['project_id', 'created_at'])
    op.create_table('webhooks',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('project_id', BIG_ID, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('secret_salt', sa.String(length=64), nullable=False),
    sa.Column('secret_prefix', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', BIG_ID, nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_delivery_at', sa.DateTime(), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('last_error', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_webhooks_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_webhooks_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks'))
    )
    op.create_index(op.f('ix_webhooks_project_id'), 'webhooks', ['project_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_webhooks_project_id'), table_name='webhooks')
    op.drop_table('webhooks')
    op.drop_index('ix_budget_alerts_project_created', table_name='budget_alerts')
    op.drop_index(op.f('ix_budget_alerts_budget_id'), table_name='budget_alerts')
    op.drop_table('budget_alerts')
    op.drop_index(op.f('ix_budgets_project_id'), table_name='budgets')
    op.drop_table('budgets')
