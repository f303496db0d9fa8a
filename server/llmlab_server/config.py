"""Server configuration, read from the environment (``LLMLAB_*`` variables).

``Config.from_env()`` is what `create_app` uses when it is given nothing; tests pass a
`TestConfig`. ``LLMLAB_ENV`` is ``production`` (the default: gunicorn), ``development``
(``llmlab server serve``) or ``testing``; outside development and testing a missing
``LLMLAB_SECRET_KEY`` refuses to start, because it signs access tokens and keys API-key hashes.

Every variable is parsed and bounded by one pydantic-settings model (`_Environment`), so a bad
value stops the start with a `ConfigError` naming the variable, the value and what is accepted,
instead of failing later inside a request. Switches take the SDK's spellings (`llmlab._env`).
"""

from __future__ import annotations

import ipaddress
import math
import re
import secrets
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from limits import parse
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import storage_from_string
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmlab._env import SPELLINGS, parse_bool
from llmlab._paths import home_dir

if TYPE_CHECKING:  # pydantic's own dependency; only its type is needed
    from pydantic_core import ErrorDetails

__all__ = ["Config", "ConfigError", "TestConfig", "default_database_url"]

ENVIRONMENTS = ("production", "development", "testing")
#: Longest token lifetime, in seconds: 100 years keeps every expiry date representable.
_MAX_TTL = 100 * 365 * 24 * 3600


class ConfigError(RuntimeError):
    """The server is misconfigured and must not start."""


def default_database_url() -> str:
    """``sqlite:///$LLMLAB_HOME/llmlab.db`` (``~/.llmlab/llmlab.db`` by default)."""
    return f"sqlite:///{home_dir() / 'llmlab.db'}"


def _switch(raw: object) -> object:
    """A switch from its text (blank: unset); other values pass to pydantic unchanged."""
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        return None
    flag = parse_bool(raw)
    if flag is None:
        raise ValueError("not an accepted switch spelling")
    return flag


def _switch_or_networks(raw: object) -> object:
    """A switch, or a comma-separated list of CIDRs (checked here, kept as text)."""
    if not isinstance(raw, str) or parse_bool(raw) is not None or not raw.strip():
        return _switch(raw)
    networks = [part.strip() for part in raw.split(",") if part.strip()]
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # a ValueError refuses the variable
    return ",".join(networks)


def _environment_name(raw: object) -> object:
    """``LLMLAB_ENV`` compared without case or surrounding spaces, as before."""
    return raw.strip().lower() if isinstance(raw, str) else raw


def _rate(raw: object) -> object:
    """A ``limits`` rate such as ``30 per 5 minutes`` (checked here, kept as text)."""
    if isinstance(raw, str) and raw.strip():
        parse(raw)  # a ValueError refuses the variable
        return raw.strip()
    return raw


def _storage(raw: object) -> object:
    """A ``limits`` storage URI whose scheme and driver are available (built once to check:
    storages connect lazily, so this needs no server)."""
    if isinstance(raw, str) and raw.strip():
        if raw.startswith("async+"):  # the throttle is synchronous
            raise ValueError("asynchronous storages are not supported")
        try:
            storage_from_string(raw.strip())
        except LimitsConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return raw.strip()
    return raw


def _smtp_url(raw: object) -> object:
    """An SMTP URL with one of the three schemes `llmlab_server.mail.SmtpMailer` speaks."""
    if isinstance(raw, str) and raw.strip():
        if not raw.strip().startswith(("smtp://", "smtp+starttls://", "smtps://")):
            raise ValueError("not an smtp URL")
        return raw.strip()
    return raw


Switch = Annotated[bool | None, BeforeValidator(_switch)]
_RATE = "a number of failures per period, such as '30 per 5 minutes'"
_TTL = f"a whole number of seconds from 1 to {_MAX_TTL}"
_AT_LEAST_1 = "a whole number, at least 1"
_OFF_OR_COUNT = "0 (no quota) or a whole number of events"


class _Environment(BaseSettings):
    """The ``LLMLAB_*`` variables, each parsed and bounded. Field names are `Config`'s
    attributes; ``description`` says what is accepted (error messages quote it). Unset or
    empty variables stay None, so `Config.from_env` keeps the class default."""

    # Exact upper-case names, as the docs spell them; no .env file is read.
    model_config = SettingsConfigDict(env_prefix="LLMLAB_", case_sensitive=True,
                                      env_ignore_empty=True, extra="ignore")

    ENV: Annotated[Literal["production", "development", "testing"] | None,
                   BeforeValidator(_environment_name)] = Field(
        default=None, description="one of production, development or testing")
    DATABASE_URL: str | None = None
    SECRET_KEY: str | None = None
    AUTO_MIGRATE: Switch = Field(default=None, description=SPELLINGS)
    ACCESS_TOKEN_TTL: int | None = Field(default=None, ge=1, le=_MAX_TTL, description=_TTL)
    REFRESH_TOKEN_TTL: int | None = Field(default=None, ge=1, le=_MAX_TTL, description=_TTL)
    # bcrypt's own range: gensalt() refuses anything else, so every signup would fail.
    BCRYPT_ROUNDS: int | None = Field(default=None, ge=4, le=31,
                                      description="a whole number from 4 to 31")
    MAX_BODY_BYTES: int | None = Field(default=None, ge=1, description=_AT_LEAST_1)
    MAX_BATCH: int | None = Field(default=None, ge=1, description=_AT_LEAST_1)
    RATE_LIMIT_PER_SECOND: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                                description="a finite number above 0")
    RATE_LIMIT_BURST: int | None = Field(default=None, ge=1, description=_AT_LEAST_1)
    # Ranges are compared with a timedelta, which holds at most this many days.
    MAX_RANGE_DAYS: int | None = Field(
        default=None, ge=1, le=timedelta.max.days,
        description=f"a whole number of days from 1 to {timedelta.max.days}")
    WEBHOOK_ALLOW_PRIVATE: Annotated[bool | str | None, BeforeValidator(_switch_or_networks)] = (
        Field(default=None, description=f"{SPELLINGS}, or a comma-separated list of CIDRs "
                                        "such as 127.0.0.0/8,::1/128"))
    GC_FREEZE: Switch = Field(default=None, description=SPELLINGS)
    AUTH_THROTTLE_PER_CLIENT: Annotated[str | None, BeforeValidator(_rate)] = Field(
        default=None, description=_RATE)
    AUTH_THROTTLE_PER_ACCOUNT: Annotated[str | None, BeforeValidator(_rate)] = Field(
        default=None, description=_RATE)
    AUTH_THROTTLE_STORAGE: Annotated[str | None, BeforeValidator(_storage)] = Field(
        default=None, description="a limits storage URI such as memory:// or redis://host:6379")
    REDIS_URL: Annotated[str | None, BeforeValidator(_storage)] = Field(
        default=None, description="a redis:// URL such as redis://127.0.0.1:6379/0")
    SMTP_URL: Annotated[str | None, BeforeValidator(_smtp_url)] = Field(
        default=None, description="smtp://host:25, smtp+starttls://user:pass@host:587 or "
                                  "smtps://user:pass@host:465")
    MAIL_FROM: str | None = None
    QUOTA_EVENTS_PER_DAY: int | None = Field(default=None, ge=0, description=_OFF_OR_COUNT)
    QUOTA_EVENTS_PER_MINUTE: int | None = Field(default=None, ge=0, description=_OFF_OR_COUNT)
    RETENTION_DAYS: int | None = Field(
        default=None, ge=0, le=timedelta.max.days,
        description=f"0 (keep events for ever) or a whole number of days up to "
                    f"{timedelta.max.days}")
    # gc.set_threshold() takes a C int.
    GC_THRESHOLD: int | None = Field(default=None, ge=0, lt=2**31,
                                     description="0 (keep Python's) or a whole number below 2**31")
    TRUSTED_PROXIES: int | None = Field(
        default=None, ge=0, le=10, description="0 (no proxy) or the number of proxy hops, up to 10")
    QUOTA_STORED_EVENTS: int | None = Field(default=None, ge=0, description=_OFF_OR_COUNT)
    WEBHOOK_MAX_ATTEMPTS: int | None = Field(default=None, ge=1, le=100,
                                             description="a whole number from 1 to 100")
    WEBHOOK_RETRY_BASE: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False,
                                             description="seconds above 0, at most 86400")
    WEBHOOK_RETRY_MAX: float | None = Field(default=None, gt=0, le=7 * 86400,
                                            allow_inf_nan=False,
                                            description="seconds above 0, at most 604800")
    WEBHOOK_POLL_INTERVAL: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False,
                                                description="seconds above 0, at most 3600")


def _refusal(error: ErrorDetails) -> str:
    """One sentence for one invalid variable: its name, its value, what is accepted."""
    field = str(error["loc"][0])
    accepted = _Environment.model_fields[field].description or error["msg"]
    return f"LLMLAB_{field} must be {accepted}, got {error['input']!r}"


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


#: Shortest production secret, in characters.
MIN_SECRET_LENGTH = 32
#: Least Shannon entropy of a production secret's characters, in bits: ``token_urlsafe(48)``
#: scores ~350 and ``token_hex(16)`` ~115 (under 93 in none of 200,000 draws); one letter
#: repeated scores 0, two letters 32.
MIN_SECRET_BITS = 80


def _refuse_weak_secret(secret: str) -> None:
    """Refuse a guessable production secret: it signs tokens, so guessing it is a login as
    anyone. An estimate of the characters' entropy catches repeats and short alphabets."""
    counts = Counter(secret)
    bits = -sum(n * math.log2(n / len(secret)) for n in counts.values())
    # A word repeated to length ("changeme" four times) has a word's entropy, not its length's.
    repeated = re.fullmatch(r"(.+?)\1+", secret) is not None
    public = secret == TestConfig.SECRET_KEY
    if len(secret) < MIN_SECRET_LENGTH or bits < MIN_SECRET_BITS or repeated or public:
        raise ConfigError(
            f"LLMLAB_SECRET_KEY is too guessable for production (it needs at least "
            f"{MIN_SECRET_LENGTH} random characters; it signs access tokens and keys API-key "
            "hashes). Generate one with `python -c \"import secrets; "
            "print(secrets.token_urlsafe(48))\"`, or set LLMLAB_ENV=development for a local "
            "server.")


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
    #: Failed authentications (bad API keys, tokens, refresh tokens, passwords; signups of a
    #: taken email) one client address may make in a moving window before it gets 429.
    AUTH_THROTTLE_PER_CLIENT = "30 per 5 minutes"
    #: Failed logins of one account, from any address, before its logins get 429.
    AUTH_THROTTLE_PER_ACCOUNT = "10 per 15 minutes"
    #: Where failures are counted: ``memory://`` (per process) or a shared ``redis://`` URL.
    AUTH_THROTTLE_STORAGE = "memory://"
    #: Redis shared by every process and instance for rate limits and the failure throttle
    #: (when that one is left at memory://); empty: each process limits on its own.
    REDIS_URL = ""
    #: Where verification, password-reset and invitation mails go; empty: to the log.
    SMTP_URL = ""
    MAIL_FROM = "llmlab <no-reply@localhost>"
    #: New events one project may store per UTC day and per minute (429 ``quota_exceeded``
    #: past them); 0: no quota (`llmlab_server.services.quotas`).
    QUOTA_EVENTS_PER_DAY = 0
    QUOTA_EVENTS_PER_MINUTE = 0
    #: Days raw events are kept; ``llmlab server db prune`` deletes older ones (the hourly
    #: rollups keep their totals). 0: kept for ever.
    RETENTION_DAYS = 0
    #: Reverse proxies in front of the server that append to ``X-Forwarded-For`` (and set
    #: ``X-Forwarded-Proto``); their hops are trusted to name the client, so limits and the
    #: failure throttle count per real client. 0: the socket's peer is the client and the
    #: headers are ignored (anyone can forge them).
    TRUSTED_PROXIES = 0
    #: Events one project may keep stored (507 ``storage_quota_exceeded`` past it); 0: no cap.
    QUOTA_STORED_EVENTS = 0
    #: Tries of a webhook delivery before it is ``dead`` (``llmlab server webhooks retry``).
    WEBHOOK_MAX_ATTEMPTS = 8
    #: Seconds before the first retry of a failed delivery; each next one waits 4 times as
    #: long (1, 4, 16, 64 s ...), at most ``WEBHOOK_RETRY_MAX``.
    WEBHOOK_RETRY_BASE = 1.0
    WEBHOOK_RETRY_MAX = 3600.0
    #: Seconds between two looks at the webhook outbox for deliveries other processes queued
    #: (this process's own are claimed at once).
    WEBHOOK_POLL_INTERVAL = 2.0
    #: Seconds a process holds a claimed delivery; a killed claimer's is taken over after it.
    WEBHOOK_LEASE = 60.0

    @classmethod
    def from_env(cls) -> Config:
        """A config from ``LLMLAB_*`` environment variables; an unset or empty one keeps the
        class default. Raises `ConfigError` listing every invalid variable."""
        try:
            read = _Environment()
        except ValidationError as exc:
            raise ConfigError("\n".join(_refusal(error) for error in exc.errors())) from None
        cfg = cls()
        for name, value in read.model_dump(exclude_unset=True).items():
            if value is not None:
                setattr(cfg, name, value)
        cfg.TESTING = cfg.ENV == "testing"
        cfg.DATABASE_URL = cfg.DATABASE_URL or default_database_url()
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
    elif settings["ENV"] == "production":
        _refuse_weak_secret(str(settings["SECRET_KEY"]))
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
