"""`capture_events()`: the events llmlab records inside a ``with`` block, for tests.

A test should see what the application would record, with no set-up of its own: so when
llmlab is not initialised, the block gets what ``llmlab.init()`` gives by default (the
installed provider SDKs patched, so a plain ``openai.OpenAI()`` made inside the test is
recorded) but offline and quiet: no server even if ``LLMLAB_BASE_URL`` is set (a test must not
ship events or obey a production budget), no ledger. Everything the block changed is undone
when it ends. An application that initialised llmlab itself keeps its configuration: the block
only listens.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from llmlab.schema import CostEvent

__all__ = ["capture_events"]


@contextmanager
def capture_events(*, auto_instrument: bool | Iterable[str] = True) -> Iterator[list[CostEvent]]:
    """Collect every event recorded inside the block, in order.

    If llmlab is not initialised, it is initialised for the block offline (no server, no
    ledger) and, as `llmlab.init()` does, ``auto_instrument`` patches every installed provider
    SDK (or the named ones; ``False`` for none, then only `llmlab.wrap`-ped clients and
    `llmlab.record` are seen). When the block ends llmlab is shut down and the patches it added
    are removed. If llmlab is already initialised, its configuration is left as it is and the
    block only collects.

    >>> import llmlab
    >>> with capture_events() as events:
    ...     _ = llmlab.record("openai", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": 2})
    >>> events[0].cost.total
    Decimal('0.0000450')
    """
    from llmlab._tracker import Options, Tracker, get_tracker, set_tracker
    from llmlab.api import shutdown

    events: list[CostEvent] = []
    tracker = get_tracker()
    if tracker.active:
        tracker.options.on_event.append(events.append)
        try:
            yield events
        finally:
            tracker.options.on_event.remove(events.append)
        return
    added = _instrument(auto_instrument)
    # Built directly rather than through init(), which would read LLMLAB_BASE_URL/_API_KEY.
    options = Options(project=os.environ.get("LLMLAB_PROJECT") or None,
                      environment=os.environ.get("LLMLAB_ENVIRONMENT") or None,
                      on_event=[events.append], ledger=False, budgets=False)
    previous = set_tracker(Tracker(options))
    previous.shutdown()  # inactive a moment ago; as init() does, in case a thread raced us
    try:
        yield events
    finally:
        shutdown()
        if added:
            from llmlab import integrations

            integrations.uninstrument(*added)


def _instrument(auto_instrument: bool | Iterable[str]) -> list[str]:
    """Enable the requested integrations; return those that were not enabled before."""
    if auto_instrument is False:
        return []
    from llmlab import integrations

    names = () if auto_instrument is True else tuple(auto_instrument)
    # Enabled before = patched, or waiting for its library's import: both are left alone.
    before = set(integrations.installed()) | set(integrations._PENDING)
    return [name for name in integrations.instrument(*names) if name not in before]
