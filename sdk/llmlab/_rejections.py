"""What each refusal of the server means, and what the app must change to end it.

The server refuses events in two ways (``llmlab_server.services.ingest`` and ``.access``):

- **per event**, in a 207 answer: ``invalid_event`` (the event's data; no configuration
  change helps, so it is counted, never retried) and ``project_mismatch`` (the event names a
  project other than the API key's: the app's ``project=`` or its key is wrong);
- **for the whole batch**: 401 ``invalid_api_key`` (revoked or wrong key), 403
  ``insufficient_scope`` (a key without ``ingest``), 404 (wrong URL, or the key's project was
  deleted), a redirect the SDK does not follow, a proxy's 407… The events themselves are
  fine: the worker keeps them in the spool for a process with a fixed configuration.

The texts here name the fix in plain words; the worker logs each one once per reason.
"""

from __future__ import annotations

import re

__all__ = ["APP_FIXABLE_EVENT_CODES", "event_advice", "reason_of", "refusal_advice"]

#: Per-event rejection codes that only a change of the app's configuration ends.
APP_FIXABLE_EVENT_CODES = frozenset({"project_mismatch"})

# The server's wording (services/ingest.py): event project 'a' is not this key's project 'b'.
_MISMATCH = re.compile(r"project ['\"](?P<event>[^'\"]*)['\"] is not this key's project "
                       r"['\"](?P<key>[^'\"]*)['\"]")
_NEW_KEY = "`llmlab init` prints one"


def reason_of(code: str | None, status: int | None) -> str:
    """The name a refusal is counted and logged under: the server's error code, else
    ``http_<status>``, else ``unknown`` (a custom transport that said neither)."""
    if code:
        return code
    return f"http_{status}" if status is not None else "unknown"


def event_advice(code: str, message: str) -> str | None:
    """The fix for a per-event rejection the app can end, or None when no fix of the
    configuration helps (the event's data is what the server refuses).

    >>> advice = event_advice("project_mismatch",
    ...                       "event project 'support-bot' is not this key's project 'me'")
    >>> advice.split(": ")[0]
    "project 'support-bot' does not match the API key's project 'me'"
    """
    if code != "project_mismatch":
        return None
    found = _MISMATCH.search(message)
    if found is None:
        return (f"the events' project does not match the API key's project ({message}): use "
                "the key of the events' project, or init(project=...) with the key's project")
    event, key = found["event"], found["key"]
    return (f"project {event!r} does not match the API key's project {key!r}: use the key of "
            f"project {event} or init(project={key!r}) — run `llmlab init --project {event}` "
            "to create that project and print its ingest key")


def refusal_advice(status: int | None, code: str | None) -> str:
    """The fix for a whole batch refused for its configuration (a ``hold``).

    >>> refusal_advice(403, "insufficient_scope").split(":")[0]
    'the API key lacks the ingest scope'
    """
    if status == 401:
        return f"the API key was rejected (revoked or wrong): set LLMLAB_API_KEY to a valid " \
               f"ingest key ({_NEW_KEY})"
    if status == 403 and code == "insufficient_scope":
        return f"the API key lacks the ingest scope: set LLMLAB_API_KEY to a key with the " \
               f"ingest scope ({_NEW_KEY})"
    if status == 403:
        return f"the server does not let this API key send events: set LLMLAB_API_KEY to an " \
               f"ingest key of the project ({_NEW_KEY})"
    if status == 404:
        return ("the server has no ingest endpoint at this URL, or the API key's project was "
                "deleted: set LLMLAB_BASE_URL to the llmlab server's root URL (without /api) "
                "and check that the project exists")
    if status is not None and 300 <= status < 400:
        return ("the server redirected the request and llmlab does not follow redirects: set "
                "LLMLAB_BASE_URL to the URL it redirects to (often https://...)")
    if status == 407:
        return ("a proxy asks for credentials: configure them in HTTPS_PROXY, or list the "
                "llmlab server in NO_PROXY")
    return "the server refused the events: check LLMLAB_BASE_URL and LLMLAB_API_KEY"
