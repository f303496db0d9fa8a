"""The ingest service: money rounding, body decoding, rollups and whole-body validation."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from llmlab_server import db
from llmlab_server.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from llmlab_server.models import CostEventRow, CostRollupHourly, Project
from llmlab_server.services.ingest import _COLUMNS, decode_batch, ingest, to_nanos

from ..helpers import make_event, make_project


class TestToNanos:
    """USD to integer nano-USD."""

    @pytest.mark.parametrize(("amount", "nanos"), [
        ("0.00475", 4_750_000), ("0", 0), ("1", 1_000_000_000),
        ("0.0000000005", 0), ("0.0000000015", 2), ("0.0000000025", 2), ("0.00000000251", 3)])
    def test_rounds_half_even(self, amount: str, nanos: int) -> None:
        """Amounts round half-even to the nearest 1e-9 USD."""
        assert to_nanos(Decimal(amount)) == nanos


class TestDecodeBatch:
    """decode_batch."""

    def _decode(self, raw: bytes, encoding: str | None = None, max_bytes: int = 10_000,
                max_batch: int = 10) -> list:  # type: ignore[type-arg]
        return decode_batch(raw, "application/json", encoding, max_bytes=max_bytes,
                            max_batch=max_batch)

    def test_one_event_or_a_batch(self) -> None:
        """A bare event becomes a list of one; a batch is its events."""
        assert self._decode(b'{"id": "a"}') == [{"id": "a"}]
        assert self._decode(b'{"events": [{"id": "a"}, 1]}') == [{"id": "a"}, 1]

    def test_shape_errors(self) -> None:
        """Non-object bodies and a non-list events field are 400s."""
        for raw in (b"[]", b'"x"', b'{"events": {}}', b'{"events": [], "extra": 1}'):
            with pytest.raises(BadRequest):
                self._decode(raw)

    def test_limits(self) -> None:
        """Too many events is 422; too many bytes, raw or inflated, is 413."""
        with pytest.raises(Unprocessable):
            self._decode(json.dumps({"events": [{}] * 11}).encode())
        with pytest.raises(PayloadTooLarge):
            self._decode(b" " * 10_001)
        with pytest.raises(PayloadTooLarge):
            self._decode(gzip.compress(b" " * 20_000), "gzip")

    def test_encodings(self) -> None:
        """gzip is inflated; other encodings and non-JSON types are 415."""
        assert self._decode(gzip.compress(b'{"id": "z"}'), "gzip") == [{"id": "z"}]
        with pytest.raises(UnsupportedMediaType):
            self._decode(b"{}", "br")
        with pytest.raises(UnsupportedMediaType):
            decode_batch(b"{}", "text/plain", None, max_bytes=10, max_batch=1)


class TestIngest:
    """ingest() against the database."""

    def test_rollups_sum_only_new_events(self, app: Flask) -> None:
        """Rollups add tokens, cost, calls and errors of new events and ignore duplicates."""
        with app.app_context():
            session = db.session()
            project = Project(name="p", slug="p")
            session.add(project)
            session.commit()
            first = [make_event(), make_event(status="error", latency_ms=None)]
            ingest(session, project, first)
            ingest(session, project, [*first, make_event(timestamp="2026-11-02T10:59:59Z")])
            rollup = session.scalars(select(CostRollupHourly)).one()
            assert (rollup.calls, rollup.errors, rollup.input_tokens) == (3, 1, 3000)
            assert rollup.cost_nanos == 3 * 3_500_000
            assert rollup.latency_count == 2 and rollup.latency_ms_sum == 200.0
            assert rollup.hour.isoformat() == "2026-11-02T10:00:00+00:00"

    def test_results_are_in_input_order(self, app: Flask) -> None:
        """Every input position gets exactly one result, in order."""
        with app.app_context():
            session = db.session()
            project = Project(name="q", slug="q")
            session.add(project)
            session.commit()
            items = [make_event(), {}, make_event(project="other"), make_event()]
            result = ingest(session, project, items)
            assert [r.index for r in result.results] == [0, 1, 2, 3]
            assert (result.accepted, result.rejected) == (2, 2)


class TestIngestBody:
    """ingest_body: the whole-body validation of an all-valid batch, and its fallback."""

    def _body(self, events: list[Any]) -> bytes:
        return json.dumps({"events": events}).encode()

    def test_valid_batch_matches_event_by_event(self, app: Flask) -> None:
        """A valid batch stores the same rows and gives the same results on both paths."""
        from llmlab_server.services.ingest import ingest_body

        def stored(session: Any, slug: str) -> list[tuple[Any, ...]]:
            rows = session.scalars(
                select(CostEventRow).join(Project, Project.id == CostEventRow.project_id)
                .where(Project.slug == slug).order_by(CostEventRow.id)).all()
            return [tuple(getattr(r, c) for c in _COLUMNS if c not in (
                "project_id", "received_at")) for r in rows]

        events = [make_event(), make_event(job_id="j\tk", tags={"x": "ü"}, ttfb_ms=1.5,
                                           stream=True),
                  make_event(cost={"input": "0.0025", "output": "0.001", "total": "0.0035"},
                             sdk={"name": "llmlab-python", "version": "1"}),
                  make_event(status="error", error_type="RateLimitError", latency_ms=None)]
        with app.app_context():
            session = db.session()
            fast_project, slow_project = make_project(session, "fast"), make_project(session, "slow")
            fast = ingest_body(session, fast_project, self._body(events), "application/json",
                               None, max_bytes=1_000_000, max_batch=10)
            slow = ingest(session, slow_project, events)
            assert fast.model_dump() == slow.model_dump()
            assert fast.accepted == 4
            assert stored(session, "fast") == stored(session, "slow")
            assert len(stored(session, "fast")) == 4

    def test_invalid_or_single_bodies_fall_back(self, app: Flask) -> None:
        """An invalid event, a bare event and a too-large batch get the per-event answers."""
        from llmlab_server.services.ingest import ingest_body

        with app.app_context():
            session = db.session()
            project = make_project(session, "fallback")
            good = make_event()
            result = ingest_body(session, project, self._body([good, {"id": "x"}]),
                                 "application/json", None, max_bytes=1_000_000, max_batch=10)
            assert [r.status for r in result.results] == ["accepted", "rejected"]
            assert result.results[1].error is not None
            single = ingest_body(session, project, json.dumps(make_event()).encode(),
                                 "application/json", None, max_bytes=1_000_000, max_batch=10)
            assert single.accepted == 1
            again = ingest_body(session, project, self._body([good]), "application/json",
                                None, max_bytes=1_000_000, max_batch=10)
            assert (again.accepted, again.duplicates) == (0, 1)
            with pytest.raises(Unprocessable):
                ingest_body(session, project, self._body([make_event(), make_event()]),
                            "application/json", None, max_bytes=1_000_000, max_batch=1)
