"""projects.timezone: the IANA time zone the dashboard's ranges and day buckets use

Existing projects get ``UTC`` (the server default), which is what every range used before.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('timezone', sa.String(length=64), nullable=False,
                                        server_default='UTC'))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+), not a batch rebuild: rebuilding ``projects`` would
    # drop its event-deleting trigger (migration 0003).
    op.execute('ALTER TABLE projects DROP COLUMN timezone')
