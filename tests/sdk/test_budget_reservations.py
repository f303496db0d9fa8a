"""Budget reservations: a call checked against a ``block`` budget reserves its worst case,
is priced on the delivery worker like any other call, and the worker settles the
reservation to the call's real cost (nothing for a failed call)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from test_budgets import StatusServer, budget, wait_for
from test_deferred_pricing import ThreadNotingCatalogue

import llmlab
from llmlab._estimate import worst_case_cost
from llmlab._tracker import get_tracker
from llmlab.errors import BudgetExceededError
from llmlab.pricing import Catalogue
from llmlab.testing import FakeProvider, FakeUsage

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
#: gpt-4o, 1,000 prompt tokens at $2.5/M and 100 output tokens at $10/M.
COST = Decimal("0.0035")
CALL = {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 100}


@pytest.fixture
def catalogue() -> ThreadNotingCatalogue:
    return ThreadNotingCatalogue()


@pytest.fixture
def client(status: StatusServer, fake: FakeProvider, catalogue: ThreadNotingCatalogue,
           tmp_path: Path) -> Iterator[openai.OpenAI]:
    """llmlab with a $0.01 block budget (nothing spent), whose worker builds events only when
    flushed (so a test sees calls before they are priced), and an openai client."""
    status.budgets = [budget()]
    fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
    llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                auto_instrument=["openai"], budget_refresh_interval=60, catalogue=catalogue,
                home=tmp_path, flush_interval=60, batch_size=1000)
    assert wait_for(get_tracker().budget_guard.has_budgets)
    yield openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
    llmlab.shutdown()


def worst(**kwargs: Any) -> Decimal:
    """The worst case the guard reserves for a gpt-4o request."""
    return worst_case_cost(get_tracker().catalogue, "openai", "gpt-4o", {**CALL, **kwargs},
                           "support-bot")


def test_a_budgeted_call_is_priced_on_the_worker_and_reserved_until_then(
        client: openai.OpenAI, catalogue: ThreadNotingCatalogue) -> None:
    """(a) No pricing on the calling thread, yet the next check counts the call (its worst
    case); (b) once the worker priced it, its exact cost replaces the reservation."""
    guard = get_tracker().budget_guard
    client.chat.completions.create(**CALL)
    assert catalogue.threads == []  # not priced on the calling thread (nor yet anywhere)
    reserved = worst()
    assert guard.reservations == 1 and guard.local() == [(Decimal(0), reserved)]
    room = Decimal("0.01") - reserved
    guard.check({"project": "support-bot", "model": "gpt-4o"}, lambda: room)
    with pytest.raises(BudgetExceededError, match="reserved by calls in flight"):
        guard.check({"project": "support-bot", "model": "gpt-4o"},
                    lambda: room + Decimal("0.000001"))
    assert llmlab.flush(5)
    assert len(catalogue.threads) == 1 and catalogue.threads[0] != threading.get_ident()
    assert guard.reservations == 0 and guard.local() == [(COST, Decimal(0))]


def test_a_call_the_provider_refuses_releases_its_reservation(
        client: openai.OpenAI, fake: FakeProvider) -> None:
    """(b) A failed call costs what the provider billed: nothing here."""
    guard = get_tracker().budget_guard
    fake.fail_next(500, provider="openai")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**CALL)
    assert guard.reservations == 1
    assert llmlab.flush(5)
    assert guard.reservations == 0 and guard.local() == [(Decimal(0), Decimal(0))]


def test_a_stream_settles_its_reservation_too(client: openai.OpenAI) -> None:
    """A streamed call reserves before it starts and settles when it is priced."""
    guard = get_tracker().budget_guard
    chunks = list(client.chat.completions.create(**CALL, stream=True))
    assert chunks and guard.reservations == 1
    assert llmlab.flush(5)
    assert guard.reservations == 0 and guard.local() == [(COST, Decimal(0))]


def test_a_call_in_a_scope_is_settled_on_the_calling_thread(
        client: openai.OpenAI, catalogue: ThreadNotingCatalogue) -> None:
    """A scope needs the price at once: priced on the caller, its reservation settled there."""
    guard = get_tracker().budget_guard
    with llmlab.track(job="nightly") as scope:
        client.chat.completions.create(**CALL)
    assert scope.cost == COST and catalogue.threads == [threading.get_ident()]
    assert guard.reservations == 0 and guard.local() == [(COST, Decimal(0))]


def test_concurrent_callers_cannot_overshoot_a_block_budget(
        client: openai.OpenAI, fake: FakeProvider, status: StatusServer) -> None:
    """(c) Check and reservation are one step: of 12 simultaneous calls, only as many as the
    budget holds worst cases run, however the threads interleave, and what they cost stays
    within the budget."""
    # Every call in flight at once, each billed within its worst case.
    fake.configure("openai", first_byte_delay=0.2,
                   usage=FakeUsage(input_tokens=1, output_tokens=100))
    fits = int(Decimal("0.01") // worst())
    assert 1 <= fits < 12
    start = threading.Barrier(12)
    outcomes: list[str] = []

    def call() -> None:
        start.wait()
        try:
            client.chat.completions.create(**CALL)
            outcomes.append("ok")
        except BudgetExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == fits and outcomes.count("refused") == 12 - fits
    assert llmlab.flush(5)
    spent = sum((Decimal(e["cost"]["total"]) for e in status.ingested), Decimal(0))
    assert len(status.ingested) == fits and spent <= Decimal("0.01")


#: Prompts of each kind the estimate measures differently: short, prose, code (newlines and
#: quotes, escaped in JSON), and non-ASCII text (measured through ``json.dumps``).
PROMPTS = {
    "short": "hi",
    "prose": "Summarise the quarterly report in three bullet points for the board. " * 20,
    "code": 'def f(x):\n    return {"a": x, "b": [1, 2, 3]}\n\nprint(f("q"))\n' * 15,
    "japanese": "四半期報告書を三つの要点にまとめてください。" * 10,
}


def billed_prompt_tokens(text: str, provider: str) -> int:
    """The most prompt tokens a provider bills for one turn holding ``text``: four
    characters a token for ASCII text, one a character otherwise, plus the turn's framing
    (OpenAI's formula adds 3 to 4 a message; Gemini's bare ``contents`` string adds ~1)."""
    per_token = 4 if text.isascii() else 1
    return -(-len(text) // per_token) + (2 if provider == "google" else 8)


def usages(prompt: int, output: int, provider: str) -> list[FakeUsage]:
    """What the provider may bill for such a request: all of it new input, or cached in
    part, or written to a 5-minute or 1-hour cache, with the output all text or part
    reasoning (Gemini reports thoughts beside the output, within its cap). Anthropic's
    ``input_tokens`` leaves cache reads and writes out; the others' include them."""
    half = output // 2
    reasoning = ({"output_tokens": output - half, "reasoning_tokens": half}
                 if provider == "google" else {"output_tokens": output, "reasoning_tokens": half})
    new = 0 if provider == "anthropic" else prompt
    return [FakeUsage(input_tokens=prompt, output_tokens=output),
            FakeUsage(input_tokens=prompt - (prompt // 2 if provider == "anthropic" else 0),
                      cached_tokens=prompt // 2, **reasoning),
            FakeUsage(input_tokens=new, cache_creation_5m_tokens=prompt, **reasoning),
            FakeUsage(input_tokens=new, cache_creation_1h_tokens=prompt, output_tokens=output)]


def call_provider(fake: FakeProvider, provider: str, model: str, text: str,
                  cap: int) -> dict[str, Any]:
    """Call ``provider``'s real SDK against the fake; returns the request's keywords as the
    integration sees them (what the guard estimates)."""
    if provider == "openai":
        kwargs = {"model": model, "messages": [{"role": "user", "content": text}],
                  "max_completion_tokens": cap}
        openai.OpenAI(api_key="k", base_url=fake.openai_base_url,
                      max_retries=0).chat.completions.create(**kwargs)
        return kwargs
    if provider == "anthropic":
        import anthropic

        kwargs = {"model": model, "messages": [{"role": "user", "content": text}],
                  "max_tokens": cap}
        anthropic.Anthropic(api_key="k", base_url=fake.anthropic_base_url,
                            max_retries=0).messages.create(**kwargs)
        return kwargs
    from google import genai
    from google.genai import types

    kwargs = {"model": model, "contents": text,
              "config": types.GenerateContentConfig(max_output_tokens=cap)}
    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=fake.google_base_url))  # kept while it is used: freed, it closes
    client.models.generate_content(**kwargs)
    return kwargs


@pytest.mark.parametrize(("provider", "model"), [
    ("openai", "gpt-4o"), ("openai", "o3"), ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-8"), ("google", "gemini-2.5-pro")])
def test_the_worst_case_is_never_below_the_billed_cost(
        fake: FakeProvider, tmp_path: Path, provider: str, model: str) -> None:
    """(d) For every kind of prompt and every way the fake provider bills it (within the
    request's output cap), the estimate the guard reserves is at least the event's cost."""
    from llmlab.transport import InMemoryTransport

    transport = InMemoryTransport()
    llmlab.init(ledger=False, transport=transport, home=tmp_path,
                auto_instrument=["openai", "anthropic", "google_genai"])
    cap = 300
    try:
        compared = []
        for name, text in PROMPTS.items():
            for usage in usages(billed_prompt_tokens(text, provider), cap, provider):
                fake.configure(provider, usage=usage)
                kwargs = call_provider(fake, provider, model, text, cap)
                reserved = worst_case_cost(get_tracker().catalogue, provider, model, kwargs)
                compared.append((name, usage, reserved))
        assert llmlab.flush(5)
    finally:
        llmlab.shutdown()
    events = [event for batch in transport.batches for event in batch]
    assert len(events) == len(compared)
    for (name, usage, reserved), event in zip(compared, events, strict=True):
        billed = Decimal(event["cost"]["total"])
        assert event["cost"]["priced"] and billed > 0
        assert reserved >= billed, (name, usage, reserved, billed)


class BrokenCatalogue(ThreadNotingCatalogue):
    """A catalogue (the app's own, say) that fails to price once ``broken`` is set."""

    broken = False

    def cost(self, *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            raise RuntimeError("pricing is broken")
        return super().cost(*args, **kwargs)


def test_a_call_whose_event_cannot_be_built_on_the_calling_thread_keeps_its_worst_case(
        status: StatusServer, fake: FakeProvider, tmp_path: Path,
        fail_on_swallowed_errors: list[Any]) -> None:
    """A call in a scope is priced on the caller: if that fails (logged, swallowed), its
    reservation becomes spend at once, as on the worker, instead of staying reserved (never
    settled, never kept) until 20,000 more pile up."""
    status.budgets = [budget()]
    fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
    catalogue = BrokenCatalogue()
    llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                auto_instrument=["openai"], budget_refresh_interval=60, catalogue=catalogue,
                home=tmp_path, flush_interval=60, batch_size=1000)
    try:
        guard = get_tracker().budget_guard
        assert wait_for(guard.has_budgets)
        reserved = worst()
        catalogue.broken = True
        client = openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)
        with llmlab.track(job="nightly"):
            client.chat.completions.create(**CALL)  # the provider's answer, untouched
        assert fail_on_swallowed_errors and "pricing is broken" in str(
            fail_on_swallowed_errors[0].exc_info)
        fail_on_swallowed_errors.clear()
        assert guard.reservations == 0 and guard.local() == [(reserved, Decimal(0))]
    finally:
        llmlab.shutdown()


#: One request of each media kind costing over the $0.01 block budget: (path, method, kwargs).
_AUDIO = ("a.mp3", b"ID3" + b"\0" * 191_997, "audio/mpeg")
MEDIA_OVER_BUDGET: dict[str, tuple[str, str, dict[str, Any]]] = {
    "dall-e-3": ("images", "generate", {"model": "dall-e-3", "prompt": "a cat"}),
    "dall-e-2 default": ("images", "generate", {"prompt": "a cat"}),
    "gpt-image-1": ("images", "generate", {"model": "gpt-image-1", "prompt": "a cat"}),
    "tts-1": ("audio.speech", "create", {"model": "tts-1", "voice": "alloy",
                                         "input": "x" * 1000}),
    "gpt-4o-mini-tts": ("audio.speech", "create", {"model": "gpt-4o-mini-tts",
                                                   "voice": "alloy", "input": "x" * 1000}),
    "whisper-1": ("audio.transcriptions", "create", {"model": "whisper-1", "file": _AUDIO}),
    "translation": ("audio.translations", "create", {"model": "whisper-1", "file": _AUDIO}),
}


@pytest.mark.parametrize("name", list(MEDIA_OVER_BUDGET))
def test_a_block_budget_stops_each_media_call_before_it_is_sent(
        client: openai.OpenAI, fake: FakeProvider, name: str) -> None:
    """Images, speech and transcription are refused by their worst case (per image, per
    character, per second of the file's size), not after the spend; a cheap one passes."""
    path, method, kwargs = MEDIA_OVER_BUDGET[name]
    resource: Any = client
    for part in path.split("."):
        resource = getattr(resource, part)
    with pytest.raises(BudgetExceededError):
        getattr(resource, method)(**kwargs)
    assert fake.requests == []
    client.audio.speech.create(model="tts-1", voice="alloy", input="hi")  # $0.00003
    assert len(fake.requests) == 1


def test_a_bounded_web_search_enters_the_worst_case() -> None:
    """Anthropic's ``max_uses`` and OpenAI's ``max_tool_calls`` bound the tool fees."""
    catalogue = Catalogue.bundled()
    base = {"messages": MESSAGES, "max_tokens": 10}
    plain = worst_case_cost(catalogue, "anthropic", "claude-sonnet-4-5", base)
    search = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    assert worst_case_cost(catalogue, "anthropic", "claude-sonnet-4-5",
                           {**base, "tools": search}) >= plain + Decimal("0.05")  # 5 x $10/1k
    request = {"input": "hi", "max_output_tokens": 10,
               "tools": [{"type": "web_search"}, {"type": "file_search"}]}
    unbounded = worst_case_cost(catalogue, "openai", "gpt-4o", request)
    assert worst_case_cost(catalogue, "openai", "gpt-4o", {**request, "max_tool_calls": 3}) == (
        unbounded + Decimal("0.03"))  # 3 x the dearer tool, web search at $10/1k


def test_a_stream_abandoned_mid_way_settles_its_reservation_when_freed(
        client: openai.OpenAI, status: StatusServer) -> None:
    """A stream read in part and dropped (garbage-collected, never closed) is recorded as
    ``cancelled`` at an estimate, which settles its reservation (docs/budgets.md)."""
    import gc

    guard = get_tracker().budget_guard
    stream = client.chat.completions.create(**CALL, stream=True)
    next(iter(stream))
    assert guard.reservations == 1
    del stream
    gc.collect()
    assert llmlab.flush(5)
    assert guard.reservations == 0
    (event,) = status.ingested
    assert event["status"] == "cancelled" and event["estimated"] is True
    spent, held = guard.local()[0]
    assert held == 0 and spent == Decimal(event["cost"]["total"]) > 0


def test_a_block_budget_stops_imagen_before_it_is_sent(
        status: StatusServer, fake: FakeProvider, tmp_path: Path) -> None:
    """Imagen (google-genai, Vertex AI) is refused by its images' price: no number_of_images
    means the API's default of 4 ($0.16 > $0.01)."""
    import warnings

    from google import genai
    from google.genai import types

    status.budgets = [budget()]
    llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                auto_instrument=["google_genai"], budget_refresh_interval=60, home=tmp_path)
    try:
        assert wait_for(get_tracker().budget_guard.has_budgets)
        client = genai.Client(api_key="k", vertexai=True,
                              http_options=types.HttpOptions(base_url=fake.google_base_url))
        with warnings.catch_warnings(), pytest.raises(BudgetExceededError):
            warnings.simplefilter("ignore")  # generate_images is marked deprecated
            client.models.generate_images(model="imagen-3.0-fast-generate-001", prompt="a cat")
        assert fake.requests == []
    finally:
        llmlab.shutdown()


def test_a_call_the_worker_no_longer_takes_keeps_its_worst_case(client: openai.OpenAI) -> None:
    """A call that ends after the worker stopped (an app shutting down while a thread still
    calls) is never priced: its worst case stays as spend instead of a reservation that
    would never be settled (and would carry into the next budget period)."""
    tracker = get_tracker()
    guard = tracker.budget_guard
    tracker.worker.shutdown(5)
    client.chat.completions.create(**CALL)
    assert guard.reservations == 0
    assert guard.local() == [(worst(), Decimal(0))]
