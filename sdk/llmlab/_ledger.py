"""The local ledger: a transport that appends events to JSON-lines files on disk.

With no server configured, every event still lands here (``~/.llmlab/ledger/YYYY-MM-DD.jsonl``,
one file per UTC day), so costs are kept offline. A replayed event may appear twice in a
file; readers count each event id once (`read_ledger` does).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmlab._json import dumps, to_bytes
from llmlab.transport import SendResult, Transport

__all__ = ["LedgerTransport", "read_ledger"]


class LedgerTransport(Transport):
    """Appends each batch to the day's ledger file; always succeeds unless the disk fails."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        """In a forked child: a lock of its own (the parent's may have been held at the fork)."""
        self._lock = threading.Lock()

    def send(self, events: list[dict[str, Any]]) -> SendResult:
        """Append ``events``, grouped by their UTC day."""
        by_day: dict[str, list[str]] = {}
        for event in events:
            day = str(event.get("timestamp", ""))[:10] or "undated"
            by_day.setdefault(day, []).append(dumps(event))
        try:
            with self._lock:
                self.directory.mkdir(parents=True, exist_ok=True)
                for day, lines in by_day.items():
                    data = to_bytes("\n".join(lines) + "\n")
                    with open(self.directory / f"{day}.jsonl", "a+b") as fh:
                        # A line torn by a crash mid-write would swallow this batch's first
                        # line (the two would read as one bad line): end it first.
                        if fh.seek(0, os.SEEK_END):
                            fh.seek(-1, os.SEEK_END)
                            if fh.read(1) != b"\n":
                                data = b"\n" + data
                        fh.write(data)  # appended at the end whatever was read ("a" mode)
        except OSError as exc:
            return SendResult(retry=True, error=f"cannot write the ledger: {exc}")
        return SendResult.all_accepted(events)


def read_ledger(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Every event in a ledger directory, oldest day first, each id once."""
    seen: set[str] = set()
    for path in sorted(Path(directory).glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash mid-write
                if event.get("id") in seen:
                    continue
                seen.add(event.get("id"))
                yield event
