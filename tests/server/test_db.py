"""Engines, sessions and migrations."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from llmlab_server import db
from llmlab_server.models import Base

#: Processes started at once, as gunicorn starts its workers.
STARTS = 4


def _start(url: str, barrier: Any, results: Any) -> None:
    """One process: wait for the others, then build the app (migrating), and report whether
    this process ran the migrations."""
    from llmlab_server import create_app

    from .conftest import make_config

    ran: list[bool] = []
    upgrade = db.upgrade

    def spy(eng: Any, revision: str = "head") -> bool:
        ran.append(upgrade(eng, revision))
        return ran[-1]

    db.upgrade = spy
    barrier.wait(60)
    app = create_app(make_config(url, AUTO_MIGRATE=True))
    app.extensions["llmlab_db"][0].dispose()
    results.put(ran == [True])


def _start_at_once(url: str) -> list[bool]:
    """Start `STARTS` processes on ``url`` at the same moment; whether each one migrated."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(STARTS), ctx.Queue()
    procs = [ctx.Process(target=_start, args=(url, barrier, results)) for _ in range(STARTS)]
    for proc in procs:
        proc.start()
    try:
        ran = [results.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)
    return ran


class TestMigrations:
    """Alembic migrations."""

    def test_migrations_match_the_models(self, database_url: str) -> None:
        """The migrated schema has exactly the models' tables, columns and indexes."""
        engine = db.make_engine(database_url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(
                    conn, opts=db.compare_options(conn.dialect.name)), Base.metadata)
        engine.dispose()
        assert diff == []

    def test_database_is_at_head(self, database_url: str) -> None:
        """The session database is at the newest revision; upgrading again changes nothing."""
        engine = db.make_engine(database_url)
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision() == "0012"
        engine.dispose()

    def test_downgrade_and_upgrade_round_trip(self, tmp_path: Path) -> None:
        """A SQLite database can be migrated down to empty and back up."""
        engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
        db.upgrade(engine)
        from alembic import command

        cfg = db._alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        engine.dispose()


    def test_postgres_round_trip_of_the_latest_revision(self) -> None:
        """On PostgreSQL the newest revision goes down and up again (0003: the event
        foreign key, the delete trigger and the bytewise event-id collation)."""
        from alembic import command
        from sqlalchemy import text

        from .conftest import _fresh_postgres_schema

        url, schema, admin = _fresh_postgres_schema()
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            cfg = db._alembic_config(engine)
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "0002")
                fks = conn.execute(text(
                    "SELECT count(*) FROM information_schema.table_constraints WHERE "
                    "table_schema = current_schema() AND table_name = 'cost_events' "
                    "AND constraint_type = 'FOREIGN KEY'")).scalar_one()
            assert db.current_revision(engine) == "0002" and fks == 1
            db.upgrade(engine)
            assert db.current_revision(engine) == db.head_revision()
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(
                    conn, opts=db.compare_options(conn.dialect.name)), Base.metadata)
                collation = conn.execute(text(
                    "SELECT collation_name FROM information_schema.columns WHERE "
                    "table_schema = current_schema() AND table_name = 'cost_events' "
                    "AND column_name = 'event_id'")).scalar_one()
                triggers = conn.execute(text(
                    "SELECT count(*) FROM information_schema.triggers WHERE "
                    "trigger_schema = current_schema() "
                    "AND trigger_name = 'trg_projects_delete_events'")).scalar_one()
            assert diff == [] and collation == "C" and triggers == 1
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()


class TestConcurrentStarts:
    """Processes that start at once on a fresh database."""

    def test_sqlite(self, tmp_path: Path) -> None:
        """Every process starting on a fresh SQLite file starts; one migrates, the others
        wait for it and skip."""
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        assert sorted(_start_at_once(url)) == [False] * (STARTS - 1) + [True]
        engine = db.make_engine(url)
        assert db.current_revision(engine) == db.head_revision()
        engine.dispose()

    def test_postgres(self) -> None:
        """Every process starting on a fresh PostgreSQL schema starts; one migrates."""
        from sqlalchemy import text

        from .conftest import _fresh_postgres_schema

        url, schema, admin = _fresh_postgres_schema()
        try:
            assert sorted(_start_at_once(url)) == [False] * (STARTS - 1) + [True]
            engine = db.make_engine(url)
            assert db.current_revision(engine) == db.head_revision()
            engine.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()


class TestSqlitePragmas:
    """SQLite connection settings."""

    def test_foreign_keys_and_wal_are_on(self, tmp_path: Path) -> None:
        """SQLite connections enforce foreign keys and use WAL, checkpointed in bulk."""
        from sqlalchemy import text

        engine = db.make_engine(f"sqlite:///{tmp_path / 'p.db'}")
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            # Checkpoints every ~10 ingest batches, a 64 MB page cache (docs/performance.md).
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 10000
            assert conn.execute(text("PRAGMA cache_size")).scalar() == -65536
        engine.dispose()
