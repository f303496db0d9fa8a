"""Crafted input gets a 4xx envelope, never a 500 (each case answered 500 before, on one
database or both): NUL characters, deep nesting, out-of-range times, forged cursors and
project references."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ..helpers import Api, make_event


def _error(api: Api, method: str, path: str, token: str, status: int, body: Any = None
           ) -> dict[str, Any]:
    response = api.call(method, path, token, body)
    assert response.status_code == status, (path, response.get_json())
    error = response.get_json()["error"]
    assert error is not None
    return error  # type: ignore[no-any-return]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


class TestNul:
    """PostgreSQL text cannot hold NUL: it is refused at the edge, on both databases."""

    def test_an_event_with_nul_is_rejected_alone(self, api: Api) -> None:
        """Only that event is rejected; the rest of its batch is stored, and tag summaries
        keep working (they failed for good once such a tag was stored)."""
        t = api.tenant()
        response = api.track(t.key, [make_event(tags={"note": "x\x00"}),
                                     make_event(model="gpt\x00"), make_event()])
        statuses = [r["status"] for r in response.get_json()["data"]["results"]]
        assert response.status_code == 207 and statuses == ["rejected", "rejected", "accepted"]
        summary = api.data("GET", "/api/costs/summary?start=2026-11-01&end=2026-11-03"
                           "&group_by=tag:note", t.token)
        assert summary["totals"]["calls"] == 1

    @pytest.mark.parametrize(("method", "path", "body"), [
        ("GET", "/api/events?model=%00", None),
        ("GET", "/api/costs/export?user=a%00b", None),
        ("POST", "/api/projects", {"name": "a\x00b"}),
    ])
    def test_queries_and_bodies_with_nul_are_400(self, api: Api, method: str, path: str,
                                                 body: Any) -> None:
        t = api.tenant()
        assert "NUL" in _error(api, method, path, t.token, 400, body)["message"]


class TestShape:
    @pytest.mark.parametrize("path", ["/api/auth/login", "/api/events/track"])
    def test_deeply_nested_json_is_400(self, api: Api, path: str) -> None:
        """'[' nested past the interpreter's stack (a RecursionError and a logged trace)."""
        t = api.tenant()
        response = api.client.post(path, data="[" * 50_000, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {t.key}"})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_json"


class TestRanges:
    @pytest.mark.parametrize("query", [
        "end=0001-01-01T05:00:00Z",
        "start=9999-12-31T00:00:00Z&end=9999-12-31T23:00:00Z&tz=Pacific/Kiritimati&group_by=day",
        "start=0001-01-01&end=0001-01-02&tz=America/New_York&group_by=day",
    ])
    def test_times_near_datetimes_limits_are_400(self, api: Api, query: str) -> None:
        t = api.tenant()
        assert _error(api, "GET", f"/api/costs/summary?{query}", t.token,
                      400)["code"] == "invalid_time"

    @pytest.mark.parametrize("value", [["2026-01-01T00:00:00+00:00", True],
                                       ["2026-01-01T00:00:00+00:00", 10**30],
                                       ["0001-01-01T00:00:00+14:00", 1]])
    def test_forged_cursors_are_400(self, api: Api, value: Any) -> None:
        t = api.tenant()
        assert _error(api, "GET", f"/api/events?cursor={_cursor(value)}", t.token,
                      400)["code"] == "invalid_cursor"

    @pytest.mark.parametrize("ref", ["%C2%B2", "99999999999999999999"])
    def test_odd_project_references_are_404(self, api: Api, ref: str) -> None:
        """A superscript two is a digit to str.isdigit() but not to int(); a number past
        2**63 - 1 overflowed the driver."""
        t = api.tenant()
        _error(api, "GET", f"/api/budgets/status?project={ref}", t.token, 404)


class TestOverflow:
    def test_absurd_costs_saturate_the_rollup_instead_of_failing_later_batches(
            self, app: Any, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        """Ten events of $1e9 (the schema's cap) in one hour and model pass BIGINT's range:
        the hour's rollup stops at its maximum, and later batches of that hour are stored
        (each answered 500 before, for ever, and the SDK retried them). The per-event cap
        ($1e6) is lifted here: 9,223 capped events reach the same sum."""
        from sqlalchemy import text

        from llmlab_server.services import ingest

        monkeypatch.setattr(ingest, "MAX_EVENT_COST_NANOS", 10**18)
        t = api.tenant()
        absurd = [make_event(cost={"total": "1000000000"}) for _ in range(10)]
        for batch in (absurd[:5], absurd[5:], [make_event(), make_event()]):
            response = api.track(t.key, batch)
            assert response.status_code == 207
            assert response.get_json()["data"]["accepted"] == len(batch)
        with app.extensions["llmlab_db"][0].connect() as conn:
            cost, calls = conn.execute(text(
                "SELECT cost_nanos, calls FROM cost_rollups_hourly WHERE project_id = :p"),
                {"p": t.project_id}).one()
        assert (cost, calls) == (2**63 - 1, 12)
