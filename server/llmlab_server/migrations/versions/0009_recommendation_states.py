"""Recommendation states: a project's dismissed and snoozed recommendations (issue #17)

One row per (project, recommendation id); no row means the recommendation is active.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('recommendation_states',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('project_id', BIG_ID, nullable=False),
    sa.Column('recommendation_id', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('snoozed_until', sa.DateTime(), nullable=True),
    sa.Column('updated_by', BIG_ID, nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE',
                            name=op.f('fk_recommendation_states_project_id_projects')),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], ondelete='SET NULL',
                            name=op.f('fk_recommendation_states_updated_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recommendation_states')),
    sa.UniqueConstraint('project_id', 'recommendation_id',
                        name='uq_recommendation_states_project_rec'),
    )


def downgrade() -> None:
    op.drop_table('recommendation_states')
