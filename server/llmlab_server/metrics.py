"""Prometheus metrics: requests by route and status, latency, ingested events by outcome.

Under gunicorn each worker has its own counters; prometheus-client's multiprocess mode adds
them up. ``PROMETHEUS_MULTIPROC_DIR`` must be set before this module is first imported (the
client picks its value class at import), and the directory emptied when the server starts:
a gunicorn config importing `on_starting` and `child_exit` does both (docs/server.md).

>>> # gunicorn.conf.py
>>> # import os; os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/run/llmlab-metrics")
>>> # from llmlab_server.metrics import child_exit, on_starting
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

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

__all__ = ["child_exit", "counted", "exposition", "init_app", "on_starting"]

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


def on_starting(_server: Any) -> None:
    """Gunicorn hook (master, before the workers): an empty ``PROMETHEUS_MULTIPROC_DIR``, so
    counters start from zero, not from the last run's files."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(_server: Any, worker: Any) -> None:
    """Gunicorn hook (master, a worker exited): drop the worker's live-gauge files. Its
    counter files stay, so totals survive worker restarts."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
