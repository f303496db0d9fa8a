"""cost_events partitioned by month on PostgreSQL; its unique ids in cost_event_ids

PostgreSQL only (SQLite keeps one plain table). ``cost_events`` becomes a table partitioned
by range of ``timestamp``: one partition per UTC month that holds events (the last ten
years), the current month and `partitions.MONTHS_AHEAD` more, and ``cost_events_default``
for the rest. Every row moves. A unique index of a partitioned table must contain the
partition key, so (project_id, event_id) is kept unique by the unpartitioned
``cost_event_ids`` (ingest inserts there first, ``ON CONFLICT DO NOTHING``, and stores only
the events whose id was new: see ``services/partitions.py``). The primary key becomes
(id, timestamp). The project delete trigger also deletes the project's ids; a TRUNCATE of
``cost_events`` empties ``cost_event_ids``. Rollups are untouched.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = 'cost_events_unpartitioned'
_INDEXES = {
    'ix_cost_events_project_time': '(project_id, "timestamp")',
    'ix_cost_events_project_job_time': '(project_id, job_id, "timestamp")',
    'ix_cost_events_project_user_time': '(project_id, user_id, "timestamp")',
    'ix_cost_events_project_model_time': '(project_id, model, "timestamp")',
}
_DELETE_FUNCTION = 'llmlab_delete_project_events'
_TRUNCATE_FUNCTION = 'llmlab_truncate_event_ids'
_TRUNCATE_TRIGGER = 'trg_cost_events_truncate_ids'


def _set_delete_function(body: str) -> None:
    op.execute(f'CREATE OR REPLACE FUNCTION {_DELETE_FUNCTION}() RETURNS trigger '
               f'LANGUAGE plpgsql AS $$ BEGIN {body} RETURN OLD; END $$')


def _swap_out(conn: sa.Connection) -> str:
    """Rename cost_events away, free its index and constraint names; its id sequence."""
    sequence = conn.execute(sa.text(
        "SELECT pg_get_serial_sequence('cost_events', 'id')")).scalar_one()
    op.execute(f'ALTER TABLE cost_events RENAME TO {_OLD}')
    for name in _INDEXES:
        op.execute(f'DROP INDEX {name}')
    op.execute(f'ALTER TABLE {_OLD} DROP CONSTRAINT IF EXISTS uq_cost_events_project_event')
    op.execute(f'ALTER TABLE {_OLD} DROP CONSTRAINT pk_cost_events')
    return str(sequence)


def _swap_in(sequence: str) -> None:
    """Move the rows and the sequence into the new cost_events, index it, drop the old."""
    op.execute(f'INSERT INTO cost_events SELECT * FROM {_OLD}')
    op.execute(f'ALTER SEQUENCE {sequence} OWNED BY cost_events.id')
    for name, columns in _INDEXES.items():
        op.execute(f'CREATE INDEX {name} ON cost_events {columns}')
    op.execute(f'DROP TABLE {_OLD}')
    op.execute('ANALYZE cost_events')


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != 'postgresql':
        return
    from llmlab_server.services import partitions

    sequence = _swap_out(conn)
    op.execute(f'CREATE TABLE cost_events (LIKE {_OLD} INCLUDING DEFAULTS) '
               'PARTITION BY RANGE ("timestamp")')
    op.execute('ALTER TABLE cost_events ADD CONSTRAINT pk_cost_events '
               'PRIMARY KEY (id, "timestamp")')
    now = conn.execute(sa.text("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')")
                       ).scalar_one()
    months = set(conn.execute(sa.text(
        f"SELECT DISTINCT date_trunc('month', \"timestamp\") FROM {_OLD} "
        "WHERE \"timestamp\" >= :lo AND \"timestamp\" < :hi"),
        {"lo": partitions.add_months(now, -12 * partitions.YEARS_BACK),
         "hi": partitions.add_months(now, partitions.MONTHS_AHEAD + 1)}).scalars())
    months.update(partitions.add_months(now, n) for n in range(partitions.MONTHS_AHEAD + 1))
    for month in sorted(months):
        partitions.create_partition(conn, month)
    op.execute(f'CREATE TABLE {partitions.DEFAULT} PARTITION OF cost_events DEFAULT')
    op.execute('CREATE TABLE cost_event_ids (project_id bigint NOT NULL, '
               'event_id varchar(128) COLLATE "C" NOT NULL, '
               'CONSTRAINT pk_cost_event_ids PRIMARY KEY (project_id, event_id))')
    op.execute(f'INSERT INTO cost_event_ids SELECT project_id, event_id FROM {_OLD}')
    _swap_in(sequence)
    _set_delete_function('DELETE FROM cost_events WHERE project_id = OLD.id; '
                         'DELETE FROM cost_event_ids WHERE project_id = OLD.id;')
    op.execute(f'CREATE FUNCTION {_TRUNCATE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS '
               '$$ BEGIN TRUNCATE cost_event_ids; RETURN NULL; END $$')
    op.execute(f'CREATE TRIGGER {_TRUNCATE_TRIGGER} AFTER TRUNCATE ON cost_events '
               f'FOR EACH STATEMENT EXECUTE FUNCTION {_TRUNCATE_FUNCTION}()')


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != 'postgresql':
        return
    op.execute(f'DROP TRIGGER {_TRUNCATE_TRIGGER} ON cost_events')
    op.execute(f'DROP FUNCTION {_TRUNCATE_FUNCTION}()')
    _set_delete_function('DELETE FROM cost_events WHERE project_id = OLD.id;')
    sequence = _swap_out(conn)
    op.execute(f'CREATE TABLE cost_events (LIKE {_OLD} INCLUDING DEFAULTS)')
    op.execute('ALTER TABLE cost_events ADD CONSTRAINT pk_cost_events PRIMARY KEY (id)')
    op.execute('ALTER TABLE cost_events ADD CONSTRAINT uq_cost_events_project_event '
               'UNIQUE (project_id, event_id)')
    _swap_in(sequence)
    op.execute('DROP TABLE cost_event_ids')
