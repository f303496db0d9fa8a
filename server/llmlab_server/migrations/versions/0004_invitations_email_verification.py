"""project_invitations (adding a member invites them; they join only when they accept) and
users.email_verified_at (invitations and password resets need a verified address)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'project_invitations',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('invited_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_project_invitations_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invited_by'], ['users.id'],
                                name=op.f('fk_project_invitations_invited_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_project_invitations')),
        sa.UniqueConstraint('project_id', 'email',
                            name='uq_project_invitations_project_email'))
    op.create_index(op.f('ix_project_invitations_email'), 'project_invitations', ['email'])
    op.add_column('users', sa.Column('email_verified_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:  # SQLite rebuilds the table
        batch.drop_column('email_verified_at')
    op.drop_index(op.f('ix_project_invitations_email'), table_name='project_invitations')
    op.drop_table('project_invitations')
