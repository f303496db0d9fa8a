"""Prometheus metrics, in one process and added up over gunicorn workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from llmlab_server import metrics

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


#: The gunicorn config docs/server.md shows, written into each test's directory.
GUNICORN_CONF = """\
import os
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", {directory!r})
from llmlab_server.metrics import child_exit, on_starting  # noqa: E402,F401
"""


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _answered(url: str) -> bool:
    """GET ``url``: whether the server answered (False when the connection failed)."""
    try:
        _get(url)
    except OSError:
        return False
    return True


def _health_count(text: str) -> float:
    """The summed count of GET /health answers in an exposition."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("llmlab_http_requests_total{")
               and 'endpoint="meta.health"' in line and 'method="GET"' in line)


class TestMultiprocess:
    """/metrics under gunicorn with several workers."""

    def test_gunicorn_workers_are_added_up(self, tmp_path: Path) -> None:
        """With the documented gunicorn config, /metrics counts the requests every worker
        answered (also one that was replaced), not only its own, and starts from zero
        although the directory held a previous run's files."""
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        (metrics_dir / "counter_1.db").write_bytes(b"stale")  # emptied by on_starting
        conf = tmp_path / "gunicorn.conf.py"
        conf.write_text(GUNICORN_CONF.format(directory=str(metrics_dir)))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        access = tmp_path / "access.log"
        env = {**os.environ, "LLMLAB_ENV": "testing", "LLMLAB_HOME": str(tmp_path),
               "LLMLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        proc = subprocess.Popen(
            [str(gunicorn), "-c", str(conf), "--workers", "2", "--bind", f"127.0.0.1:{port}",
             "--access-logfile", str(access), "--access-logformat", "%(p)s %(U)s",
             "llmlab_server:create_app()"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            sent = 0
            while True:  # until both workers have answered (the kernel picks one per accept)
                assert proc.poll() is None and time.monotonic() < deadline
                with ThreadPoolExecutor(8) as pool:  # each answered request counts, also
                    # in a round where others failed (a worker still starting resets some)
                    answered = sum(pool.map(lambda _: _answered(f"{base}/health"), range(16)))
                sent += answered
                if answered < 16:  # not (all) listening yet
                    time.sleep(0.2)
                    continue
                pids = {line.split()[0] for line in access.read_text().splitlines()
                        if line.endswith("/health")}
                if len(pids) >= 2:
                    break
            worker = int(next(iter(pids)).strip("<>"))
            os.kill(worker, signal.SIGTERM)  # gunicorn replaces it; its counts must stay
            while True:
                assert time.monotonic() < deadline
                try:
                    text = _get(f"{base}/metrics")
                    break
                except OSError:
                    time.sleep(0.2)
            assert _health_count(text) == sent
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def test_child_exit_marks_the_worker_dead(self, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        """The child_exit hook removes an exited worker's live-gauge files."""
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        live = tmp_path / "gauge_livesum_4242.db"
        live.write_bytes(b"")
        metrics.child_exit(None, SimpleNamespace(pid=4242))
        assert not live.exists()
