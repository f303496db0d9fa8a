"""Server configuration, read from the environment (``LLMLAB_*`` variables).

``Config.from_env()`` is what `create_app` uses when it is given nothing; tests pass a
`TestConfig`. ``LLMLAB_ENV`` is ``production`` (the default: gunicorn), ``development``
(``llmlab server serve``) or ``testing``; outside development and testing a missing
``LLMLAB_SECRET_KEY`` refuses to start, because it signs access tokens and keys API-key hashes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from llmlab._paths import home_dir

__all__ = ["Config", "ConfigError", "TestConfig", "default_database_url"]

ENVIRONMENTS = ("production", "development", "testing")


class ConfigError(RuntimeError):
    """The server is misconfigured and must not start."""


def default_database_url() -> str:
    """``sqlite:///$LLMLAB_HOME/llmlab.db`` (``~/.llmlab/llmlab.db`` by default)."""
    return f"sqlite:///{home_dir() / 'llmlab.db'}"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _flag(name: str) -> bool | None:
    """An on/off variable; None when it is not set."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def _dev_secret() -> str:
    # Development keeps one generated secret on disk so API keys survive a restart.
    path = home_dir() / "server-secret"
    if path.exists():
        return path.read_text("utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret, "utf-8")
    path.chmod(0o600)
    return secret


class Config:
    """Settings of one server process; uppercase attributes become ``app.config`` keys."""

    ENV = "production"
    TESTING = False
    DATABASE_URL = ""
    SECRET_KEY = ""
    #: Apply Alembic migrations when the app starts (SQLite only by default).
    AUTO_MIGRATE: bool | None = None
    ACCESS_TOKEN_TTL = 15 * 60
    REFRESH_TOKEN_TTL = 30 * 24 * 3600
    BCRYPT_ROUNDS = 12
    #: Largest request body, compressed and (for gzip) decompressed, in bytes.
    MAX_BODY_BYTES = 10 * 1024 * 1024
    MAX_BATCH = 1000
    #: Token bucket per API key / user: sustained requests per second and burst size.
    RATE_LIMIT_PER_SECOND = 50.0
    RATE_LIMIT_BURST = 500
    #: Longest time range a summary, timeseries, events or export query may span, in days.
    MAX_RANGE_DAYS = 366
    #: Relative difference above which a client's cost disagrees with the server's price.
    COST_MISMATCH_TOLERANCE = "0.000001"
    #: Allow webhook URLs that resolve to internal addresses: False, True, or a
    #: comma-separated list of CIDRs ("127.0.0.0/8,::1/128").
    WEBHOOK_ALLOW_PRIVATE: bool | str = False
    #: Seconds before each retry of a failed webhook delivery.
    WEBHOOK_RETRY_DELAYS: tuple[float, ...] = (1, 4, 16, 60, 300)
    #: Seconds a webhook receiver gets to answer.
    WEBHOOK_TIMEOUT = 5.0
    JSON_SORT_KEYS = False
    #: Freeze the objects alive once the app is built out of the garbage collector's scans
    #: (``gc.freeze()``, once per process); None: on in production only.
    #: Full collections then walk only what requests allocate: collection took 15-25 % of
    #: an ingest batch's time in a server process, 2.6-5 % frozen (docs/performance.md).
    GC_FREEZE: bool | None = None
    #: Net allocations between collections of the collector's youngest generation; None:
    #: 10,000 in production (an ingest batch's short-lived objects are then freed by
    #: reference counting before a collection looks at them), 0 elsewhere: left as it is
    #: (Python's 700 unless the host application changed it).
    GC_THRESHOLD: int | None = None

    @classmethod
    def from_env(cls) -> Config:
        """A config from ``LLMLAB_*`` environment variables."""
        cfg = cls()
        env = os.environ.get("LLMLAB_ENV", cls.ENV).strip().lower()
        if env not in ENVIRONMENTS:
            raise ConfigError(f"LLMLAB_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
        cfg.ENV = env
        cfg.TESTING = env == "testing"
        cfg.DATABASE_URL = os.environ.get("LLMLAB_DATABASE_URL") or default_database_url()
        cfg.SECRET_KEY = os.environ.get("LLMLAB_SECRET_KEY", "")
        auto = os.environ.get("LLMLAB_AUTO_MIGRATE")
        cfg.AUTO_MIGRATE = None if not auto else auto.lower() in ("1", "true", "yes")
        cfg.ACCESS_TOKEN_TTL = _int("LLMLAB_ACCESS_TOKEN_TTL", cls.ACCESS_TOKEN_TTL)
        cfg.REFRESH_TOKEN_TTL = _int("LLMLAB_REFRESH_TOKEN_TTL", cls.REFRESH_TOKEN_TTL)
        cfg.BCRYPT_ROUNDS = _int("LLMLAB_BCRYPT_ROUNDS", cls.BCRYPT_ROUNDS)
        cfg.MAX_BODY_BYTES = _int("LLMLAB_MAX_BODY_BYTES", cls.MAX_BODY_BYTES)
        cfg.MAX_BATCH = _int("LLMLAB_MAX_BATCH", cls.MAX_BATCH)
        cfg.RATE_LIMIT_PER_SECOND = _float("LLMLAB_RATE_LIMIT_PER_SECOND",
                                           cls.RATE_LIMIT_PER_SECOND)
        cfg.RATE_LIMIT_BURST = _int("LLMLAB_RATE_LIMIT_BURST", cls.RATE_LIMIT_BURST)
        cfg.MAX_RANGE_DAYS = _int("LLMLAB_MAX_RANGE_DAYS", cls.MAX_RANGE_DAYS)
        cfg.WEBHOOK_ALLOW_PRIVATE = os.environ.get("LLMLAB_WEBHOOK_ALLOW_PRIVATE", "") or False
        cfg.GC_FREEZE = _flag("LLMLAB_GC_FREEZE")
        threshold = os.environ.get("LLMLAB_GC_THRESHOLD", "").strip()
        cfg.GC_THRESHOLD = _int("LLMLAB_GC_THRESHOLD", 0) if threshold else None
        return cfg


class TestConfig(Config):
    """Fast, isolated settings for the test suite (cheap bcrypt, fixed secret)."""

    __test__ = False  # not a pytest test class
    ENV = "testing"
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production-0123456789"
    BCRYPT_ROUNDS = 4
    AUTO_MIGRATE = False


def finalise(settings: dict[str, Any]) -> None:
    """Fill derived defaults and refuse unsafe settings (called by `create_app`)."""
    if settings.get("ENV") not in ENVIRONMENTS:
        raise ConfigError(f"ENV must be one of {', '.join(ENVIRONMENTS)}")
    if not settings.get("DATABASE_URL"):
        settings["DATABASE_URL"] = default_database_url()
    if not settings.get("SECRET_KEY"):
        if settings["ENV"] == "production":
            raise ConfigError(
                "LLMLAB_SECRET_KEY is not set. It signs access tokens and keys API-key hashes, "
                "so the server refuses to start in production without it. Generate one with "
                "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"` and export "
                "LLMLAB_SECRET_KEY (or set LLMLAB_ENV=development for a local server).")
        settings["SECRET_KEY"] = _dev_secret()
    if settings.get("AUTO_MIGRATE") is None:
        settings["AUTO_MIGRATE"] = str(settings["DATABASE_URL"]).startswith("sqlite")
    if settings.get("GC_FREEZE") is None:
        settings["GC_FREEZE"] = settings["ENV"] == "production"
    if settings.get("GC_THRESHOLD") is None:
        settings["GC_THRESHOLD"] = 10_000 if settings["ENV"] == "production" else 0
    if not 0 <= settings["GC_THRESHOLD"] < 2**31:
        raise ConfigError("LLMLAB_GC_THRESHOLD must be 0 (keep Python's) or a positive "
                          "number of allocations below 2**31")
    url = str(settings["DATABASE_URL"])
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if settings["MAX_BATCH"] < 1 or settings["MAX_BODY_BYTES"] < 1:
        raise ConfigError("LLMLAB_MAX_BATCH and LLMLAB_MAX_BODY_BYTES must be positive")
