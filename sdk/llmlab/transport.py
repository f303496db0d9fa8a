"""How batches of events reach the server: a tiny `Transport` seam and its implementations.

The worker (`llmlab._worker`) owns queueing, retries (`llmlab._sending`) and the spool; a
transport only makes one attempt to send one batch and says what happened, as a `SendResult`:

- per event (keyed by event id): ``accepted``, ``duplicate`` (already stored: delivered) or
  ``rejected`` with the server's code and reason (never retried);
- for the whole batch: ``retry`` (transient: connection error, timeout, 408, 429, 5xx; with a
  ``retry_after`` hint), ``split`` (413 or a whole-batch 400/422: resend in halves, which also
  isolates one poisoned event) or ``hold`` (401/403/404, a redirect, any other status:
  retrying will not help until the configuration changes, so the worker keeps the events on
  disk for a later process); ``code`` carries the server's error code for the logs' advice.

Transports never raise: every failure becomes a `SendResult`.

>>> transport = InMemoryTransport()
>>> transport.send([{"id": "e1"}]).results["e1"].status
'accepted'
"""

from __future__ import annotations

import abc
import email.utils
import gzip as _gzip
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from llmlab._json import dumps, to_bytes

__all__ = [
    "EventResult",
    "HTTPTransport",
    "InMemoryTransport",
    "SendResult",
    "Transport",
    "parse_retry_after",
]

logger = logging.getLogger("llmlab")

Event = dict[str, Any]
EventStatus = Literal["accepted", "duplicate", "rejected"]

#: Statuses that mean "resend the same batch later".
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Statuses that mean "this batch, as a whole, is unacceptable: try smaller pieces".
SPLIT_STATUSES = frozenset({400, 413, 422})
#: Every other status but 2xx means "the configuration or the way to the server is wrong
#: (key, URL, a redirect, a proxy): keep the events for later" (a ``hold``).
TRACK_PATH = "/api/events/track"


@dataclass(frozen=True)
class EventResult:
    """What the server did with one event."""

    status: EventStatus
    #: For ``rejected``: the server's ``code: message``; otherwise None.
    reason: str | None = None
    #: For ``rejected``: the server's error code alone (``invalid_event``,
    #: ``project_mismatch``…), when it gave one.
    code: str | None = None


@dataclass
class SendResult:
    """The outcome of one attempt to send one batch."""

    #: Final outcomes by event id. Events missing here were not settled by this attempt.
    results: dict[str, EventResult] = field(default_factory=dict)
    #: Transient failure: send the unsettled events again after a backoff.
    retry: bool = False
    #: Seconds the server asked us to wait (``Retry-After``), if it said.
    retry_after: float | None = None
    #: The batch is too big or unacceptable as a whole: resend it in halves.
    split: bool = False
    #: Retrying cannot help until the configuration changes (bad key, wrong URL).
    hold: bool = False
    #: HTTP status, when there was a response.
    status_code: int | None = None
    #: The error code of a refused batch (``invalid_api_key``, ``insufficient_scope``…), when
    #: the server's error envelope said.
    code: str | None = None
    #: One line for the logs when something went wrong.
    error: str | None = None

    @classmethod
    def all_accepted(cls, events: Sequence[Event], status_code: int | None = None) -> SendResult:
        """Every event accepted (a 2xx without per-event results)."""
        return cls(results={str(e.get("id")): EventResult("accepted") for e in events},
                   status_code=status_code)

    @property
    def ok(self) -> bool:
        """True when the attempt settled the batch (per-event results, nothing to redo)."""
        return not (self.retry or self.split or self.hold)


class Transport(abc.ABC):
    """Sends one batch of wire events; see the module docstring for the contract."""

    @abc.abstractmethod
    def send(self, events: list[Event]) -> SendResult:
        """Make one attempt to deliver ``events``; never raises."""

    def send_encoded(self, events: list[Event], lines: list[str]) -> SendResult:
        """`send`, given each event already JSON-encoded (the worker encodes every event once,
        to size its batches); transports that write JSON override it to reuse ``lines``."""
        return self.send(events)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections. Idempotent."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """Called in a forked child before first use: drop anything shared with the parent."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("soon") is None
    True
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _results_from_body(events: Sequence[Event], body: Any) -> dict[str, EventResult] | None:
    """Per-event results from a 2xx envelope, or None when the body carries none."""
    data = body.get("data") if isinstance(body, dict) else None
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return None
    results: dict[str, EventResult] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        event_id = row.get("id")
        if event_id is None:
            # Fall back to the position when the server did not echo the id.
            index = row.get("index")
            if isinstance(index, int) and 0 <= index < len(events):
                event_id = events[index].get("id")
        if event_id is None:
            continue
        status = row.get("status")
        if str(event_id) in results and status != "accepted":
            continue  # the same id twice in one batch: "accepted" wins, it was stored
        if status in ("accepted", "duplicate"):
            results[str(event_id)] = EventResult(status)
        elif status == "rejected":
            error: dict[str, Any] = row["error"] if isinstance(row.get("error"), dict) else {}
            code = error.get("code")
            reason = f"{code or 'rejected'}: {error.get('message', '')}".rstrip(": ")
            results[str(event_id)] = EventResult("rejected", reason,
                                                 code if isinstance(code, str) else None)
        # Any other status (e.g. a per-event server error) stays unsettled and is retried.
    return results


def _error_of(response: httpx.Response) -> tuple[str | None, str]:
    """The error envelope's code (if any) and one line for the logs."""
    code = None
    try:
        error = response.json().get("error") or {}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        detail = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except Exception:
        detail = response.text[:200].strip()
    if response.is_redirect and response.headers.get("Location"):
        detail = f"redirect to {response.headers['Location']}"  # the URL the fix needs
    return code, f"HTTP {response.status_code}" + (f" ({detail})" if detail else "")


class HTTPTransport(Transport):
    """POSTs ``{"events": [...]}`` (gzip) to ``{base_url}/api/events/track`` with a bearer key.

    Uses its own `httpx.Client` (never the provider SDK's), rebuilt after ``fork()``.

    >>> transport = HTTPTransport("http://127.0.0.1:8000", "llm_test")
    >>> transport.url
    'http://127.0.0.1:8000/api/events/track'
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        gzip: bool = True,
        headers: Mapping[str, str] | None = None,
        client_factory: Callable[[], httpx.Client] | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + TRACK_PATH
        self.gzip = gzip
        self._timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "llmlab-python",
            **(headers or {}),
        }
        self._client_factory = client_factory
        self._client: httpx.Client | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # After fork the parent's pooled sockets are not ours: abandon, never close them.
                self._pid = os.getpid()
                self._client = (self._client_factory() if self._client_factory else
                                httpx.Client(timeout=self._timeout, trust_env=True))
            return self._client

    def encode(self, events: Sequence[Event]) -> bytes:
        """The request body (uncompressed)."""
        return to_bytes(dumps({"events": list(events)}))

    def send_encoded(self, events: list[Event], lines: list[str]) -> SendResult:
        """POST a batch whose events are already encoded (no second JSON encoding)."""
        body = to_bytes('{"events":[' + ",".join(lines) + "]}")
        return self._send_body(events, body)

    def send(self, events: list[Event]) -> SendResult:
        """POST one batch and classify the answer; never raises."""
        try:
            body = self.encode(events)
        except (TypeError, ValueError) as exc:
            # The worker validates events first; a custom caller may not have.
            return SendResult(split=len(events) > 1, error=f"unserialisable event: {exc}",
                              results={} if len(events) > 1 else {
                                  str(events[0].get("id")): EventResult(
                                      "rejected", f"unserialisable: {exc}", "unencodable")})
        return self._send_body(events, body)

    def _send_body(self, events: list[Event], body: bytes) -> SendResult:
        try:
            response = self._post(body, self.gzip)
            if response.status_code == 415 and self.gzip:
                # The server (or a proxy) refuses gzip: fall back to plain JSON for good.
                logger.info("llmlab: server refused gzip bodies; sending uncompressed")
                self.gzip = False
                response = self._post(body, False)
        except httpx.HTTPError as exc:
            return SendResult(retry=True, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        except Exception as exc:  # never let a transport failure escape into the worker
            logger.debug("llmlab: unexpected transport error", exc_info=True)
            return SendResult(retry=True, error=f"{type(exc).__name__}: {exc}")
        return self._classify(events, response)

    def _post(self, body: bytes, compress: bool) -> httpx.Response:
        headers = dict(self._headers)
        if compress:
            body = _gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return self._get_client().post(self.url, content=body, headers=headers)

    def _classify(self, events: list[Event], response: httpx.Response) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            try:
                results = _results_from_body(events, response.json())
            except ValueError:
                results = None
            if results is None:
                return SendResult.all_accepted(events, status)
            unsettled = len(results) < len({str(e.get("id")) for e in events})
            return SendResult(results=results, retry=unsettled, status_code=status,
                              error="some events unsettled" if unsettled else None)
        code, error = _error_of(response)
        if status in RETRY_STATUSES or status >= 500:
            return SendResult(retry=True, status_code=status, error=error, code=code,
                              retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status in SPLIT_STATUSES:
            if len(events) == 1:  # this one event is what the server refuses: never retried
                rejected = EventResult("rejected", error, code or f"http_{status}")
                return SendResult(results={str(events[0].get("id")): rejected},
                                  status_code=status, error=error, code=code)
            return SendResult(split=True, status_code=status, error=error, code=code)
        # 401/403/404/405, a redirect (httpx does not follow them: an http:// URL behind an
        # https redirect), 407, 410, …: nothing says the events are bad, the configuration or
        # the way to the server is. Keep them on disk for a process that can deliver them.
        return SendResult(hold=True, status_code=status, error=error, code=code)

    def close(self) -> None:
        """Close the HTTP client (only if this process created it)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            try:
                client.close()
            except Exception:
                logger.debug("llmlab: error closing HTTP client", exc_info=True)

    def after_fork(self) -> None:
        """Forget the parent's client; the next send builds a fresh one."""
        self._lock = threading.Lock()
        self._client = None
        self._pid = os.getpid()


class InMemoryTransport(Transport):
    """Records batches instead of sending them; for tests. Deduplicates by id like the server.

    ``fail_next(n, SendResult(retry=True))`` makes the next ``n`` sends return that result;
    ``reject`` maps event ids to a rejection reason (``"code: message"`` sets the code).

    >>> transport = InMemoryTransport()
    >>> transport.fail_next(1, SendResult(retry=True))
    >>> transport.send([{"id": "a"}]).retry, transport.send([{"id": "a"}]).ok
    (True, True)
    """

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.reject: dict[str, str] = {}
        self.closed = False
        self._seen: set[str] = set()
        self._failures: list[SendResult] = []
        self._lock = threading.Lock()

    def fail_next(self, count: int, result: SendResult | None = None) -> None:
        """Answer the next ``count`` sends with ``result`` (default: a transient failure)."""
        with self._lock:
            self._failures.extend([result or SendResult(retry=True, error="injected")] * count)

    @property
    def events(self) -> list[Event]:
        """Every event stored (first delivery of each id)."""
        with self._lock:
            seen: set[str] = set()
            out = []
            for batch in self.batches:
                for event in batch:
                    if event.get("id") not in seen and event.get("id") not in self.reject:
                        seen.add(str(event.get("id")))
                        out.append(event)
            return out

    def send(self, events: list[Event]) -> SendResult:
        """Record the batch (unless told to fail) and report per-event results."""
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            self.batches.append([dict(e) for e in events])
            results: dict[str, EventResult] = {}
            for event in events:
                event_id = str(event.get("id"))
                if event_id in self.reject:
                    reason = self.reject[event_id]
                    code, colon, _ = reason.partition(":")
                    results[event_id] = EventResult(
                        "rejected", reason, code if colon and code.isidentifier() else None)
                elif event_id in self._seen:
                    results[event_id] = EventResult("duplicate")
                else:
                    self._seen.add(event_id)
                    results[event_id] = EventResult("accepted")
            return SendResult(results=results, status_code=207)

    def close(self) -> None:
        """Mark the transport closed."""
        self.closed = True

    def after_fork(self) -> None:
        """A fresh lock for the child."""
        self._lock = threading.Lock()
