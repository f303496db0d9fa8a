"""Config from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from llmlab_server import create_app
from llmlab_server.config import (
    Config,
    ConfigError,
    TestConfig,
    _Environment,
    default_database_url,
    finalise,
)

#: Every accepted spelling of a switch, in the cases and with the spaces people type.
TRUE_SPELLINGS = ("1", "true", "True", "TRUE", "yes", "Yes", "on", "ON", " on ", "\ttrue\n")
FALSE_SPELLINGS = ("0", "false", "False", "no", "NO", "off", "Off", " off ", "\tfalse\n")
#: Words pydantic's bool parser (or a guess) would take, which the documented table refuses.
REFUSED_SWITCHES = ("t", "f", "y", "n", "maybe", "2", "enabled", "-1")
SWITCHES = ("LLMLAB_AUTO_MIGRATE", "LLMLAB_GC_FREEZE", "LLMLAB_WEBHOOK_ALLOW_PRIVATE")
#: A secret production accepts (``secrets.token_urlsafe(48)``).
STRONG_SECRET = "Jq8nY2vK0xR4tW6zB1cE3gH5jL7mN9pS-uV_aD2fG4hK6mP8rT0wY3zC5eF7iJ9"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LLMLAB_* setting of the host leaks into these tests."""
    for field in _Environment.model_fields:
        monkeypatch.delenv(f"LLMLAB_{field}", raising=False)


class TestFromEnv:
    """Config.from_env."""

    def test_defaults(self) -> None:
        """Without variables: production, default SQLite file, 1000-event batches."""
        cfg = Config.from_env()
        assert cfg.ENV == "production" and cfg.MAX_BATCH == 1000
        assert default_database_url() == cfg.DATABASE_URL
        assert cfg.ACCESS_TOKEN_TTL == 900
        assert cfg.AUTO_MIGRATE is None and cfg.GC_FREEZE is None and cfg.GC_THRESHOLD is None
        assert cfg.WEBHOOK_ALLOW_PRIVATE is False

    def test_reads_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_* variables override the defaults."""
        monkeypatch.setenv("LLMLAB_DATABASE_URL", "postgresql+psycopg2://x@h/db")
        monkeypatch.setenv("LLMLAB_MAX_BATCH", "50")
        monkeypatch.setenv("LLMLAB_RATE_LIMIT_PER_SECOND", "2.5")
        monkeypatch.setenv("LLMLAB_ENV", " Development ")
        cfg = Config.from_env()
        assert cfg.DATABASE_URL.startswith("postgresql") and cfg.MAX_BATCH == 50
        assert cfg.RATE_LIMIT_PER_SECOND == 2.5 and cfg.ENV == "development"
        assert cfg.TESTING is False

    def test_empty_variables_keep_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An empty (or, for a switch, blank) variable means unset."""
        for name in ("LLMLAB_ENV", "LLMLAB_MAX_BATCH", "LLMLAB_DATABASE_URL", "LLMLAB_GC_THRESHOLD"):
            monkeypatch.setenv(name, "")
        for name in SWITCHES:
            monkeypatch.setenv(name, "  ")
        cfg = Config.from_env()
        assert (cfg.ENV, cfg.MAX_BATCH, cfg.GC_THRESHOLD) == ("production", 1000, None)
        assert default_database_url() == cfg.DATABASE_URL
        assert (cfg.AUTO_MIGRATE, cfg.GC_FREEZE, cfg.WEBHOOK_ALLOW_PRIVATE) == (None, None, False)

    def test_unset_variables_keep_a_subclass_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """TestConfig.from_env() keeps TestConfig's secret and bcrypt cost when they are unset."""
        monkeypatch.setenv("LLMLAB_MAX_BATCH", "3")
        cfg = TestConfig.from_env()
        assert cfg.SECRET_KEY == TestConfig.SECRET_KEY and cfg.BCRYPT_ROUNDS == 4
        assert cfg.TESTING is True and cfg.AUTO_MIGRATE is False and cfg.MAX_BATCH == 3

    def test_only_the_upper_case_names_are_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A variable is read under its documented name only (llmlab_max_batch is not it)."""
        monkeypatch.setenv("llmlab_max_batch", "5")
        assert Config.from_env().MAX_BATCH == 1000

    def test_gc_freeze_flag(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_GC_FREEZE is on/off; unset, production freezes and the rest do not."""
        monkeypatch.setenv("LLMLAB_GC_FREEZE", "off")
        assert Config.from_env().GC_FREEZE is False
        monkeypatch.setenv("LLMLAB_GC_FREEZE", "Yes")
        assert Config.from_env().GC_FREEZE is True
        base = {"SECRET_KEY": STRONG_SECRET, "MAX_BATCH": 1, "MAX_BODY_BYTES": 1, "GC_FREEZE": None,
                "DATABASE_URL": "postgresql+psycopg2://x@h/db"}
        for env, frozen in (("production", True), ("development", False), ("testing", False)):
            settings = {**base, "ENV": env}
            finalise(settings)
            assert settings["GC_FREEZE"] is frozen

    def test_gc_threshold(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_GC_THRESHOLD is an integer; unset, 10,000 in production and 0 (Python's
        own) elsewhere; a negative one is refused."""
        monkeypatch.setenv("LLMLAB_GC_THRESHOLD", "5000")
        assert Config.from_env().GC_THRESHOLD == 5000
        monkeypatch.delenv("LLMLAB_GC_THRESHOLD")
        assert Config.from_env().GC_THRESHOLD is None
        base = {"SECRET_KEY": STRONG_SECRET, "MAX_BATCH": 1, "MAX_BODY_BYTES": 1, "GC_THRESHOLD": None,
                "DATABASE_URL": "postgresql+psycopg2://x@h/db"}
        for env, threshold in (("production", 10_000), ("development", 0), ("testing", 0)):
            settings = {**base, "ENV": env}
            finalise(settings)
            assert settings["GC_THRESHOLD"] == threshold
        for bad in (-1, 2**31):
            with pytest.raises(ConfigError, match="LLMLAB_GC_THRESHOLD"):
                finalise({**base, "ENV": "testing", "GC_THRESHOLD": bad})

    @pytest.mark.parametrize(("name", "value"), [("LLMLAB_MAX_BATCH", "many"),
                                                 ("LLMLAB_ENV", "staging"),
                                                 ("LLMLAB_RATE_LIMIT_BURST", "1.5"),
                                                 ("LLMLAB_GC_FREEZE", "maybe"),
                                                 ("LLMLAB_GC_THRESHOLD", "lots")])
    def test_bad_values_are_refused(self, monkeypatch: pytest.MonkeyPatch, name: str,
                                    value: str) -> None:
        """A malformed variable is a ConfigError naming it and quoting the value."""
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name) as caught:
            Config.from_env()
        assert repr(value) in str(caught.value)

    def test_auto_migrate_defaults_to_sqlite_only(self) -> None:
        """Migrations run on start for SQLite and not for PostgreSQL unless asked."""
        base = {"ENV": "testing", "SECRET_KEY": "s", "MAX_BATCH": 1, "MAX_BODY_BYTES": 1,
                "AUTO_MIGRATE": None}
        lite = {**base, "DATABASE_URL": "sqlite:///:memory:"}
        pg = {**base, "DATABASE_URL": "postgresql+psycopg2://x@h/db"}
        finalise(lite)
        finalise(pg)
        assert lite["AUTO_MIGRATE"] is True and pg["AUTO_MIGRATE"] is False


class TestSwitches:
    """On/off variables: one spelling table (the SDK's), for every switch."""

    @pytest.mark.parametrize("name", SWITCHES)
    @pytest.mark.parametrize(("value", "expected"), [(v, True) for v in TRUE_SPELLINGS]
                             + [(v, False) for v in FALSE_SPELLINGS])
    def test_every_spelling_of_every_switch(self, monkeypatch: pytest.MonkeyPatch, name: str,
                                            value: str, expected: bool) -> None:
        """1/0, true/false, yes/no and on/off, in any case and with spaces, mean on or off."""
        monkeypatch.setenv(name, value)
        assert getattr(Config.from_env(), name.removeprefix("LLMLAB_")) is expected

    @pytest.mark.parametrize("name", SWITCHES)
    @pytest.mark.parametrize("value", REFUSED_SWITCHES)
    def test_other_words_are_refused(self, monkeypatch: pytest.MonkeyPatch, name: str,
                                     value: str) -> None:
        """Anything else is a ConfigError naming the variable, the value and the spellings."""
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError) as caught:
            Config.from_env()
        message = str(caught.value)
        assert message.startswith(f"{name} must be 1/0, true/false, yes/no or on/off")
        assert message.endswith(f"got {value!r}")

    def test_webhook_allow_private_takes_cidrs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_WEBHOOK_ALLOW_PRIVATE also takes a CIDR list, kept as text without spaces."""
        monkeypatch.setenv("LLMLAB_WEBHOOK_ALLOW_PRIVATE", " 127.0.0.0/8, ::1/128 ,")
        assert Config.from_env().WEBHOOK_ALLOW_PRIVATE == "127.0.0.0/8,::1/128"

    def test_webhook_allow_private_refuses_a_bad_network(self,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        """One malformed network in the list refuses the variable at start, not at a webhook."""
        monkeypatch.setenv("LLMLAB_WEBHOOK_ALLOW_PRIVATE", "127.0.0.0/8,10/8")
        with pytest.raises(ConfigError, match=r"LLMLAB_WEBHOOK_ALLOW_PRIVATE must be .* CIDRs"):
            Config.from_env()

    @pytest.mark.parametrize(("value", "tables"), [("on", True), ("Off", False)])
    def test_auto_migrate_switch_reaches_the_app(self, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path, value: str,
                                                 tables: bool) -> None:
        """LLMLAB_AUTO_MIGRATE=on migrates a fresh SQLite file when the app starts; off does not."""
        monkeypatch.setenv("LLMLAB_ENV", "testing")
        monkeypatch.setenv("LLMLAB_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
        monkeypatch.setenv("LLMLAB_AUTO_MIGRATE", value)
        app = create_app()
        engine = app.extensions["llmlab_db"][0]
        try:
            assert ("cost_events" in inspect(engine).get_table_names()) is tables
        finally:
            engine.dispose()


class TestBounds:
    """Numbers are refused outside the range the server can work with."""

    @pytest.mark.parametrize(("name", "value"), [
        ("LLMLAB_ACCESS_TOKEN_TTL", "0"), ("LLMLAB_REFRESH_TOKEN_TTL", "-1"),
        ("LLMLAB_ACCESS_TOKEN_TTL", str(10**12)),
        ("LLMLAB_BCRYPT_ROUNDS", "3"), ("LLMLAB_BCRYPT_ROUNDS", "32"),
        ("LLMLAB_MAX_BODY_BYTES", "0"), ("LLMLAB_MAX_BATCH", "0"),
        ("LLMLAB_RATE_LIMIT_PER_SECOND", "0"), ("LLMLAB_RATE_LIMIT_PER_SECOND", "nan"),
        ("LLMLAB_RATE_LIMIT_PER_SECOND", "inf"), ("LLMLAB_RATE_LIMIT_BURST", "0"),
        ("LLMLAB_MAX_RANGE_DAYS", "0"), ("LLMLAB_MAX_RANGE_DAYS", "1000000000"),
        ("LLMLAB_GC_THRESHOLD", "-1"), ("LLMLAB_GC_THRESHOLD", str(2**31)),
    ])
    def test_out_of_range_is_refused(self, monkeypatch: pytest.MonkeyPatch, name: str,
                                     value: str) -> None:
        """A number outside its bounds is a ConfigError naming the variable and the range."""
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError) as caught:
            Config.from_env()
        message = str(caught.value)
        assert message.startswith(f"{name} must be ") and message.endswith(f"got {value!r}")

    @pytest.mark.parametrize(("name", "value"), [
        ("LLMLAB_BCRYPT_ROUNDS", 4), ("LLMLAB_BCRYPT_ROUNDS", 31), ("LLMLAB_GC_THRESHOLD", 0),
        ("LLMLAB_GC_THRESHOLD", 2**31 - 1), ("LLMLAB_MAX_BATCH", 1),
        ("LLMLAB_ACCESS_TOKEN_TTL", 1), ("LLMLAB_RATE_LIMIT_PER_SECOND", 0.001),
    ])
    def test_the_edges_are_accepted(self, monkeypatch: pytest.MonkeyPatch, name: str,
                                    value: float) -> None:
        """The bounds themselves are valid values."""
        monkeypatch.setenv(name, str(value))
        assert getattr(Config.from_env(), name.removeprefix("LLMLAB_")) == value

    def test_every_invalid_variable_is_listed_without_pydantic_noise(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Several bad variables give one error, one line each, with no pydantic text or cause."""
        monkeypatch.setenv("LLMLAB_MAX_BATCH", "0")
        monkeypatch.setenv("LLMLAB_AUTO_MIGRATE", "t")
        with pytest.raises(ConfigError) as caught:
            Config.from_env()
        assert str(caught.value).splitlines() == [
            "LLMLAB_AUTO_MIGRATE must be 1/0, true/false, yes/no or on/off (any case), got 't'",
            "LLMLAB_MAX_BATCH must be a whole number, at least 1, got '0'"]
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


class TestSecrets:
    """A guessable LLMLAB_SECRET_KEY is refused in production."""

    @pytest.mark.parametrize("secret", [
        "secret", "s" * 48, "changeme" * 4, "ab" * 20, "0123456789abcdef0123456789abcde",
        TestConfig.SECRET_KEY])
    def test_weak_secrets_stop_production(self, secret: str) -> None:
        """Short, repetitive or published secrets are a ConfigError saying how to make one."""
        settings = {"ENV": "production", "SECRET_KEY": secret, "MAX_BATCH": 1,
                    "MAX_BODY_BYTES": 1, "DATABASE_URL": "postgresql+psycopg2://x@h/db"}
        with pytest.raises(ConfigError, match="LLMLAB_SECRET_KEY is too guessable") as caught:
            finalise(settings)
        assert "token_urlsafe" in str(caught.value)

    def test_weak_secret_from_the_environment_stops_the_app(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``LLMLAB_SECRET_KEY=secret`` in production does not start the app."""
        monkeypatch.setenv("LLMLAB_ENV", "production")
        monkeypatch.setenv("LLMLAB_SECRET_KEY", "secret")
        with pytest.raises(ConfigError, match="too guessable"):
            create_app()

    @pytest.mark.parametrize("env", ["development", "testing"])
    def test_weak_secrets_are_allowed_outside_production(self, env: str) -> None:
        """Local and test servers may use any secret."""
        settings = {"ENV": env, "SECRET_KEY": "secret", "MAX_BATCH": 1, "MAX_BODY_BYTES": 1,
                    "DATABASE_URL": "postgresql+psycopg2://x@h/db"}
        finalise(settings)
        assert settings["SECRET_KEY"] == "secret"

    @pytest.mark.parametrize("secret", [
        STRONG_SECRET, "9f86d081884c7d659a2feaa0c55ad015", "gunicorn-test-secret-0123456789abcdef"])
    def test_generated_secrets_are_accepted(self, secret: str) -> None:
        """token_urlsafe(48), token_hex(16) and a long mixed secret pass the check."""
        finalise({"ENV": "production", "SECRET_KEY": secret, "MAX_BATCH": 1,
                  "MAX_BODY_BYTES": 1, "DATABASE_URL": "postgresql+psycopg2://x@h/db"})


class TestAuthThrottleSettings:
    """The failed-authentication throttle's variables."""

    def test_rates_and_storage_are_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Rates in limits notation and a memory storage URI are accepted as given."""
        monkeypatch.setenv("LLMLAB_AUTH_THROTTLE_PER_CLIENT", "5 per 2 minutes")
        monkeypatch.setenv("LLMLAB_AUTH_THROTTLE_STORAGE", "memory://")
        cfg = Config.from_env()
        assert cfg.AUTH_THROTTLE_PER_CLIENT == "5 per 2 minutes"
        assert cfg.AUTH_THROTTLE_PER_ACCOUNT == "10 per 15 minutes"

    @pytest.mark.parametrize(("name", "value"), [
        ("LLMLAB_AUTH_THROTTLE_PER_CLIENT", "lots"), ("LLMLAB_AUTH_THROTTLE_PER_ACCOUNT", "5"),
        ("LLMLAB_AUTH_THROTTLE_STORAGE", "nope://"),
        ("LLMLAB_AUTH_THROTTLE_STORAGE", "async+memory://")])
    def test_bad_values_are_refused(self, monkeypatch: pytest.MonkeyPatch, name: str,
                                    value: str) -> None:
        """A rate that is not ``N per period`` or an unusable storage stops the start."""
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            Config.from_env()
