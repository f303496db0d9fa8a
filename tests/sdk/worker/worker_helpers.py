"""Shared helpers of the `llmlab._worker` tests: the test key, fast worker options, waits
and checks.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

from llmlab._worker import Worker
from llmlab.testing._capture_server import CaptureServer
from llmlab.transport import SendResult, Transport

KEY = "llm_test_key"
#: Tiny delays so retry paths run in milliseconds.
FAST: dict[str, Any] = {"backoff_initial": 0.005, "backoff_max": 0.05, "flush_interval": 0.05,
                        "atexit": False, "handle_sigterm": False}

MakeWorker = Callable[..., Worker]


def assert_exactly_once(server: CaptureServer, events: list[dict[str, Any]]) -> None:
    arrivals = server.arrivals
    assert {e["id"] for e in events} <= set(arrivals)
    assert {e["id"]: arrivals[e["id"]] for e in events if arrivals[e["id"]] != 1} == {}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout)


class BlockingTransport(Transport):
    """A transport that holds every send until released: a worker stuck on the network."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.ids: list[str] = []  # of the events delivered

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        self.entered.set()
        self.release.wait(10)
        self.ids.extend(event["id"] for event in events)
        return SendResult.all_accepted(events)
