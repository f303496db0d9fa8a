"""Database wiring: one engine per app, a session per request, Alembic migrations.

>>> # inside a request or app context
>>> # session = db.session()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app, g
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["current_revision", "dialect_insert", "engine", "head_revision", "init_app",
           "make_engine", "session", "upgrade"]

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


def upgrade(eng: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``eng``'s database."""
    cfg = _alembic_config(eng)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str | None:
    """The newest migration shipped with the package."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(eng: Engine) -> str | None:
    """The migration the database is at (None when it has none)."""
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
