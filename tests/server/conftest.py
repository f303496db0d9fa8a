"""Fixtures of the server suite: every app-level test runs on SQLite and on PostgreSQL.

PostgreSQL is the one at ``LLMLAB_TEST_POSTGRES_URL`` (default
``postgresql+psycopg2://postgres@127.0.0.1:5432/test``). Each session migrates a fresh schema
there and drops it at the end; when the server is unreachable the tests FAIL (CI requires them).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from llmlab_server import create_app, db
from llmlab_server.config import TestConfig
from llmlab_server.models import Base

from .helpers import Api, Receiver

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep ~/.llmlab (pricing overrides, dev secret) out of the tests."""
    home = tmp_path_factory.mktemp("llmlab-home")
    old = os.environ.get("LLMLAB_HOME")
    os.environ["LLMLAB_HOME"] = str(home)
    from llmlab.pricing import Catalogue

    Catalogue.reset_default()
    yield home
    if old is None:
        os.environ.pop("LLMLAB_HOME", None)
    else:
        os.environ["LLMLAB_HOME"] = old
    Catalogue.reset_default()


def postgres_url() -> str:
    """The PostgreSQL server the suite uses."""
    return os.environ.get("LLMLAB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _fresh_postgres_schema() -> tuple[str, str, Engine]:
    base = postgres_url()
    admin = db.make_engine(base)
    schema = f"llmlab_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the suite must fail, not skip, without PostgreSQL
        admin.dispose()
        pytest.fail(f"PostgreSQL at {base} is unreachable ({exc!r}); the server tests need it. "
                    "Start it or set LLMLAB_TEST_POSTGRES_URL.", pytrace=False)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema, admin


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres_only`` run on PostgreSQL alone: their SQLite variant is
    deselected (not skipped, so no skip is ever counted where a test could not run)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        sqlite = callspec is not None and callspec.params.get("database_url") == "sqlite"
        (drop if sqlite and item.get_closest_marker("postgres_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """A migrated, empty database for this session: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'llmlab.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url
        return
    url, schema, admin = _fresh_postgres_schema()
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def wipe(engine: Engine) -> None:
    """Delete every row (the schema stays)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def make_config(database_url: str, **overrides: Any) -> TestConfig:
    """A `TestConfig` on ``database_url`` with ``overrides``."""
    config = TestConfig()
    config.DATABASE_URL = database_url
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Overrides of `TestConfig` for this test's app (set before ``app`` is created)."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    """A server on this session's database, emptied after the test."""
    application = create_app(make_config(database_url, **app_config))
    yield application
    engine = application.extensions["llmlab_db"][0]
    wipe(engine)
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def backend(database_url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture
def api(client: FlaskClient) -> Api:
    """The `Api` helper on ``client``."""
    return Api(client)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running local webhook receiver (`Receiver`)."""
    r = Receiver()
    yield r
    r.close()
