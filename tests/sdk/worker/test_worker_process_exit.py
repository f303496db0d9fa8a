"""`llmlab._worker` in real processes that exit (normally, by `os._exit`, on SIGTERM) mid-delivery."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from worker_helpers import KEY, assert_exactly_once, run_python

from llmlab._spool import Spool
from llmlab.testing._capture_server import CaptureServer, make_events

WORKER_SCRIPT = """
import os, sys, time
from llmlab._spool import Spool
from llmlab._worker import Worker
from llmlab.testing._capture_server import make_events
from llmlab.transport import HTTPTransport
url, spool_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
worker = Worker(HTTPTransport(url, "{key}", timeout=1), spool=Spool(spool_dir),
                backoff_initial=0.005, backoff_max=0.05, shutdown_timeout=1.0,
                flush_interval=30, batch_size=1000, handle_sigterm=(mode == "sigterm"))
"""


class TestProcessExit:
    def script(self, body: str) -> str:
        return WORKER_SCRIPT.format(key=KEY) + textwrap.dedent(body)

    def test_exit_while_down_leaves_a_spool_the_next_process_delivers(
            self, server: CaptureServer, spool_dir: Path) -> None:
        """A process exiting normally while the server is down spools its queue at exit;
        the next process replays it and every event lands once."""
        server.down()
        produce = self.script("""
            for event in make_events(50, "proc"):
                worker.submit(event)
        """)
        result = run_python(produce, server.url, str(spool_dir), "exit")
        assert result.returncode == 0, result.stderr
        assert Spool(spool_dir).pending()[1] == 50
        server.up()
        replay = self.script("""
            deadline = time.monotonic() + 10
            while worker.stats()["spool_events"] and time.monotonic() < deadline:
                time.sleep(0.02)
            print(worker.stats()["sent"])
        """)
        result = run_python(replay, server.url, str(spool_dir), "replay")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "50"
        assert_exactly_once(server, make_events(50, "proc"))

    @pytest.mark.parametrize("flush", [True, False])
    def test_os_exit_loses_the_queue_unless_flushed(self, server: CaptureServer,
                                                    spool_dir: Path, flush: bool) -> None:
        """``os._exit`` skips atexit: queued events are lost unless flush() ran first."""
        body = self.script(f"""
            for event in make_events(20, "celery"):
                worker.submit(event)
            if {flush}:
                assert worker.flush(5)
            os._exit(0)
        """)
        result = run_python(body, server.url, str(spool_dir), "exit")
        assert result.returncode == 0, result.stderr
        assert len(server.ids) == (20 if flush else 0)

    def test_sigterm_spools_and_keeps_the_default_exit(self, server: CaptureServer,
                                                       spool_dir: Path) -> None:
        """On SIGTERM the queue is spooled, then the process still dies of SIGTERM."""
        server.down()
        body = self.script("""
            for event in make_events(30, "term"):
                worker.submit(event)
            print("ready", flush=True)
            time.sleep(30)
        """)
        self._terminate(body, server, spool_dir, expect=-signal.SIGTERM)

    def test_sigterm_chains_to_the_hosts_handler(self, server: CaptureServer,
                                                 spool_dir: Path) -> None:
        """A handler installed before llmlab still runs after the queue is spooled."""
        server.down()
        body = textwrap.dedent("""
            import signal, sys
            signal.signal(signal.SIGTERM, lambda *a: (print("host", flush=True), sys.exit(3)))
        """) + self.script("""
            for event in make_events(30, "term"):
                worker.submit(event)
            print("ready", flush=True)
            time.sleep(30)
        """)
        out = self._terminate(body, server, spool_dir, expect=3)
        assert "host" in out

    def test_sigterm_during_a_shutdown_lets_it_finish_spooling(self, server: CaptureServer,
                                                               spool_dir: Path) -> None:
        """A SIGTERM that interrupts a shutdown already running (atexit, llmlab.shutdown())
        waits for it to spool the queue, then kills the process as before (it used to kill
        it at once: nothing was spooled)."""
        server.mode = "blackhole"  # the batch in flight never gets an answer
        body = self.script("""
            import signal, threading
            for event in make_events(30, "term"):
                worker.submit(event)
            worker.flush(0.3)  # the batch is now in flight, black-holed
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
            print("ready", flush=True)
            worker.shutdown(timeout=3)  # the signal lands while this joins the worker
            time.sleep(30)  # not reached: the deferred SIGTERM kills the process
        """)
        self._terminate(body, server, spool_dir, expect=-signal.SIGTERM, send=False)

    def _terminate(self, body: str, server: CaptureServer, spool_dir: Path,
                   expect: int, send: bool = True) -> str:
        proc = subprocess.Popen([sys.executable, "-c", body, server.url, str(spool_dir),
                                 "sigterm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        if send:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == expect, err
        assert Spool(spool_dir).pending()[1] == 30
        return out
