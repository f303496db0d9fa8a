"""Which spool directory holds an app's undelivered events, so apps never replay each other's.

Every app on a machine shares ``$LLMLAB_HOME`` (default ``~/.llmlab``). Were their spools one
directory, an app would replay another's events with its own key: the server rejects those of
another project (``project_mismatch``, and the replaying app deletes them: lost) and files
those without a project under the replaying key's project (misattributed). So each app spools
under ``spool/<partition>/``:

* ``project-<name>`` when ``init(project=...)`` names the project: any process of that project
  delivers it, including one started with a new key after the old one was revoked;
* ``key-<digest>`` otherwise (the key decides the project): a digest of the API key, never the
  key itself;
* ``default`` for a custom transport.

Files an earlier llmlab version left directly in ``spool/`` are *adopted* once, by the first
worker that replays: each event moves to the partition of its own project, and events without
a project to the adopting app's partition (they were any app's to replay before, as now).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

from llmlab._spool import CLAIM, SUFFIX, Spool, parse_lines

__all__ = ["adopt_legacy", "partition", "spool_directory", "spool_totals"]

logger = logging.getLogger("llmlab")

_READABLE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def partition(project: str | None, api_key: str | None) -> str:
    """The partition's directory name.

    >>> partition("shop", "llm_secret")
    'project-shop'
    >>> partition(None, "llm_secret").startswith("key-") and "secret" not in partition(None, "llm_secret")
    True
    >>> partition("a/b", None)[:8], partition(None, None)
    ('project-', 'default')
    """
    if project:
        name = project.strip()
        return f"project-{name}" if _READABLE.match(name) else f"project-{_digest(name)}"
    if api_key:
        return f"key-{_digest(api_key)}"
    return "default"


def spool_directory(home: Path, project: str | None, api_key: str | None) -> Path:
    """``<home>/spool/<partition>``."""
    return home / "spool" / partition(project, api_key)


def adopt_legacy(root: Path, own: Spool) -> int:
    """Move batches an older version wrote directly into ``root`` into their partitions.

    Each file is claimed first (an atomic rename), so two adopting processes never split the
    same file; a claim whose process died (or older than ``own.claim_ttl``) is taken back
    first. Returns how many events moved; never raises (a failure leaves the file, or its
    claim, for the next attempt).
    """
    try:
        # Claims of adopters that died mid-way (or of an older version's replay) go back
        # first, as a spool returns its own: else their events would stay here for good.
        if Spool(root, claim_ttl=own.claim_ttl)._recover(sorted(os.listdir(root))):
            logger.debug("llmlab: took back spool files claimed by a process that died")
        names = sorted(n for n in os.listdir(root)
                       if n.endswith(SUFFIX) and not n.startswith(".") and CLAIM not in n)
    except OSError:
        return 0
    moved = 0
    for name in names:
        claimed = root / f"{name}{CLAIM}{os.getpid()}"
        try:
            os.rename(root / name, claimed)
        except OSError:
            continue  # another process adopts it
        moved += _split(root, own, name, claimed)
    if moved:
        logger.info("llmlab: moved %d spooled events of an earlier version into per-project "
                    "spool directories under %s", moved, root)
    return moved


def _split(root: Path, own: Spool, name: str, claimed: Path) -> int:
    groups: dict[Path, list[str]] = defaultdict(list)
    try:
        text = claimed.read_text(encoding="utf-8", errors="replace")
    except OSError:
        _put_back(claimed, root / name)
        return 0
    for line, event in parse_lines(text):
        project = event.get("project") if event is not None else None
        owner = root / partition(project, None) if isinstance(project, str) and project \
            else own.directory
        groups[owner].append(line)  # an unreadable line stays with the adopter's files:
        # its replay counts it as dropped, as before
    stem = name[: -len(SUFFIX)].rsplit("-", 1)[0]
    written: list[Path] = []
    for directory, lines in groups.items():
        spool = own if directory == own.directory else Spool(directory, max_bytes=own.max_bytes)
        filename = f"{stem}-{len(lines)}{SUFFIX}"
        if spool.write(lines, name=filename) != len(lines):
            for path in written:  # all or nothing: the original file is put back whole
                with contextlib.suppress(OSError):
                    os.unlink(path)
            _put_back(claimed, root / name)
            return 0
        written.append(directory / filename)
    with contextlib.suppress(OSError):
        os.unlink(claimed)
    return sum(len(lines) for lines in groups.values())


def _put_back(claimed: Path, original: Path) -> None:
    with contextlib.suppress(OSError):
        os.rename(claimed, original)


def spool_totals(root: Path) -> tuple[int, int, int]:
    """(files, events, ever dropped) over every partition and any not yet adopted files."""
    files = events = dropped = 0
    spools = [Spool(root)]
    with contextlib.suppress(OSError):
        spools += [Spool(entry.path) for entry in os.scandir(root) if entry.is_dir()]
    for spool in spools:
        f, e = spool.pending()
        files, events, dropped = files + f, events + e, dropped + spool.dropped_total
    return files, events, dropped
