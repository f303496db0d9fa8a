"""`llmlab._spool`: atomic batch files, oldest-first claims shared safely, a size cap."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmlab._spool import Spool


def lines(*ids: str) -> list[str]:
    return [json.dumps({"id": i}) for i in ids]


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


class TestWrite:
    def test_one_private_file_per_batch_named_by_time_and_count(self, spool: Spool) -> None:
        """Each write is one 0600 JSON-lines file whose name sorts by time and ends in its count."""
        assert spool.write(lines("a", "b")) == 2
        files = [p for p in spool.directory.iterdir() if p.suffix == ".jsonl"]
        assert len(files) == 1 and files[0].name.endswith("-2.jsonl")
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert files[0].read_text().splitlines() == lines("a", "b")
        assert not [p for p in spool.directory.iterdir() if p.name.startswith(".tmp-")]

    def test_empty_write_is_a_no_op(self, spool: Spool) -> None:
        """Writing nothing creates nothing."""
        assert spool.write([]) == 0 and spool.pending() == (0, 0)

    def test_unwritable_directory_is_logged_not_raised(self, tmp_path: Path) -> None:
        """A spool that cannot be written reports 0 events written instead of raising."""
        blocker = tmp_path / "file"
        blocker.write_text("x")
        assert Spool(blocker / "spool").write(lines("a")) == 0

    def test_pending_counts_files_and_events(self, spool: Spool) -> None:
        """``pending()`` reads counts from file names without opening the files."""
        spool.write(lines("a", "b"))
        spool.write(lines("c"))
        assert spool.pending() == (2, 3)


class TestClaim:
    def test_oldest_first(self, spool: Spool) -> None:
        """Claims return files in the order they were written."""
        for name in ("a", "b", "c"):
            spool.write(lines(name))
        order = []
        while (claimed := spool.claim()) is not None:
            order.append(claimed.events[0]["id"])
            spool.complete(claimed)
        assert order == ["a", "b", "c"] and spool.pending() == (0, 0)

    def test_a_claimed_file_is_invisible_to_other_claimers(self, spool: Spool) -> None:
        """Once claimed, a file cannot be claimed again by another spool on the same directory."""
        spool.write(lines("a"))
        assert spool.claim() is not None
        assert Spool(spool.directory).claim() is None

    def test_concurrent_threads_claim_each_file_once(self, spool: Spool) -> None:
        """Racing claimers never get the same file twice."""
        for n in range(60):
            spool.write(lines(f"e{n}"))
        got: list[str] = []
        lock = threading.Lock()

        def drain() -> None:
            mine = Spool(spool.directory)
            while (claimed := mine.claim()) is not None:
                with lock:
                    got.extend(e["id"] for e in claimed.events)
                mine.complete(claimed)

        threads = [threading.Thread(target=drain) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(got) == sorted(f"e{n}" for n in range(60))

    def test_concurrent_processes_claim_each_file_once(self, spool: Spool) -> None:
        """Two processes replaying the same spool never take the same file."""
        for n in range(40):
            spool.write(lines(f"e{n}"))
        script = (
            "import sys, json\n"
            "from llmlab._spool import Spool\n"
            "s = Spool(sys.argv[1]); ids = []\n"
            "while (c := s.claim()) is not None:\n"
            "    ids += [e['id'] for e in c.events]; s.complete(c)\n"
            "print(json.dumps(ids))\n")
        procs = [subprocess.Popen([sys.executable, "-c", script, str(spool.directory)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
        got = [i for p in procs for i in json.loads(p.communicate(timeout=30)[0])]
        assert sorted(got) == sorted(f"e{n}" for n in range(40))

    def test_release_keeps_order_and_partial_release_keeps_the_rest(self, spool: Spool) -> None:
        """A released file keeps its place; a partly settled one keeps only unsettled lines."""
        spool.write(lines("a", "b", "c"))
        spool.write(lines("d"))
        claimed = spool.claim()
        assert claimed is not None
        spool.release(claimed, claimed.lines[1:])
        again = spool.claim()
        assert again is not None and [e["id"] for e in again.events] == ["b", "c"]
        spool.release(again)
        assert spool.pending() == (2, 3)

    def test_claim_of_a_dead_process_is_recovered(self, spool: Spool) -> None:
        """A file claimed by a process that died goes back to the pool."""
        spool.write(lines("a"))
        (name,) = [p.name for p in spool.directory.iterdir() if p.suffix == ".jsonl"]
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        os.rename(spool.directory / name, spool.directory / f"{name}.claimed-{dead}")
        claimed = spool.claim()
        assert claimed is not None and claimed.events == [{"id": "a"}]

    def test_live_claim_is_respected_until_its_ttl(self, tmp_path: Path) -> None:
        """A claim held by a live process is left alone until it is older than ``claim_ttl``."""
        spool = Spool(tmp_path, claim_ttl=0.2)
        spool.write(lines("a"))
        assert spool.claim() is not None
        other = Spool(tmp_path, claim_ttl=0.2)
        # Our own pid is alive; pretend another live process (pid 1) holds it.
        (claimed,) = [p for p in tmp_path.iterdir() if ".claimed-" in p.name]
        claimed.rename(tmp_path / claimed.name.replace(f"-{os.getpid()}", "-1"))
        assert other.claim() is None
        time.sleep(0.3)
        assert other.claim() is not None

    def test_corrupt_lines_are_skipped_and_counted(self, spool: Spool) -> None:
        """An unreadable line is dropped (and counted) without losing its neighbours."""
        spool.write(['{"id": "a"}', "{not json", '{"id": "b"}'])
        claimed = spool.claim()
        assert claimed is not None and [e["id"] for e in claimed.events] == ["a", "b"]
        assert spool.dropped == 1 and spool.dropped_total == 1

    def test_a_released_file_loses_its_unreadable_lines(self, spool: Spool) -> None:
        """Released for a later replay (an outage probe failed), the file keeps its events
        but not the bad line: it is counted as dropped once, not at every claim (it was
        counted again every 30 s of an outage)."""
        spool.write(['{"id": "a"}', "{not json", '{"id": "b"}'])
        for _ in range(3):
            claimed = spool.claim()
            assert claimed is not None and [e["id"] for e in claimed.events] == ["a", "b"]
            spool.release(claimed)
        assert spool.dropped == 1 and spool.dropped_total == 1
        assert spool.pending() == (1, 2)

    def test_invalid_utf8_in_a_file_does_not_stop_the_replay(self, spool: Spool) -> None:
        """Bytes that are not UTF-8 (a file from an older version, a disk error) cost only
        their line; claim() does not raise."""
        spool.write(['{"id": "a"}'])
        [path] = spool.directory.glob("*.jsonl")
        path.write_bytes(path.read_bytes() + b'{"id": "b\xff"}\n')
        claimed = spool.claim()
        assert claimed is not None and [e["id"] for e in claimed.events] == ["a", "b\ufffd"]


class TestCap:
    def test_oldest_files_are_dropped_over_the_cap_and_counted(self, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture
                                                               ) -> None:
        """Past ``max_bytes`` the oldest batches go, with a warning and the count kept on disk."""
        spool = Spool(tmp_path, max_bytes=300)
        for n in range(10):
            spool.write(lines(*(f"e{n}-{k}" for k in range(3))))
        files, events = spool.pending()
        assert 0 < files < 10 and events == files * 3
        assert spool.dropped == 30 - events
        assert Spool(tmp_path).dropped_total == spool.dropped  # shared by every process
        claimed = spool.claim()
        assert claimed is not None and claimed.events[0]["id"] != "e0-0"  # the oldest went
        assert "dropped" in caplog.text

    def test_the_newest_batch_survives_even_alone_over_the_cap(self, tmp_path: Path) -> None:
        """A single batch bigger than the cap is still kept (never delete what was just written)."""
        spool = Spool(tmp_path, max_bytes=10)
        spool.write(lines("a", "b"))
        assert spool.pending() == (1, 2)
