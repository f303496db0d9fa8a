"""Per-project ingest quotas (``llmlab_server.services.quotas``), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from llmlab_server import db
from llmlab_server.config import Config, ConfigError
from llmlab_server.models import CostEventRow, IngestQuotaUsage
from llmlab_server.services import quotas

from ..helpers import Api, make_event


def _stored(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(CostEventRow)) or 0)


def _frozen(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    monkeypatch.setattr(quotas, "utcnow", lambda: at)


class TestDailyQuota:
    """``QUOTA_EVENTS_PER_DAY``."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """A quota of 3 events a day."""
        return {"QUOTA_EVENTS_PER_DAY": 3}

    def test_a_key_cannot_store_past_the_daily_quota(self, api: Api, app: Flask,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """Once the day's quota is stored, a batch gets 429 quota_exceeded with Retry-After
        to midnight UTC, and nothing more is stored (issue #18, defect 11)."""
        _frozen(monkeypatch, datetime(2026, 12, 6, 23, 0, 0, tzinfo=UTC))
        tenant = api.tenant()
        assert api.track(tenant.key, [make_event() for _ in range(3)]).status_code == 207
        before = quotas.REFUSALS.labels("day")._value.get()
        response = api.track(tenant.key, [make_event()])
        assert response.status_code == 429
        body = response.get_json()
        assert body["success"] is False
        assert body["error"]["code"] == "quota_exceeded"
        assert body["error"]["type"] == "rate_limit_error"
        assert response.headers["Retry-After"] == "3600"
        assert _stored(app) == 3
        assert quotas.REFUSALS.labels("day")._value.get() == before + 1

    def test_duplicates_do_not_use_the_quota(self, api: Api, app: Flask) -> None:
        """Only new events count: a batch sent again is free."""
        tenant = api.tenant()
        batch = [make_event(), make_event()]
        assert api.track(tenant.key, batch).status_code == 207
        assert api.track(tenant.key, batch).get_json()["data"]["duplicates"] == 2
        assert api.track(tenant.key, [make_event()]).get_json()["data"]["accepted"] == 1
        assert api.track(tenant.key, [make_event()]).status_code == 429

    def test_back_dated_events_count_today(self, api: Api) -> None:
        """Events timestamped in the past count in the day they are stored, not their own."""
        tenant = api.tenant()
        old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        assert api.track(tenant.key, [make_event(timestamp=old) for _ in range(3)]
                         ).status_code == 207
        assert api.track(tenant.key, [make_event(timestamp=old)]).status_code == 429

    def test_quotas_are_per_project(self, api: Api) -> None:
        """One project's used-up quota does not stop another's."""
        first, second = api.tenant(), api.tenant()
        assert api.track(first.key, [make_event() for _ in range(3)]).status_code == 207
        assert api.track(first.key, [make_event()]).status_code == 429
        assert api.track(second.key, [make_event()]).status_code == 207

    def test_a_new_day_restarts_the_count(self, api: Api,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """The quota is per UTC day: after midnight the project may store again."""
        _frozen(monkeypatch, datetime(2026, 12, 6, 23, 59, 0, tzinfo=UTC))
        tenant = api.tenant()
        assert api.track(tenant.key, [make_event() for _ in range(3)]).status_code == 207
        assert api.track(tenant.key, [make_event()]).status_code == 429
        _frozen(monkeypatch, datetime(2026, 12, 7, 0, 0, 1, tzinfo=UTC))
        assert api.track(tenant.key, [make_event()]).get_json()["data"]["accepted"] == 1


class TestMinuteQuota:
    """``QUOTA_EVENTS_PER_MINUTE``."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """A quota of 2 events a minute and 100 a day."""
        return {"QUOTA_EVENTS_PER_MINUTE": 2, "QUOTA_EVENTS_PER_DAY": 100}

    def test_the_minute_quota_refuses_until_the_minute_ends(
            self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past the minute's quota: 429 with Retry-After to the minute's end; then accepted."""
        _frozen(monkeypatch, datetime(2026, 12, 6, 10, 0, 45, tzinfo=UTC))
        tenant = api.tenant()
        assert api.track(tenant.key, [make_event(), make_event()]).status_code == 207
        response = api.track(tenant.key, [make_event()])
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "15"
        assert "per minute" in response.get_json()["error"]["message"]
        _frozen(monkeypatch, datetime(2026, 12, 6, 10, 1, 0, tzinfo=UTC))
        assert api.track(tenant.key, [make_event()]).status_code == 207


class TestQuotasOff:
    """The default: no quota."""

    def test_no_quota_reads_or_writes_nothing(self, api: Api, app: Flask) -> None:
        """With both quotas at 0, ingest stores everything and keeps no usage rows."""
        tenant = api.tenant()
        for _ in range(3):
            assert api.track(tenant.key, [make_event() for _ in range(5)]).status_code == 207
        with app.app_context():
            assert db.session().scalars(select(IngestQuotaUsage)).all() == []
        assert _stored(app) == 15


class TestSettings:
    """The quota and retention variables."""

    def test_variables_are_read_and_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMLAB_QUOTA_* and LLMLAB_RETENTION_DAYS are read; a negative one refuses to start."""
        monkeypatch.setenv("LLMLAB_QUOTA_EVENTS_PER_DAY", "1000000")
        monkeypatch.setenv("LLMLAB_QUOTA_EVENTS_PER_MINUTE", "5000")
        monkeypatch.setenv("LLMLAB_RETENTION_DAYS", "90")
        config = Config.from_env()
        assert (config.QUOTA_EVENTS_PER_DAY, config.QUOTA_EVENTS_PER_MINUTE,
                config.RETENTION_DAYS) == (1_000_000, 5000, 90)
        monkeypatch.setenv("LLMLAB_QUOTA_EVENTS_PER_DAY", "-1")
        with pytest.raises(ConfigError, match="LLMLAB_QUOTA_EVENTS_PER_DAY must be 0"):
            Config.from_env()
