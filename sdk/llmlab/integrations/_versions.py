"""Which release of a provider SDK an integration supports, and saying so when it does not.

Each integration declares the half-open range it is tested on (``min_version`` inclusive,
``max_version`` exclusive, or open-ended). An installed release outside it is not patched, and
`warn_unsupported` says so once per process and library at WARNING with the supported range, so a team whose
calls go unrecorded (LlamaIndex pinning an old ``openai``, say) is told why.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import threading

from llmlab.integrations import DidNotEnable

__all__ = ["UnsupportedVersion", "check", "parse", "supported_range", "warn_unsupported"]

logger = logging.getLogger("llmlab")

_LEADING_NUMBERS = re.compile(r"\d+(?:\.\d+)*")
_WARNED: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()


class UnsupportedVersion(DidNotEnable):
    """The library is installed, but in a release outside the integration's supported range."""

    def __init__(self, distribution: str, version: str, supported: str) -> None:
        super().__init__(f"{distribution} {version} is installed; llmlab supports {distribution}"
                         f"{supported}")
        self.distribution = distribution
        self.version = version
        self.supported = supported


def parse(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``2.54.0rc1`` → ``(2, 54, 0)``."""
    match = _LEADING_NUMBERS.match(version.strip())
    return tuple(int(part) for part in match[0].split(".")) if match else ()


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def supported_range(minimum: tuple[int, ...], below: tuple[int, ...] | None) -> str:
    """A requirement-style range: ``>=1.108,<4`` (no upper bound when ``below`` is None)."""
    return f">={_dotted(minimum)}" + (f",<{_dotted(below)}" if below else "")


def check(distribution: str, minimum: tuple[int, ...], below: tuple[int, ...] | None) -> str:
    """The installed version of ``distribution``; `DidNotEnable` when it is missing,
    `UnsupportedVersion` when it is outside ``[minimum, below)``."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DidNotEnable(f"{distribution} is not installed") from exc
    release = parse(version)
    if release < minimum or (below is not None and release >= below):
        raise UnsupportedVersion(distribution, version, supported_range(minimum, below))
    return version


def warn_unsupported(identifier: str, error: UnsupportedVersion) -> None:
    """Log, once per process and installed release of a library (however many of its
    integrations, ``openai`` and ``openai_media`` say, it skips), that it is not
    instrumented."""
    key = (error.distribution, error.version)
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    logger.warning("llmlab: %s not instrumented, its calls are not recorded: %s",
                   error.distribution, error)
