"""The budget guard's fast check: far from a block budget's limit a call reserves the most any
call to its model can cost (its *ceiling*) without reading the request; within
``ROOM_FACTOR`` ceilings of the limit every call is estimated one by one, as before."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from test_budget_reservations import CALL, COST, worst
from test_budgets import StatusServer, budget, wait_for

import llmlab
from llmlab import _budgets
from llmlab._budgets import ROOM_FACTOR, BudgetGuard
from llmlab._estimate import ceiling_pico, from_pico, worst_case_cost
from llmlab._tracker import get_tracker
from llmlab.pricing import Catalogue
from llmlab.testing import FakeProvider, FakeUsage

CATALOGUE = Catalogue.default()
#: gpt-4o's ceiling: 128,000 prompt and 16,384 output tokens at its dearest rates.
CEILING = ceiling_pico(CATALOGUE, "gpt-4o")
ROOMY = from_pico(ROOM_FACTOR * CEILING) if CEILING else Decimal(0)


@pytest.fixture
def estimates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The models whose requests the fast path estimated (`worst_case_pico` calls)."""
    seen: list[str] = []
    precise = _budgets.worst_case_pico

    def noting(catalogue: Any, provider: str, model: str, kwargs: Any,
               project: str | None = None) -> int:
        seen.append(model)
        return precise(catalogue, provider, model, kwargs, project)

    monkeypatch.setattr(_budgets, "worst_case_pico", noting)
    return seen


def start(status: StatusServer, fake: FakeProvider, tmp_path: Path,
          amount: Decimal) -> openai.OpenAI:
    """llmlab with one block budget of ``amount`` whose worker prices only when flushed."""
    status.budgets = [budget(amount=str(amount))]
    fake.configure("openai", usage=FakeUsage(input_tokens=1000, output_tokens=100))
    llmlab.init(api_key="llm_test", base_url=status.url, project="support-bot",
                auto_instrument=["openai"], budget_refresh_interval=60, home=tmp_path,
                flush_interval=60, batch_size=1000)
    assert wait_for(get_tracker().budget_guard.has_budgets)
    return openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)


def test_the_ceiling_is_never_below_the_dearest_bill() -> None:
    """For models with long-context tiers, service tiers and regional multipliers, the
    ceiling covers a call filling the input window and the output limit, at any tier."""
    for model, provider in [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"),
                            ("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-pro", "google"),
                            ("gpt-6-sol", "openai"), ("claude-opus-5-5", "anthropic")]:
        entry = CATALOGUE.resolve(model, provider)
        ceiling = ceiling_pico(CATALOGUE, model)
        assert entry is not None and entry.max_input_tokens and ceiling, model
        window, output = entry.max_input_tokens, entry.max_output_tokens
        for tier in (None, "priority", "flex", "batch"):
            bill = CATALOGUE.cost(model, {"input_tokens": window, "output_tokens": output},
                                  provider, service_tier=tier).total
            assert bill <= from_pico(ceiling), (model, tier)
            request = {"messages": "x" * (window * 4 - 8), "max_tokens": output,
                       "service_tier": tier}
            assert worst_case_cost(CATALOGUE, provider, model, request) <= from_pico(ceiling)


def test_models_without_a_bound_have_no_ceiling() -> None:
    assert ceiling_pico(CATALOGUE, "dall-e-3") is None  # priced per image
    assert ceiling_pico(CATALOGUE, "whisper-1") is None  # per second
    assert ceiling_pico(CATALOGUE, "no-such-model") == 0  # unpriced: nothing to reserve


def test_far_from_the_limit_a_call_reserves_its_ceiling_without_an_estimate(
        status: StatusServer, fake: FakeProvider, tmp_path: Path, estimates: list[str]) -> None:
    client = start(status, fake, tmp_path, ROOMY)
    guard = get_tracker().budget_guard
    try:
        client.chat.completions.create(**CALL)
        assert estimates == []  # the request was not read
        assert guard.local() == [(Decimal(0), from_pico(CEILING))]
        assert llmlab.flush(5)
        assert guard.reservations == 0 and guard.local() == [(COST, Decimal(0))]
    finally:
        llmlab.shutdown()


def test_within_the_margin_each_call_is_estimated(
        status: StatusServer, fake: FakeProvider, tmp_path: Path, estimates: list[str]) -> None:
    """One pico-dollar less room than `ROOM_FACTOR` ceilings: the precise worst case."""
    client = start(status, fake, tmp_path, ROOMY - Decimal("1e-12"))
    try:
        client.chat.completions.create(**CALL)
        assert estimates == ["gpt-4o"]
        assert get_tracker().budget_guard.local() == [(Decimal(0), worst())]
    finally:
        llmlab.shutdown()


def test_tool_fees_and_markups_are_always_estimated(
        status: StatusServer, fake: FakeProvider, tmp_path: Path, estimates: list[str]) -> None:
    """The ceiling holds neither tool fees nor a project's markup: such calls take the
    precise check however much room is left."""
    client = start(status, fake, tmp_path, ROOMY * 10)
    catalogue = get_tracker().catalogue
    try:
        tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        client.chat.completions.create(**CALL, tools=tools)
        assert estimates == ["gpt-4o"]
        catalogue.set_markup(20)
        try:
            client.chat.completions.create(**CALL)
        finally:
            catalogue._markups.clear()
        assert estimates == ["gpt-4o", "gpt-4o"]
        client.chat.completions.create(**CALL)
        assert estimates == ["gpt-4o", "gpt-4o"]  # no markup left: the ceiling again
    finally:
        llmlab.shutdown()


def guard_with(amount: Decimal, **changes: Any) -> BudgetGuard:
    guard = BudgetGuard(lambda: [budget(amount=str(amount), **changes)])
    assert guard.refresh()
    return guard


REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}


def reserve(guard: BudgetGuard, model: str, request: dict[str, Any] = REQUEST,
            project: str = "support-bot") -> int | None:
    """`BudgetGuard.reserve_request` as the integrations call it, for an OpenAI client."""
    return guard.reserve_request(project, model, request, CATALOGUE, lambda _: "openai", None)


def test_calls_in_flight_use_up_the_room() -> None:
    """Room for ``ROOM_FACTOR + 1`` ceilings admits two calls on the fast check; the third,
    with two ceilings reserved, is estimated."""
    guard = guard_with(from_pico((ROOM_FACTOR + 1) * CEILING))
    try:
        assert None not in [reserve(guard, "gpt-4o") for _ in range(3)]
        estimate = worst_case_cost(CATALOGUE, "openai", "gpt-4o", REQUEST)
        assert guard.local() == [(Decimal(0), from_pico(2 * CEILING) + estimate)]
    finally:
        guard.stop()


def test_only_the_budgets_covering_a_call_hold_its_reservation() -> None:
    guard = guard_with(ROOMY * 10, scope={"project": "support-bot", "model": "gpt-4o-mini"})
    try:
        assert reserve(guard, "gpt-4o") is None
        assert reserve(guard, "gpt-4o-mini", project="other-project") is None
        assert reserve(guard, "gpt-4o-mini") is not None
        assert guard.local() == [(Decimal(0), from_pico(ceiling_pico(CATALOGUE, "gpt-4o-mini")
                                                        or 0))]
    finally:
        guard.stop()


def test_a_model_without_a_ceiling_is_estimated() -> None:
    guard = guard_with(ROOMY * 10)
    request = {"prompt": "a red fox", "n": 2, "size": "1024x1024"}
    try:
        assert reserve(guard, "dall-e-3", request) is not None
        assert guard.local() == [(Decimal(0), worst_case_cost(CATALOGUE, "openai", "dall-e-3",
                                                              request))]
    finally:
        guard.stop()


def test_a_markup_scales_the_worst_case_once() -> None:
    catalogue = Catalogue.bundled()
    request = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    plain = worst_case_cost(catalogue, "openai", "gpt-4o", request)
    catalogue.set_markup(20)
    assert worst_case_cost(catalogue, "openai", "gpt-4o", request) == plain * Decimal("1.2")
