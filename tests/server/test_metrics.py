"""Prometheus metrics."""

from __future__ import annotations

from .helpers import Api, make_event


class TestMetrics:
    """/metrics exposition."""

    def test_requests_and_events_are_counted(self, api: Api) -> None:
        """After an ingest, /metrics shows request counts and accepted events."""
        t = api.tenant()
        api.track(t.key, [make_event(), make_event()])
        response = api.client.get("/metrics")
        assert response.status_code == 200 and response.mimetype == "text/plain"
        text = response.get_data(as_text=True)
        assert 'llmlab_events_total{status="accepted"}' in text
        assert 'endpoint="events.track"' in text
        assert "llmlab_http_request_duration_seconds_bucket" in text
