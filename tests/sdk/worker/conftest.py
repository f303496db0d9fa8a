"""Worker test fixtures: a capture server, a spool directory and a worker factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import FAST, KEY, MakeWorker

from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing._capture_server import CaptureServer
from llmlab.transport import HTTPTransport, Transport


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer(api_key=KEY) as capture:
        yield capture


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def make_worker(server: CaptureServer, spool_dir: Path) -> Iterator[MakeWorker]:
    """Build workers against the capture server (by default) and always shut them down."""
    made: list[Worker] = []

    def make(transport: Transport | None = None, *, key: str = KEY, spool: bool = True,
             timeout: float = 2.0, **options: Any) -> Worker:
        worker = Worker(transport or HTTPTransport(server.url, key, timeout=timeout),
                        spool=Spool(spool_dir) if spool else None, **{**FAST, **options})
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.shutdown(timeout=0.5)
