"""The ingest service: money rounding, body decoding, storage and rollups."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import select

from llmlab_server import db
from llmlab_server.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from llmlab_server.models import CostRollupHourly, Project
from llmlab_server.services.ingest import decode_batch, ingest, to_nanos

from ..helpers import make_event


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
