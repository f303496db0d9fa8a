"""POST /api/events/track and GET /api/events."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
from sqlalchemy import func, select

from llmlab_server import db
from llmlab_server.models import CostEventRow, CostRollupHourly

from ..helpers import Api, make_event


def _rollups(app) -> list[tuple]:  # type: ignore[no-untyped-def]
    with app.app_context():
        rows = db.session().execute(select(
            CostRollupHourly.hour, CostRollupHourly.model, CostRollupHourly.cost_nanos,
            CostRollupHourly.calls, CostRollupHourly.errors, CostRollupHourly.input_tokens,
            CostRollupHourly.output_tokens, CostRollupHourly.latency_count)
            .order_by(CostRollupHourly.hour, CostRollupHourly.model)).all()
        return [tuple(r) for r in rows]


def _event_count(app) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(CostEventRow)) or 0)


class TestTrack:
    """Ingest: contract, idempotency, partial batches, pricing."""

    def test_batch_answers_207_with_the_contract(self, api: Api) -> None:
        """A batch gets 207 with counts and one result per event in the agreed shape."""
        t = api.tenant()
        good = make_event()
        bad = make_event(usage={"input_tokens": -1})
        response = api.track(t.key, [good, bad])
        assert response.status_code == 207
        body = response.get_json()
        assert body["success"] is True and body["error"] is None and body["timestamp"]
        data = body["data"]
        assert (data["accepted"], data["duplicates"], data["rejected"]) == (1, 0, 1)
        assert data["results"][0] == {"index": 0, "id": good["id"], "status": "accepted",
                                      "error": None} or data["results"][0] == {
            "index": 0, "id": good["id"], "status": "accepted"}
        rejected = data["results"][1]
        assert rejected["status"] == "rejected" and rejected["id"] == bad["id"]
        assert rejected["error"]["code"] == "invalid_event"
        assert rejected["error"]["message"].startswith("usage.input_tokens")

    def test_single_event_body_is_accepted(self, api: Api) -> None:
        """A body that is one event object (not a batch) is ingested as a batch of one."""
        t = api.tenant()
        response = api.track(t.key, make_event())
        assert response.status_code == 207
        assert response.get_json()["data"]["accepted"] == 1

    def test_same_batch_twice_is_stored_once_and_rollups_unchanged(self, api: Api, app) -> None:
        """Resending a batch stores nothing new and leaves the hourly rollups as they were."""
        t = api.tenant()
        events = [make_event(), make_event(model="gpt-4o-mini"),
                  make_event(timestamp="2026-11-02T11:59:59Z", status="error")]
        first = api.track(t.key, events).get_json()["data"]
        before = _rollups(app)
        second = api.track(t.key, events).get_json()["data"]
        assert (first["accepted"], first["duplicates"]) == (3, 0)
        assert (second["accepted"], second["duplicates"]) == (0, 3)
        assert [r["status"] for r in second["results"]] == ["duplicate"] * 3
        assert _event_count(app) == 3
        assert _rollups(app) == before
        assert sum(r[3] for r in before) == 3 and sum(r[4] for r in before) == 1

    def test_duplicate_id_inside_one_batch_counts_once(self, api: Api, app) -> None:
        """Two events with one id in the same batch: the first is accepted, the second is not."""
        t = api.tenant()
        event = make_event()
        data = api.track(t.key, [event, dict(event, model="other")]).get_json()["data"]
        assert [r["status"] for r in data["results"]] == ["accepted", "duplicate"]
        assert _rollups(app)[0][3] == 1

    def test_partial_batch_keeps_order_and_ids(self, api: Api) -> None:
        """Valid events of a mixed batch are stored; invalid ones are rejected by index."""
        t = api.tenant()
        batch = [make_event(), {"id": "x", "nonsense": True}, "not an object", make_event()]
        data = api.track(t.key, batch).get_json()["data"]
        assert [r["status"] for r in data["results"]] == [
            "accepted", "rejected", "rejected", "accepted"]
        assert [r["index"] for r in data["results"]] == [0, 1, 2, 3]
        assert data["results"][1]["id"] == "x" and data["results"][2]["id"] is None

    def test_project_mismatch_is_rejected_per_event(self, api: Api) -> None:
        """An event naming another project than the key's is rejected with project_mismatch."""
        t = api.tenant()
        data = api.track(t.key, [make_event(project=t.project["slug"]),
                                 make_event(project="someone-else")]).get_json()["data"]
        assert data["results"][0]["status"] == "accepted"
        assert data["results"][1]["error"]["code"] == "project_mismatch"

    def test_gzip_body_is_accepted(self, api: Api) -> None:
        """A gzip-encoded batch is decompressed and ingested."""
        t = api.tenant()
        response = api.track(t.key, [make_event() for _ in range(20)], gzip_body=True)
        assert response.status_code == 207 and response.get_json()["data"]["accepted"] == 20

    def test_server_prices_events_without_cost(self, api: Api) -> None:
        """An event without cost is priced from the catalogue and marked server-priced."""
        t = api.tenant()
        api.track(t.key, [make_event()])
        event = api.data("GET", "/api/events?start=2026-11-01&end=2026-11-03", t.key)["events"][0]
        assert event["server_priced"] is True and event["priced"] is True
        assert event["cost"] == event["server_cost"] == "0.0035"
        assert event["cost_mismatch"] is False

    def test_client_cost_is_kept_and_disagreement_flagged(self, api: Api) -> None:
        """A client cost that differs from the catalogue's is stored as sent, flagged, not rejected."""
        t = api.tenant()
        agree = make_event(cost={"total": "0.0035"})
        differ = make_event(cost={"total": "1.25"})
        api.track(t.key, [agree, differ])
        events = {e["id"]: e for e in api.data(
            "GET", "/api/events?start=2026-11-01&end=2026-11-03", t.key)["events"]}
        assert events[agree["id"]]["cost_mismatch"] is False
        assert events[differ["id"]]["cost"] == "1.25"
        assert events[differ["id"]]["server_cost"] == "0.0035"
        assert events[differ["id"]]["cost_mismatch"] is True
        assert events[differ["id"]]["server_priced"] is False

    def test_unknown_model_is_stored_unpriced(self, api: Api) -> None:
        """A model missing from the catalogue is stored with priced=false, not as a $0 price."""
        t = api.tenant()
        api.track(t.key, [make_event(model="no-such-model-xyz")])
        event = api.data("GET", "/api/events?start=2026-11-01&end=2026-11-03", t.key)["events"][0]
        assert event["priced"] is False and event["cost"] == "0"
        assert event["server_cost"] is None

    def test_user_may_ingest_with_project_parameter(self, api: Api) -> None:
        """A member with a JWT ingests with ?project=<id>; without it the request is a 400."""
        t = api.tenant()
        ok = api.track(t.token, [make_event()], query_string={"project": t.project_id})
        assert ok.status_code == 207 and ok.get_json()["data"]["accepted"] == 1
        missing = api.track(t.token, [make_event()])
        assert missing.status_code == 400
        assert missing.get_json()["error"]["code"] == "project_required"


class TestTrackLimits:
    """Whole-request failures of ingest."""

    def test_bad_json_is_400(self, api: Api) -> None:
        """A body that is not JSON is a 400 invalid_json in the error envelope."""
        t = api.tenant()
        response = api.client.post("/api/events/track", data=b"{nope", headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_json"

    def test_non_json_content_type_is_415(self, api: Api) -> None:
        """A body sent as text/plain is a 415."""
        t = api.tenant()
        response = api.client.post("/api/events/track", data=b"{}", headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": "text/plain"})
        assert response.status_code == 415
        assert response.get_json()["error"]["type"] == "invalid_request_error"

    def test_missing_credentials_is_401(self, api: Api) -> None:
        """Ingest without a bearer token is a 401."""
        response = api.client.post("/api/events/track", json={"events": []})
        assert response.status_code == 401
        assert response.get_json()["error"]["type"] == "authentication_error"

    def test_key_without_ingest_scope_is_403(self, api: Api) -> None:
        """A read-only key cannot ingest: 403 insufficient_scope."""
        t = api.tenant()
        read_only = api.key(t.token, t.project_id, scopes=("read",))
        response = api.track(read_only, [make_event()])
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "insufficient_scope"

    @pytest.mark.parametrize("app_config", [{"MAX_BATCH": 5}])
    def test_batch_over_the_limit_is_422(self, api: Api) -> None:
        """More events than LLMLAB_MAX_BATCH in one batch is a 422 batch_too_large."""
        t = api.tenant()
        response = api.track(t.key, [make_event() for _ in range(6)])
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "batch_too_large"
        assert api.track(t.key, [make_event() for _ in range(5)]).status_code == 207

    @pytest.mark.parametrize("app_config", [{"MAX_BODY_BYTES": 4096}])
    def test_body_over_the_limit_is_413(self, api: Api) -> None:
        """A body larger than LLMLAB_MAX_BODY_BYTES is a 413 in the error envelope."""
        t = api.tenant()
        response = api.track(t.key, [make_event() for _ in range(40)])
        assert response.status_code == 413
        assert response.get_json()["success"] is False

    @pytest.mark.parametrize("app_config", [{"MAX_BODY_BYTES": 64 * 1024}])
    def test_gzip_bomb_is_413(self, api: Api) -> None:
        """A small gzip body that inflates past the limit is refused with 413, not inflated."""
        t = api.tenant()
        bomb = gzip.compress(b'{"events": [' + b" " * (50 * 1024 * 1024) + b"]}")
        assert len(bomb) < 64 * 1024
        response = api.client.post("/api/events/track", data=bomb, headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": "application/json",
            "Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert response.get_json()["error"]["code"] == "decompressed_too_large"

    def test_corrupt_gzip_is_400(self, api: Api) -> None:
        """A body labelled gzip that is not gzip is a 400 invalid_encoding."""
        t = api.tenant()
        response = api.client.post("/api/events/track", data=b"plain", headers={
            "Authorization": f"Bearer {t.key}", "Content-Type": "application/json",
            "Content-Encoding": "gzip"})
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_encoding"

    @pytest.mark.parametrize("app_config", [{"RATE_LIMIT_BURST": 3,
                                             "RATE_LIMIT_PER_SECOND": 0.01}])
    def test_rate_limit_is_429_with_headers(self, api: Api) -> None:
        """The fourth request of a key with burst 3 gets 429, Retry-After and X-RateLimit-*."""
        t = api.tenant()
        statuses = [api.track(t.key, [make_event()]) for _ in range(4)]
        assert [r.status_code for r in statuses] == [207, 207, 207, 429]
        assert statuses[0].headers["X-RateLimit-Limit"] == "3"
        assert statuses[0].headers["X-RateLimit-Remaining"] == "2"
        limited = statuses[3]
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert int(limited.headers["X-RateLimit-Reset"]) >= 1
        assert limited.get_json()["error"]["type"] == "rate_limit_error"


class TestListEvents:
    """GET /api/events: filters, cursor pagination, tenancy."""

    def test_filters_and_cursor_pages_cover_everything_once(self, api: Api) -> None:
        """Paging with next_cursor returns every matching event exactly once, newest first."""
        t = api.tenant()
        events = [make_event(timestamp=f"2026-11-02T10:{m:02d}:00Z", job_id="j1")
                  for m in range(7)] + [make_event(job_id="j2")]
        api.track(t.key, events)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"start": "2026-11-01", "end": "2026-11-03", "job": "j1", "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = api.data("GET", "/api/events", t.key, query_string=params)
            seen += [e["id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["id"] for e in reversed(events[:7])]

    def test_bad_cursor_is_400(self, api: Api) -> None:
        """A forged cursor is a 400 invalid_cursor."""
        t = api.tenant()
        response = api.call("GET", "/api/events?cursor=zzzz", t.key)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_cursor"

    def test_other_tenants_events_are_invisible(self, api: Api) -> None:
        """A tenant's list never contains another tenant's events; naming their project is 404."""
        a, b = api.tenant(), api.tenant()
        shared_id = str(uuid.uuid4())
        api.track(a.key, [make_event(id=shared_id)])
        assert api.track(b.key, [make_event(id=shared_id)]).get_json()["data"]["accepted"] == 1
        page = api.data("GET", "/api/events?start=2026-11-01&end=2026-11-03", b.token)
        assert [e["project_id"] for e in page["events"]] == [b.project_id]
        response = api.call("GET", f"/api/events?project={a.project_id}", b.token)
        assert response.status_code == 404
        assert json.loads(response.data)["error"]["code"] == "not_found"


class TestExportToolsAndTags:
    """GET /api/costs/export: the tools-cost column and the ``tag`` filter."""

    def _export(self, api: Api, token: str, **query: object) -> list[dict[str, str]]:
        import csv
        import io

        response = api.call("GET", "/api/costs/export", token, query_string={
            "start": "2026-11-01", "end": "2026-11-03", **query})
        assert response.status_code == 200, response.get_data(as_text=True)
        return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))

    def test_tools_cost_column(self, api: Api) -> None:
        """Each row has its built-in tool fees in ``tools_cost_usd`` (part of ``cost_usd``)."""
        t = api.tenant()
        api.track(t.key, [
            make_event(model="gpt-5", job_id="tools", usage={
                "input_tokens": 1000, "output_tokens": 200,
                "tools": {"web_search": 2, "file_search": 1, "code_interpreter": 1}}),
            make_event(job_id="plain", timestamp="2026-11-02T10:16:00Z")])
        rows = {r["job_id"]: r for r in self._export(api, t.key)}
        assert (rows["tools"]["cost_usd"], rows["tools"]["tools_cost_usd"]) == ("0.05575", "0.0525")
        assert rows["plain"]["tools_cost_usd"] == "0"

    def test_tag_filter_keeps_events_with_every_tag(self, api: Api) -> None:
        """``tag=key:value`` (repeatable) keeps only the events carrying every one of them."""
        t = api.tenant()
        api.track(t.key, [
            make_event(job_id="both", tags={"team": "search", "env": "prod"}),
            make_event(job_id="team", tags={"team": "search", "env": "dev"}),
            make_event(job_id="none")])
        assert sorted(r["job_id"] for r in self._export(api, t.key, tag="team:search")) == [
            "both", "team"]
        both = self._export(api, t.key, tag=["team:search", "env:prod"])
        assert [r["job_id"] for r in both] == ["both"]
        assert self._export(api, t.key, tag="team:nobody") == []

    def test_tag_cells_stay_formula_neutral(self, api: Api) -> None:
        """A tag-filtered export still neutralises a formula in a text cell."""
        t = api.tenant()
        api.track(t.key, [make_event(job_id="=HYPERLINK(1)", tags={"t": "x"})])
        rows = self._export(api, t.key, tag="t:x")
        assert [r["job_id"] for r in rows] == ["'=HYPERLINK(1)"]

    @pytest.mark.parametrize("tag", ["nocolon", ":empty-key", "bad key:v"])
    def test_bad_tag_is_400(self, api: Api, tag: str) -> None:
        """A malformed ``tag`` is a 400 envelope naming the parameter."""
        t = api.tenant()
        response = api.call("GET", "/api/costs/export", t.key, query_string={"tag": tag})
        assert response.status_code == 400
        assert response.get_json()["error"]["param"] == "tag.0"

    def test_other_tenants_events_never_export(self, api: Api) -> None:
        """A tag filter matching another tenant's events exports none of them."""
        a, b = api.tenant(), api.tenant()
        api.track(a.key, [make_event(job_id="a", tags={"team": "x"})])
        assert self._export(api, b.key, tag="team:x") == []
        response = api.call("GET", "/api/costs/export", b.token,
                            query_string={"project": a.project_id, "tag": "team:x"})
        assert response.status_code == 404
