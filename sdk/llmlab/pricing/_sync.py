"""Price with the server's catalogue, so every app of a team prices the same.

When `llmlab.init` has a server and ``pricing_sync`` is on (``LLMLAB_PRICING_SYNC``), a daemon
thread loads the copy cached by an earlier process (``<home>/cache/pricing-catalogue.json``),
then asks ``GET /api/pricing/catalogue`` with that copy's ETag: a 304 keeps it, a 200 is
validated, cached and installed as the server layer of `Catalogue.default`
(`llmlab.pricing._user_catalogue`). It asks again every day. Nothing here runs on the caller's
thread or in `init`; when the server is unreachable or answers anything else, the error is
logged and the catalogue in force (the cached copy, else the bundled one) is kept.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from weakref import WeakSet

import httpx

from llmlab.pricing._catalogue import Catalogue
from llmlab.pricing._user_catalogue import check_document, set_server_layer, write_layer

__all__ = ["CATALOGUE_PATH", "DEFAULT_SYNC_INTERVAL", "PricingSync", "cache_path"]

logger = logging.getLogger("llmlab")

CATALOGUE_PATH = "/api/pricing/catalogue"
DEFAULT_SYNC_INTERVAL = 24 * 3600.0
#: The largest catalogue answer read (the bundled catalogue is under 1 MB): a larger body is
#: refused unread, so a broken or hostile server cannot exhaust the app's memory.
MAX_CATALOGUE_BYTES = 32 * 1024 * 1024


def cache_path(home: Path) -> Path:
    """Where the server's catalogue is cached between processes."""
    return home / "cache" / "pricing-catalogue.json"


class PricingSync:
    """Pulls the server's catalogue in the background; see the module docstring."""

    def __init__(self, base_url: str, api_key: str, home: Path,
                 on_catalogue: Callable[[Catalogue], None], *,
                 interval: float = DEFAULT_SYNC_INTERVAL, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.path = cache_path(home)
        self._on_catalogue = on_catalogue
        self._interval = interval
        self._timeout = timeout
        self.etag: str | None = None
        self._stopped = False
        #: Serialises `stop` with `_install`, so a stop never leaves the server's layer in place.
        self._install_lock = threading.Lock()
        self._warned = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set once the first pull has finished, whatever its outcome (tests, diagnostics).
        self.first_pull = threading.Event()

    def start(self) -> None:
        """Load the cached copy, then pull now and every ``interval`` seconds, off-thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="llmlab-pricing",
                                            daemon=True)
            self._thread.start()
            _started.add(self)

    def stop(self) -> None:
        """Stop pulling and go back to the catalogue without the server's layer."""
        with self._install_lock:
            self._stopped = True
            self._wake.set()
            _started.discard(self)
            if set_server_layer(None, self):
                Catalogue.replace_default(Catalogue.load_default())

    def _loop(self) -> None:
        try:
            self.load_cached()
        except Exception:  # a broken cache file is not the caller's problem
            logger.warning("llmlab: ignoring the cached server pricing catalogue %s", self.path,
                           exc_info=True)
        while not self._stopped:
            try:
                self.pull()
            except Exception:  # a last guard: the daily refresh must outlive any bug
                logger.warning("llmlab: the pricing sync failed (ignored)", exc_info=True)
            self.first_pull.set()
            self._wake.wait(self._interval)
            self._wake.clear()

    def load_cached(self) -> bool:
        """Install the copy an earlier process cached for this server; False when none."""
        try:
            cached = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        if cached.get("base_url") != self.base_url:
            return False
        document = check_document(cached["catalogue"], str(self.path))
        self.etag = cached.get("etag")
        self._install(document)
        return True

    def pull(self) -> bool:
        """Ask the server once; True when the catalogue in force is the server's current one."""
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        try:
            status, etag, body = self._get(headers)
            if self._stopped:  # shut down while asking: nothing to install or to report
                return False
            if status == 304:
                return True
            if status != 200:
                raise ValueError(f"HTTP {status}")
            document = check_document(json.loads(body), self.base_url + CATALOGUE_PATH)
            self._install(document)  # before caching it: what breaks here is never cached
            write_layer(self.path, {"base_url": self.base_url, "etag": etag,
                                    "fetched_at": datetime.now(UTC).isoformat(),
                                    "catalogue": document})
        except Exception as exc:  # offline, an old server, a bad answer: keep what we have
            if self._stopped:
                return False
            # Offline is ordinary (events are spooled meanwhile); a bad answer is worth a warning.
            quiet = self._warned or isinstance(exc, httpx.TransportError) or "HTTP 404" in str(exc)
            log = logger.info if quiet else logger.warning
            self._warned = self._warned or not quiet
            log("llmlab: could not fetch the server's pricing catalogue from %s (%s); pricing "
                "with the %s one", self.base_url, exc, "cached" if self.etag else "local")
            return False
        self.etag = etag
        return True

    def _get(self, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        """(status, ETag, body) of the catalogue request; a body over `MAX_CATALOGUE_BYTES`
        raises ``ValueError`` before more of it is read."""
        with httpx.stream("GET", self.base_url + CATALOGUE_PATH, headers=headers,
                          timeout=self._timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_CATALOGUE_BYTES:
                raise ValueError(f"the catalogue answer is too large ({declared} bytes)")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_CATALOGUE_BYTES:
                    raise ValueError(f"the catalogue answer is over {MAX_CATALOGUE_BYTES} bytes")
            return response.status_code, response.headers.get("ETag"), bytes(body)

    def _install(self, document: dict[str, Any]) -> None:
        with self._install_lock:
            if self._stopped:
                return
            set_server_layer(document, self)
            catalogue = Catalogue.load_default()
            Catalogue.replace_default(catalogue)  # code overrides carry over: they always win
        self._on_catalogue(catalogue)
        logger.debug("llmlab: pricing with the server's catalogue %s",
                     document.get("pricing_version"))

    def _after_fork_in_child(self) -> None:
        self._install_lock = threading.Lock()  # the parent's may have been held at the fork
        self._wake = threading.Event()
        self._thread = None
        if not self._stopped:
            self.start()


#: Syncs whose thread was started: restarted in a forked child, where it would be gone.
_started: WeakSet[PricingSync] = WeakSet()


def _after_fork_in_child() -> None:
    for sync in list(_started):
        try:
            sync._after_fork_in_child()
        except Exception:
            logger.debug("llmlab: could not restart the pricing sync after fork", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
