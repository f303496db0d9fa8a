"""Prometheus metrics: requests by route and status, latency, ingested events by outcome.

Under gunicorn each worker has its own counters; set ``PROMETHEUS_MULTIPROC_DIR`` to a shared
empty directory to aggregate them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from llmlab_server.schemas import TrackResult

__all__ = ["counted", "exposition", "init_app"]

REQUESTS = Counter("llmlab_http_requests_total", "HTTP requests handled",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("llmlab_http_request_duration_seconds", "HTTP request latency",
                    ["endpoint"])
EVENTS = Counter("llmlab_events_total", "Events received by ingest", ["status"])


def counted(result: TrackResult) -> TrackResult:
    """Count an ingest result's events by outcome, and return it."""
    EVENTS.labels("accepted").inc(result.accepted)
    EVENTS.labels("duplicate").inc(result.duplicates)
    EVENTS.labels("rejected").inc(result.rejected)
    return result


def exposition() -> tuple[bytes, str]:
    """The metrics text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def init_app(app: Flask) -> None:
    """Time and count every request."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        endpoint = request.url_rule.endpoint if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        return response
