"""Per-project ingest quotas (``llmlab_server.services.quotas``), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, update

from llmlab_server import db
from llmlab_server.config import Config, ConfigError
from llmlab_server.models import CostEventRow, IngestQuotaUsage
from llmlab_server.services import quotas, retention

from ..helpers import Api, make_event


def _stored(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(CostEventRow)) or 0)


def _stored_of(app: Flask, project_id: int) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(CostEventRow).where(
            CostEventRow.project_id == project_id)) or 0)


def _usage(app: Flask, project_id: int) -> dict[str, int]:
    with app.app_context():
        return {u.period: u.events for u in db.session().scalars(select(IngestQuotaUsage).where(
            IngestQuotaUsage.project_id == project_id))}


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


class TestConcurrentBatches:
    """The count is the check: batches in flight together cannot overshoot a quota."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """A quota of 40 events a day, 60 stored."""
        return {"QUOTA_EVENTS_PER_DAY": 40, "QUOTA_STORED_EVENTS": 60}

    def test_concurrent_batches_never_store_past_the_quota(self, app: Flask, api: Api) -> None:
        """16 threads sending 3-event batches at once: exactly the quota is stored (each
        accepted batch whole), every other batch gets 429 quota_exceeded; before the count
        was atomic, batches checked together all passed (issue #18, defect 11)."""
        tenant = api.tenant()
        barrier = threading.Barrier(16)
        statuses: list[int] = []

        def send() -> None:
            client = app.test_client()
            barrier.wait()
            for _ in range(4):
                response = Api(client).track(tenant.key, [make_event() for _ in range(3)])
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert response.get_json()["error"]["code"] == "quota_exceeded"

        threads = [threading.Thread(target=send) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(statuses) == {207, 429}
        assert _stored(app) == 3 * statuses.count(207) <= 40
        assert _stored(app) >= 39  # refusals came only once the quota was (nearly) used up
        with app.app_context():
            usage = {u.period: u.events for u in db.session().scalars(select(IngestQuotaUsage))}
        assert usage["day"] == _stored(app)


class TestConcurrentStored:
    """The stored-events cap under batches in flight together."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """At most 40 events stored, no daily quota."""
        return {"QUOTA_STORED_EVENTS": 40}

    def test_concurrent_batches_never_store_past_the_cap(self, app: Flask, api: Api) -> None:
        """16 threads sending 3-event batches at once onto a project that already holds 10
        events (stored before the quota was on): never more than 40 stored, the row equals
        the real count, every refusal is 507."""
        tenant = api.tenant()
        app.config["QUOTA_STORED_EVENTS"] = 0
        assert api.track(tenant.key, [make_event() for _ in range(10)]).status_code == 207
        app.config["QUOTA_STORED_EVENTS"] = 40
        barrier = threading.Barrier(16)
        statuses: list[int] = []

        def send() -> None:
            client = app.test_client()
            barrier.wait()
            for _ in range(4):
                statuses.append(Api(client).track(
                    tenant.key, [make_event() for _ in range(3)]).status_code)

        threads = [threading.Thread(target=send) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(statuses) == {207, 507}
        assert _stored(app) == 10 + 3 * statuses.count(207)
        assert 38 <= _stored(app) <= 40
        assert _usage(app, tenant.project_id)["stored"] == _stored(app)


class TestStoredEventsQuota:
    """``QUOTA_STORED_EVENTS``: the events a project keeps at any time."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """At most 4 events stored."""
        return {"QUOTA_STORED_EVENTS": 4}

    def test_a_full_project_gets_507_until_events_are_deleted(
            self, api: Api, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past the cap: 507 storage_quota_exceeded, nothing stored, the refusal counted;
        events deleted some other way than retention let it store again once a minute has
        passed since the last count."""
        at = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
        _frozen(monkeypatch, at)
        tenant, other = api.tenant(), api.tenant()
        assert api.track(tenant.key, [make_event() for _ in range(3)]).status_code == 207
        assert api.track(tenant.key, [make_event(), make_event()]).status_code == 507
        assert _stored(app) == 3  # the batch that would pass the cap is refused whole
        assert api.track(tenant.key, [make_event()]).status_code == 207
        before = quotas.REFUSALS.labels("stored")._value.get()
        response = api.track(tenant.key, [make_event()])
        assert response.status_code == 507
        body = response.get_json()
        assert body["error"]["code"] == "storage_quota_exceeded"
        assert "4 events" in body["error"]["message"]
        assert int(response.headers["Retry-After"]) > 0
        assert quotas.REFUSALS.labels("stored")._value.get() == before + 1
        assert api.track(other.key, [make_event()]).status_code == 207  # per project
        with app.app_context():
            session = db.session()
            session.execute(delete(CostEventRow).where(
                CostEventRow.project_id == tenant.project_id,
                CostEventRow.id.in_(select(CostEventRow.id).where(
                    CostEventRow.project_id == tenant.project_id).limit(2))))
            session.commit()
        assert api.track(tenant.key, [make_event()]).status_code == 507  # counted < 1 min ago
        _frozen(monkeypatch, at + timedelta(seconds=61))
        assert api.track(tenant.key, [make_event(), make_event()]).status_code == 207
        assert api.track(tenant.key, [make_event()]).status_code == 507
        assert _usage(app, tenant.project_id)["stored"] == _stored_of(app, tenant.project_id)

    def test_retention_makes_room_at_once(self, api: Api, app: Flask) -> None:
        """``db prune`` subtracts what it deletes from the count, in its own transaction: a
        full project stores again right after a prune, exactly as many as were deleted."""
        tenant = api.tenant()
        now = datetime.now(UTC)
        old, new = (now - timedelta(days=40)).isoformat(), now.isoformat()
        assert api.track(tenant.key, [make_event(timestamp=old) for _ in range(3)]
                         + [make_event(timestamp=new)]).status_code == 207
        assert api.track(tenant.key, [make_event(timestamp=new)]).status_code == 507
        with app.app_context():
            assert retention.prune(db.session(), retention.cutoff(30, now)) == 3
        assert _usage(app, tenant.project_id)["stored"] == 1
        assert api.track(tenant.key, [make_event(timestamp=new) for _ in range(3)]
                         ).status_code == 207
        assert api.track(tenant.key, [make_event(timestamp=new)]).status_code == 507

    def test_duplicates_are_free(self, api: Api, app: Flask) -> None:
        """A batch sent again (the SDK's idempotent resend) stores nothing and counts
        nothing, nor does an id repeated inside a batch."""
        tenant = api.tenant()
        batch = [make_event() for _ in range(3)]
        assert api.track(tenant.key, batch).status_code == 207
        again = api.track(tenant.key, [*batch, batch[0]])
        assert again.status_code == 207
        assert again.get_json()["data"]["duplicates"] == 4
        assert _usage(app, tenant.project_id)["stored"] == 3
        twice = make_event()
        assert api.track(tenant.key, [twice, twice]).get_json()["data"]["accepted"] == 1
        assert api.track(tenant.key, [make_event()]).status_code == 507

    def test_events_stored_before_the_quota_count(self, api: Api, app: Flask) -> None:
        """Turning the quota on for a project that already stores events counts them at its
        next batch (not from zero), and so does turning it off and on again an hour later."""
        tenant = api.tenant()
        app.config["QUOTA_STORED_EVENTS"] = 0
        assert api.track(tenant.key, [make_event() for _ in range(3)]).status_code == 207
        app.config["QUOTA_STORED_EVENTS"] = 4
        assert api.track(tenant.key, [make_event(), make_event()]).status_code == 507
        assert api.track(tenant.key, [make_event()]).status_code == 207
        assert _stored_of(app, tenant.project_id) == 4
        app.config["QUOTA_STORED_EVENTS"] = 0
        assert api.track(tenant.key, [make_event() for _ in range(2)]).status_code == 207
        app.config["QUOTA_STORED_EVENTS"] = 8
        with app.app_context():  # the last count, an hour ago
            session = db.session()
            session.execute(update(IngestQuotaUsage).where(
                IngestQuotaUsage.project_id == tenant.project_id).values(
                started=IngestQuotaUsage.started - 3600))
            session.commit()
        assert api.track(tenant.key, [make_event() for _ in range(3)]).status_code == 507
        assert api.track(tenant.key, [make_event() for _ in range(2)]).status_code == 207
        assert _usage(app, tenant.project_id)["stored"] == _stored_of(app, tenant.project_id) == 8

    def test_a_deleted_project_takes_its_count_along(self, api: Api, app: Flask) -> None:
        """Deleting a project deletes its usage rows: nothing carries over to a project that
        gets its id (SQLite reuses ids)."""
        tenant = api.tenant()
        assert api.track(tenant.key, [make_event() for _ in range(4)]).status_code == 207
        response = api.call("DELETE", f"/api/projects/{tenant.project_id}", tenant.token)
        assert response.status_code == 200, response.get_json()
        assert _usage(app, tenant.project_id) == {}

    def test_the_storage_quota_is_documented(self, client) -> None:  # type: ignore[no-untyped-def]
        """The ingest operations document 507 and the quota meaning of 429."""
        spec = client.get("/api/openapi.json").get_json()
        for path in ("/api/events/track", "/api/otlp/v1/traces"):
            responses = spec["paths"][path]["post"]["responses"]
            assert "storage_quota_exceeded" in responses["507"]["description"]
            assert "quota_exceeded" in responses["429"]["description"]


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
        monkeypatch.setenv("LLMLAB_QUOTA_STORED_EVENTS", "50000000")
        config = Config.from_env()
        assert (config.QUOTA_EVENTS_PER_DAY, config.QUOTA_EVENTS_PER_MINUTE,
                config.RETENTION_DAYS, config.QUOTA_STORED_EVENTS) == (1_000_000, 5000, 90,
                                                                       50_000_000)
        monkeypatch.setenv("LLMLAB_QUOTA_EVENTS_PER_DAY", "-1")
        with pytest.raises(ConfigError, match="LLMLAB_QUOTA_EVENTS_PER_DAY must be 0"):
            Config.from_env()
