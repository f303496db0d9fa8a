"""Database wiring: one engine per app, a session per request, Alembic migrations.

>>> # inside a request or app context
>>> # session = db.session()
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app, g
from sqlalchemy import Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["compare_options", "current_revision", "dialect_insert", "engine", "head_revision",
           "init_app", "make_engine", "session", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        eng = create_engine(url, **kwargs)

        @event.listens_for(eng, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                # A 500-event batch dirties ~1,000 index pages: checkpoint every ~10 batches,
                # not after every one (each checkpoint syncs the file), and keep the hot
                # pages in a 64 MB cache instead of SQLite's default 2 MB.
                cur.execute("PRAGMA wal_autocheckpoint=10000")
                cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        return eng
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def dialect_insert(session: Session, table: Table) -> Any:
    """An INSERT of the session's dialect, which knows ``ON CONFLICT``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory, close sessions after each request."""
    eng = make_engine(app.config["DATABASE_URL"], **app.config.get("ENGINE_OPTIONS", {}))
    app.extensions["llmlab_db"] = (eng, sessionmaker(eng, expire_on_commit=False))
    app.teardown_appcontext(_close_session)
    if app.config["AUTO_MIGRATE"]:
        upgrade(eng)
    if eng.dialect.name == "postgresql":  # this month's and the next ones' event partitions
        _ensure_partitions(eng)


def _ensure_partitions(eng: Engine) -> None:
    """Create the coming months' partitions of ``cost_events`` (`services.partitions`); a
    database not reachable yet only delays it to the first ingest (`partitions.maybe_ensure`)."""
    from llmlab_server.services import partitions

    try:
        with eng.begin() as conn:
            partitions.ensure(conn)
    except OperationalError:
        logging.getLogger(__name__).warning("cost_events partitions not checked at start-up",
                                            exc_info=True)


def engine() -> Engine:
    """The current app's engine."""
    eng: Engine = current_app.extensions["llmlab_db"][0]
    return eng


def session() -> Session:
    """The session of the current request (created on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["llmlab_db"][1]()
    sess: Session = g.db_session
    return sess


def _close_session(_exc: BaseException | None) -> None:
    sess = g.pop("db_session", None)
    if sess is not None:
        sess.close()


def _alembic_config(eng: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    url = eng.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser syntax
    return cfg


#: `pg_advisory_xact_lock` key of migrations (any constant: it names the lock).
_PG_MIGRATION_LOCK = 0x6C6C6D6C6162  # "llmlab"
#: Seconds a starting process waits for another one's SQLite migration.
_SQLITE_LOCK_TIMEOUT = 600.0


def upgrade(eng: Engine, revision: str = "head") -> bool:
    """Apply migrations up to ``revision`` on ``eng``'s database; False when it was already
    at the head. Processes starting at once (gunicorn workers) migrate one at a time: the
    others wait, then find the schema at the head and skip, instead of racing to create
    the same tables."""
    head = head_revision() if revision == "head" else None
    if head is not None and current_revision(eng) == head:  # the usual start: no lock
        return False
    cfg = _alembic_config(eng)
    with _migration_lock(eng), eng.begin() as conn:
        if eng.dialect.name == "postgresql":  # one per database, freed when this commits or dies
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        if head is not None and MigrationContext.configure(conn).get_current_revision() == head:
            return False
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return True


@contextmanager
def _migration_lock(eng: Engine) -> Iterator[None]:
    """On a SQLite file, an exclusive transaction on a file beside it (the database's own
    lock would block the migration itself; the OS drops it if the process dies)."""
    path = eng.url.database
    if eng.dialect.name != "sqlite" or not path or path == ":memory:":
        yield
        return
    lock = sqlite3.connect(f"{path}.migrating", timeout=_SQLITE_LOCK_TIMEOUT,
                           isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        lock.close()  # rolls the empty transaction back, releasing the lock


def compare_options(dialect: str) -> dict[str, Any]:
    """Alembic comparison options (``MigrationContext.configure(opts=...)``) that leave out
    PostgreSQL's physical layout of events the models do not describe: the month partitions
    of ``cost_events``, ``cost_event_ids`` and the unique constraint it stands in for
    (migration 0012, ``services/partitions.py``)."""
    if dialect != "postgresql":
        return {}

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return not (type_ == "table" and name is not None and (
            name == "cost_event_ids" or name.startswith("cost_events_")))

    def include_object(_obj: Any, name: str | None, type_: str, reflected: bool,
                       _compare_to: Any) -> bool:
        return not (type_ == "unique_constraint" and name == "uq_cost_events_project_event"
                    and not reflected)

    return {"include_name": include_name, "include_object": include_object}


def head_revision() -> str | None:
    """The newest migration shipped with the package."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(eng: Engine) -> str | None:
    """The migration the database is at (None when it has none)."""
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
