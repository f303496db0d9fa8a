"""Retention (``llmlab_server.services.retention``) and ``llmlab server db prune``, on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from llmlab.cli._app import cli
from llmlab_server import db
from llmlab_server.models import CostEventRow
from llmlab_server.services import retention
from llmlab_server.services.rollup_compaction import compact

from ..helpers import Api, Tenant, make_event


def _times(app: Flask) -> list[str]:
    with app.app_context():
        rows = db.session().scalars(select(CostEventRow.timestamp).order_by(
            CostEventRow.timestamp)).all()
        return [t.strftime("%Y-%m-%d") for t in rows]


def _summary(api: Api, tenant: Tenant, group: str = "model", start: str = "2026-10-01",
             end: str = "2026-12-01") -> dict[str, Any]:
    data: dict[str, Any] = api.data("GET", "/api/costs/summary", tenant.key, query_string={
        "start": start, "end": end, "group_by": group})
    return data


def _seed(api: Api) -> Tenant:
    tenant = api.tenant()
    days = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-11-20", "2026-11-21"]
    events = [make_event(timestamp=f"{day}T10:00:00.00{i}Z", job_id=f"job-{i}",
                         user_id="ann" if i else None, tags={"team": "red"} if i else {})
              for day in days for i in range(3)]
    assert api.track(tenant.key, events).status_code == 207
    return tenant


class TestPrune:
    """`retention.prune`."""

    def test_prune_deletes_old_events_in_batches_and_keeps_rollup_totals(
            self, api: Api, app: Flask) -> None:
        """Events before the cut-off go, batch by batch; summaries from rollups are unchanged."""
        tenant = _seed(api)
        other = _seed(api)
        before, other_before = _summary(api, tenant), _summary(api, other)
        with app.app_context():
            deleted = retention.prune(db.session(), datetime(2026, 11, 1, tzinfo=UTC),
                                      batch_size=2)
        assert deleted == 18  # 9 old events in each of the two projects
        assert _times(app) == ["2026-11-20"] * 6 + ["2026-11-21"] * 6
        assert _summary(api, tenant) == before
        assert _summary(api, other) == other_before

    @pytest.mark.parametrize("group", ["job", "user", "tag:team", "day", None])
    @pytest.mark.parametrize(("start", "end"), [
        ("2026-10-01", "2026-12-01"),  # whole days
        ("2026-10-01T09:00:00Z", "2026-11-21T11:00:00Z")])  # whole hours
    def test_group_rollups_keep_their_totals(self, api: Api, app: Flask, group: str | None,
                                             start: str, end: str) -> None:
        """Job, user, tag and time summaries over whole hours answer the same after a prune:
        the rollups keep what the pruned events added (the events without a value too)."""
        tenant = _seed(api)
        before = _summary(api, tenant, group, start, end)
        assert before["totals"]["calls"] == 15
        with app.app_context():
            assert retention.prune(db.session(), datetime(2026, 11, 1, tzinfo=UTC)) == 9
        assert _summary(api, tenant, group, start, end) == before
        with app.app_context():  # PostgreSQL: the deltas merged after the prune (weeks too)
            compact(db.session())
        assert _summary(api, tenant, group, start, end) == before

    def test_cutoff_counts_days_back_from_now(self) -> None:
        """`cutoff` is now minus the retention days."""
        now = datetime(2026, 12, 6, 12, tzinfo=UTC)
        assert retention.cutoff(30, now) == datetime(2026, 11, 6, 12, tzinfo=UTC)


class TestPruneCommand:
    """``llmlab server db prune``."""

    def test_prune_command_reads_the_retention_setting(self, api: Api, app: Flask,
                                                       database_url: str) -> None:
        """Without --days, LLMLAB_RETENTION_DAYS sets the period; the command reports."""
        _seed(api)
        days = (datetime.now(UTC) - datetime(2026, 11, 1, tzinfo=UTC)).days
        result = CliRunner().invoke(cli, ["server", "db", "prune", "--database", database_url,
                                          "--batch-size", "4"],
                                    env={"LLMLAB_RETENTION_DAYS": str(days)})
        assert result.exit_code == 0, result.output
        assert result.output.startswith("deleted 9 events from before ")
        assert _times(app) == ["2026-11-20"] * 3 + ["2026-11-21"] * 3

    def test_prune_command_needs_a_period(self, database_url: str) -> None:
        """With neither --days nor LLMLAB_RETENTION_DAYS, prune refuses and deletes nothing."""
        result = CliRunner().invoke(cli, ["server", "db", "prune", "--database", database_url],
                                    env={"LLMLAB_RETENTION_DAYS": ""})
        assert result.exit_code != 0
        assert "LLMLAB_RETENTION_DAYS" in result.output

    def test_prune_command_takes_days(self, api: Api, app: Flask, database_url: str) -> None:
        """--days overrides the setting."""
        _seed(api)
        # The cut-off (now - days) lands between 10:00:00.003 on Oct 2 and the same time on
        # Oct 3, whatever the time of day: after the Oct 2 events, before the Oct 3 ones.
        days = (datetime.now(UTC) - datetime(2026, 10, 2, 10, 0, 0, 3000, tzinfo=UTC)).days
        result = CliRunner().invoke(cli, ["server", "db", "prune", "--database", database_url,
                                          "--days", str(days)])
        assert result.exit_code == 0, result.output
        assert _times(app)[0] == "2026-10-03"
        with app.app_context():
            assert db.session().scalar(select(func.count()).select_from(CostEventRow)) == 9
