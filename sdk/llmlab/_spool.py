"""The disk spool: events that could not be delivered yet, kept for a later attempt.

One file per batch, JSON lines, written atomically (temp file, fsync, rename) so a reader never
sees half a file. Names sort by time (``<ns>-<pid>-<seq>-<count>.jsonl``), so replay is oldest
first. A reader *claims* a file by renaming it to ``<name>.claimed-<pid>``: rename is atomic,
so two processes can never replay the same file at once; a claim whose process died (or that is
older than ``claim_ttl``) goes back to the pool. Event ids make replays idempotent: the server
stores each id once.

The spool is capped at ``max_bytes``; past it the *oldest* files are deleted (the newest spend
is the most useful, like log rotation), logged, and counted both in this process (`dropped`)
and in a small counter file shared by every process (`dropped_total`).

Nothing here raises: a full or read-only disk is logged and reported as "not written".
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab._json import to_bytes

try:  # POSIX advisory locks guard the cap and the shared counter; best effort elsewhere.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_MAX_BYTES", "Spool", "SpoolFile"]

logger = logging.getLogger("llmlab")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
SUFFIX = ".jsonl"
CLAIM = ".claimed-"
_COUNTER = "dropped.json"
_LOCK = ".lock"


@dataclass
class SpoolFile:
    """A claimed spool file: its events (and their JSON lines), ready to replay."""

    name: str
    path: Path
    events: list[dict[str, Any]]
    lines: list[str]
    #: Unreadable lines found (and counted as dropped) in the file; released files lose them.
    unreadable: int = 0


def _count_in(name: str) -> int:
    try:
        return int(name.split(SUFFIX)[0].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def parse_lines(text: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """A spool file's non-blank lines, each with its event (None when it is not one)."""
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        yield line, event if isinstance(event, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class Spool:
    """A directory of undelivered batches, shared safely by every process that points at it.

    >>> import tempfile
    >>> spool = Spool(tempfile.mkdtemp())
    >>> spool.write(['{"id": "a"}'])
    1
    >>> claimed = spool.claim()
    >>> [e["id"] for e in claimed.events]
    ['a']
    >>> spool.complete(claimed)
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 claim_ttl: float = 300.0) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.claim_ttl = claim_ttl
        #: Events this process deleted to respect the cap, or found unreadable.
        self.dropped = 0
        #: A directory an earlier version spooled into, to adopt from before the first replay
        #: (`llmlab._spool_dirs.adopt_legacy`); None once done, or when there is none.
        self.legacy_root: Path | None = None
        self._seq = itertools.count()
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: a lock of its own (the parent's may have been held at the fork)."""
        self._lock = threading.Lock()

    def write(self, lines: Sequence[str], *, name: str | None = None) -> int:
        """Store one batch (JSON-encoded events, one per line); returns how many were written."""
        if not lines:
            return 0
        try:
            self._ensure_dir()
            if name is None:
                name = (f"{time.time_ns():019d}-{os.getpid()}-{next(self._seq):06d}"
                        f"-{len(lines)}{SUFFIX}")
            data = to_bytes("\n".join(lines) + "\n")
            tmp = self.directory / f".tmp-{os.getpid()}-{threading.get_ident()}-{name}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.directory / name)
            self._fsync_dir()
        except OSError as exc:
            logger.warning("llmlab: could not write %d events to the spool at %s: %s",
                           len(lines), self.directory, exc)
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            return 0
        self._enforce_cap(keep=name)
        return len(lines)

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _fsync_dir(self) -> None:
        # Makes the rename itself durable; not possible (or needed) on every platform.
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise cap enforcement and the shared counter across threads and processes."""
        with self._lock:
            fd = None
            try:
                if fcntl is not None:
                    fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                fd = None
            try:
                yield
            finally:
                if fd is not None:
                    with contextlib.suppress(OSError):
                        fcntl.flock(fd, fcntl.LOCK_UN)  # explicit: a forked child may hold a dup
                    os.close(fd)

    def _enforce_cap(self, keep: str) -> None:
        try:
            with self._locked():
                entries = sorted((e for e in os.scandir(self.directory)
                                  if SUFFIX in e.name and not e.name.startswith(".")),
                                 key=lambda e: e.name)
                total = sum(e.stat().st_size for e in entries)
                lost = 0
                for entry in entries:
                    if total <= self.max_bytes:
                        break
                    if entry.name == keep or CLAIM in entry.name:
                        continue  # never the batch just written, never one being replayed
                    size = entry.stat().st_size
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        lost += _count_in(entry.name)
                    total -= size
                if lost:
                    self._count_dropped(lost, "the spool is over its size cap "
                                              f"({self.max_bytes} bytes); oldest events deleted")
        except OSError as exc:
            logger.warning("llmlab: could not enforce the spool cap at %s: %s", self.directory, exc)

    def _count_dropped(self, count: int, why: str) -> None:
        """Count lost events here and in the shared counter file (caller holds `_locked`)."""
        self.dropped += count
        logger.warning("llmlab: dropped %d events: %s", count, why)
        try:
            path = self.directory / _COUNTER
            try:
                total = int(json.loads(path.read_text()).get("dropped", 0))
            except (OSError, ValueError, AttributeError):
                total = 0
            tmp = self.directory / f".tmp-{os.getpid()}-{_COUNTER}"
            tmp.write_text(json.dumps({"dropped": total + count}))
            os.replace(tmp, path)
        except OSError:
            pass

    @property
    def dropped_total(self) -> int:
        """Events ever dropped from this spool directory, by any process."""
        try:
            return int(json.loads((self.directory / _COUNTER).read_text()).get("dropped", 0))
        except (OSError, ValueError, AttributeError):
            return 0

    # -- reading -------------------------------------------------------------------------------

    def pending(self) -> tuple[int, int]:
        """(files, events) waiting in the spool, claimed ones included."""
        try:
            names = [n for n in os.listdir(self.directory)
                     if SUFFIX in n and not n.startswith(".")]
        except OSError:
            return (0, 0)
        return (len(names), sum(_count_in(n) for n in names))

    def claim(self) -> SpoolFile | None:
        """Atomically take the oldest unclaimed file, or None when there is nothing to replay."""
        try:
            names = sorted(os.listdir(self.directory))
            if self._recover(names):
                names = sorted(os.listdir(self.directory))
        except OSError:
            return None
        for name in names:
            if not name.endswith(SUFFIX) or name.startswith("."):
                continue
            claimed = self.directory / f"{name}{CLAIM}{os.getpid()}"
            try:
                os.rename(self.directory / name, claimed)
            except OSError:
                continue  # another process got there first
            with contextlib.suppress(OSError):
                os.utime(claimed)  # the claim's age starts now
            try:
                text = claimed.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                logger.warning("llmlab: could not read spool file %s: %s", claimed, exc)
                self._put_back(claimed, name)
                return None
            events, lines, unreadable = [], [], 0
            for line, event in parse_lines(text):
                if event is None:
                    unreadable += 1
                    with contextlib.suppress(OSError), self._locked():
                        self._count_dropped(1, f"unreadable line in spool file {name}")
                    continue
                events.append(event)
                lines.append(line)
            return SpoolFile(name=name, path=claimed, events=events, lines=lines,
                             unreadable=unreadable)
        return None

    def complete(self, claimed: SpoolFile) -> None:
        """The file's events are settled: delete it."""
        with contextlib.suppress(OSError):
            os.unlink(claimed.path)

    def release(self, claimed: SpoolFile, lines: Sequence[str] | None = None) -> None:
        """Give the file back for a later replay, keeping its place in the order.

        ``lines``: only these events are still unsettled (default: all of them). A file with
        unreadable lines is rewritten without them, so they are counted as dropped once, not
        at every claim.
        """
        if lines is None:
            lines = claimed.lines
        if len(lines) == len(claimed.lines) and not claimed.unreadable:
            self._put_back(claimed.path, claimed.name)
            return
        if not lines:
            self.complete(claimed)
            return
        stem = claimed.name[: -len(SUFFIX)].rsplit("-", 1)[0]
        if self.write(lines, name=f"{stem}-{len(lines)}{SUFFIX}"):
            self.complete(claimed)
        else:
            self._put_back(claimed.path, claimed.name)

    def _put_back(self, path: Path, name: str) -> None:
        try:
            os.rename(path, self.directory / name)
        except OSError as exc:
            logger.warning("llmlab: could not release spool file %s: %s", path, exc)

    def _recover(self, names: list[str]) -> bool:
        """Return claims left by dead processes, and delete stale temp files; True if any."""
        now = time.time()
        recovered = False
        for name in names:
            path = self.directory / name
            try:
                if CLAIM in name:
                    original, _, pid = name.rpartition(CLAIM)
                    age = now - path.stat().st_mtime
                    if (pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))) \
                            or age > self.claim_ttl:
                        self._put_back(path, original)
                        recovered = True
                elif name.startswith(".tmp-") and now - path.stat().st_mtime > self.claim_ttl:
                    os.unlink(path)
            except OSError:
                continue
        return recovered
