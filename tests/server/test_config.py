"""Config from the environment."""

from __future__ import annotations

import pytest

from llmlab_server.config import Config, ConfigError, default_database_url, finalise


class TestFromEnv:
    """Config.from_env."""

    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without variables: production, default SQLite file, 1000-event batches."""
        for name in ("LLMLAB_ENV", "LLMLAB_DATABASE_URL", "LLMLAB_MAX_BATCH"):
            monkeypatch.delenv(name, raising=False)
        cfg = Config.from_env()
        assert cfg.ENV == "production" and cfg.MAX_BATCH == 1000
        assert default_database_url() == cfg.DATABASE_URL
        assert cfg.ACCESS_TOKEN_TTL == 900

    def test_reads_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_* variables override the defaults."""
        monkeypatch.setenv("LLMLAB_DATABASE_URL", "postgresql+psycopg2://x@h/db")
        monkeypatch.setenv("LLMLAB_MAX_BATCH", "50")
        monkeypatch.setenv("LLMLAB_RATE_LIMIT_PER_SECOND", "2.5")
        monkeypatch.setenv("LLMLAB_ENV", "Development")
        cfg = Config.from_env()
        assert cfg.DATABASE_URL.startswith("postgresql") and cfg.MAX_BATCH == 50
        assert cfg.RATE_LIMIT_PER_SECOND == 2.5 and cfg.ENV == "development"

    def test_gc_freeze_flag(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_GC_FREEZE is on/off; unset, production freezes and the rest do not."""
        monkeypatch.setenv("LLMLAB_GC_FREEZE", "off")
        assert Config.from_env().GC_FREEZE is False
        monkeypatch.setenv("LLMLAB_GC_FREEZE", "Yes")
        assert Config.from_env().GC_FREEZE is True
        base = {"SECRET_KEY": "s", "MAX_BATCH": 1, "MAX_BODY_BYTES": 1, "GC_FREEZE": None,
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
        base = {"SECRET_KEY": "s", "MAX_BATCH": 1, "MAX_BODY_BYTES": 1, "GC_THRESHOLD": None,
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
        """A malformed variable is a ConfigError naming it."""
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            Config.from_env()

    def test_auto_migrate_defaults_to_sqlite_only(self) -> None:
        """Migrations run on start for SQLite and not for PostgreSQL unless asked."""
        base = {"ENV": "testing", "SECRET_KEY": "s", "MAX_BATCH": 1, "MAX_BODY_BYTES": 1,
                "AUTO_MIGRATE": None}
        lite = {**base, "DATABASE_URL": "sqlite:///:memory:"}
        pg = {**base, "DATABASE_URL": "postgresql+psycopg2://x@h/db"}
        finalise(lite)
        finalise(pg)
        assert lite["AUTO_MIGRATE"] is True and pg["AUTO_MIGRATE"] is False
