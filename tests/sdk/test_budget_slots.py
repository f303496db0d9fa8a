"""The budget guard's slots (`llmlab._budget_routes`): far from a block budget's limit a call
holds a ceiling its model's route keeps reserved, given back when the call is priced; idle
slots never refuse a call, and every slot is released or reused, never lost or shared."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from test_budget_reservations import CALL, COST
from test_budget_room import CATALOGUE, CEILING, REQUEST, reserve, start
from test_budgets import StatusServer, budget

import llmlab
from llmlab import _budget_routes
from llmlab._budget_routes import ROOM_FACTOR, Route
from llmlab._budgets import BudgetGuard
from llmlab._estimate import from_pico, to_pico
from llmlab._tracker import get_tracker
from llmlab.errors import BudgetExceededError
from llmlab.testing import FakeProvider

KEY = ("support-bot", None, None, "gpt-4o", ())
PICO_COST = to_pico(COST)


def status_of(ceilings: int, **changes: Any) -> dict[str, Any]:
    """A block budget with room for ``ceilings`` gpt-4o ceilings."""
    return budget(amount=str(from_pico(ceilings * CEILING)), **changes)


@pytest.fixture
def statuses() -> list[dict[str, Any]]:
    return [status_of(ROOM_FACTOR * 100)]


@pytest.fixture
def guard(statuses: list[dict[str, Any]]) -> Iterator[BudgetGuard]:
    guard = BudgetGuard(lambda: list(statuses))
    assert guard.refresh()
    yield guard
    guard.stop()


def route(guard: BudgetGuard) -> Route:
    return guard._routes["gpt-4o"]


def settle(guard: BudgetGuard, token: Any, cost: Decimal = COST) -> None:
    """What the delivery worker does once it priced the call."""
    guard.record_attributed(KEY, cost, None, token)


def consistent(guard: BudgetGuard) -> bool:
    """Every pico-dollar reserved belongs to a reservation or a slot (nothing lost)."""
    spend = guard._spend
    expected = [0] * len(spend.reserved)
    for amount, _, cover in spend._reservations.values():
        for i in cover:
            expected[i] += amount
    for pool in spend.pools:
        for i in pool.cover:
            expected[i] += pool.slots * (pool.unit or 0)
    return expected == spend.reserved


def test_a_priced_call_gives_its_slot_to_the_next(guard: BudgetGuard) -> None:
    token = reserve(guard, "gpt-4o")
    assert isinstance(token, Route)
    assert guard.reservations == 1 and guard.local() == [(Decimal(0), from_pico(CEILING))]
    settle(guard, token)
    assert guard.reservations == 0 and guard.local() == [(COST, Decimal(0))]
    assert route(guard).idle == [token]
    assert reserve(guard, "gpt-4o") is token and route(guard).slots == 1  # reused
    assert consistent(guard)


def test_the_pool_doubles_while_calls_outrun_their_pricing(
        guard: BudgetGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls not yet priced hold their slots: an empty pool doubles, so the lock is taken
    four times for five calls, and each call holds its own ceiling."""
    grown: list[int] = []
    take = _budget_routes.take_slot

    def noting(spend: Any, pool: Route) -> bool:
        grown.append(pool.slots)
        return take(spend, pool)

    monkeypatch.setattr(_budget_routes, "take_slot", noting)
    tokens = [reserve(guard, "gpt-4o") for _ in range(5)]
    assert grown == [0, 1, 2, 4] and route(guard).slots == 8 and len(route(guard).idle) == 3
    assert guard.reservations == 5
    assert guard.local() == [(Decimal(0), from_pico(5 * CEILING))]
    for token in tokens:
        settle(guard, token)
    assert guard.reservations == 0 and len(route(guard).idle) == 8
    assert guard.local() == [(5 * COST, Decimal(0))] and consistent(guard)


def test_idle_slots_never_refuse_a_call(guard: BudgetGuard,
                                        statuses: list[dict[str, Any]]) -> None:
    """Room for 72 ceilings, 8 of them idle slots: a call needing 71 is admitted (the
    idle slots are released first), by `reserve` and by `check` alike."""
    statuses[:] = [status_of(ROOM_FACTOR + 8)]
    assert guard.refresh()
    tokens = [reserve(guard, "gpt-4o") for _ in range(8)]
    for token in tokens:
        settle(guard, token, Decimal(0))
    assert route(guard).slots == 8 and guard.local() == [(Decimal(0), Decimal(0))]
    need = (ROOM_FACTOR + 7) * CEILING
    guard.check({"project": "support-bot", "model": "gpt-4o"}, lambda: from_pico(need))
    assert route(guard).slots == 0
    tokens = [reserve(guard, "gpt-4o") for _ in range(8)]
    for token in tokens:
        settle(guard, token, Decimal(0))
    assert route(guard).slots == 8
    token = guard.reserve(KEY, lambda: need)
    assert isinstance(token, int) and route(guard).slots == 0
    assert guard.local() == [(Decimal(0), from_pico(need))] and consistent(guard)
    with pytest.raises(BudgetExceededError):  # calls in flight still count
        guard.reserve(KEY, lambda: 2 * CEILING)


def test_near_the_limit_a_priced_slot_is_released(guard: BudgetGuard,
                                                   statuses: list[dict[str, Any]]) -> None:
    """Room for exactly `ROOM_FACTOR` ceilings admits one slot; once its call's cost is
    spent, the room left is short of the margin and the slot is released, not pooled."""
    statuses[:] = [status_of(ROOM_FACTOR)]
    assert guard.refresh()
    token = reserve(guard, "gpt-4o")
    assert isinstance(token, Route) and token.slots == 1
    second = reserve(guard, "gpt-4o")  # no room for a second slot: estimated
    assert isinstance(second, int)
    settle(guard, second)
    settle(guard, token)
    assert token.slots == 0 and token.idle == [] and guard._spend.pools == {}
    assert guard.local() == [(2 * COST, Decimal(0))] and consistent(guard)
    assert isinstance(reserve(guard, "gpt-4o"), int)  # still short: estimated


def test_a_new_status_retires_the_routes(guard: BudgetGuard,
                                         statuses: list[dict[str, Any]]) -> None:
    """A refresh releases the idle slots; a slot in flight moves to the new budgets that
    cover its call, and is released (not pooled) when the call is priced."""
    first, second = reserve(guard, "gpt-4o"), reserve(guard, "gpt-4o")
    settle(guard, first)
    old = route(guard)
    assert old.slots == 2 and old.idle == [old]
    statuses.append(status_of(ROOM_FACTOR * 100, id="b_2", name="team cap"))
    assert guard.refresh()
    assert not old.live and old.slots == 1 and old.idle == [] and guard._routes == {}
    # The unacknowledged call counts toward the new budget as well.
    assert guard.local() == [(COST, from_pico(CEILING))] * 2
    settle(guard, second)
    assert old.slots == 0 and guard._spend.pools == {}
    assert guard.local() == [(2 * COST, Decimal(0))] * 2
    assert consistent(guard)
    assert reserve(guard, "gpt-4o") is route(guard) is not old


def test_an_unpriced_call_keeps_its_ceiling_as_spend(guard: BudgetGuard) -> None:
    token = reserve(guard, "gpt-4o")
    guard.keep(token)
    assert route(guard).slots == 0
    assert guard.local() == [(from_pico(CEILING), Decimal(0))] and consistent(guard)
    guard.keep(token)  # kept once
    settle(guard, token)  # priced after all: its cost counts, no slot comes back
    assert route(guard).slots == 0 and route(guard).idle == []
    assert guard.local() == [(from_pico(CEILING) + COST, Decimal(0))]


def test_a_slot_of_another_guard_changes_nothing_here(guard: BudgetGuard) -> None:
    other = BudgetGuard(lambda: [status_of(ROOM_FACTOR * 100)])
    assert other.refresh()
    foreign = reserve(other, "gpt-4o")
    settle(guard, foreign)
    guard.keep(foreign)
    assert guard.local() == [(COST, Decimal(0))] and guard._spend.pools == {}
    assert other.reservations == 1
    other.stop()


def test_past_the_most_slots_calls_are_estimated(
        guard: BudgetGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_budget_routes, "MAX_SLOTS", 4)
    tokens = [reserve(guard, "gpt-4o") for _ in range(5)]
    assert [isinstance(t, Route) for t in tokens] == [True] * 4 + [False]
    assert route(guard).slots == 4 and guard.reservations == 5
    estimated = guard._spend._reservations[tokens[4]][0]
    assert guard.local() == [(Decimal(0), from_pico(4 * CEILING + estimated))]


def test_a_forked_child_starts_with_no_slots(guard: BudgetGuard) -> None:
    settle(guard, reserve(guard, "gpt-4o"))
    reserve(guard, "gpt-4o")
    guard._after_fork_in_child()
    guard.stop()
    assert guard._routes == {} and guard._spend.pools == {}
    assert guard.reservations == 0 and guard.local() == [(Decimal(0), Decimal(0))]
    token = reserve(guard, "gpt-4o")
    assert isinstance(token, Route) and token.slots == 1 and consistent(guard)


def test_concurrent_calls_hold_one_slot_each_through_refreshes(
        guard: BudgetGuard, statuses: list[dict[str, Any]]) -> None:
    """Eight threads reserving and settling while the status refreshes (retiring routes
    with calls in flight): no more slots are handed out than reserved, and at the end
    every pico-dollar reserved is an idle slot."""
    clashes: list[Route] = []
    stop = threading.Event()

    def caller() -> None:
        for _ in range(1500):
            settle(guard, reserve(guard, "gpt-4o"))

    def idle_never_exceeds_slots() -> None:
        while not stop.is_set():
            with guard._lock:
                for pool in guard._spend.pools:
                    if len(pool.idle) > pool.slots:
                        clashes.append(pool)

    def refresher() -> None:
        while not stop.is_set():
            guard.refresh()

    threads = [threading.Thread(target=caller) for _ in range(8)]
    watchers = [threading.Thread(target=idle_never_exceeds_slots),
                threading.Thread(target=refresher)]
    for thread in threads + watchers:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    for thread in watchers:
        thread.join()
    assert clashes == []
    assert guard.reservations == 0 and consistent(guard)
    assert guard.local() == [(8 * 1500 * COST, Decimal(0))]
    assert all(pool.slots == len(pool.idle) > 0 for pool in guard._spend.pools)


def test_threads_calling_a_real_client_leave_nothing_reserved(
        status: StatusServer, fake: FakeProvider, tmp_path: Path) -> None:
    """Through the openai client: four threads' calls take slots (the worker prices them
    only on flush, so they pile up), and the flush gives every one back."""
    client: openai.OpenAI = start(status, fake, tmp_path, from_pico(ROOM_FACTOR * 100 * CEILING))
    guard = get_tracker().budget_guard
    try:
        def calls() -> None:
            for _ in range(25):
                client.chat.completions.create(**CALL)

        threads = [threading.Thread(target=calls) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert guard.reservations == 100
        assert guard.local() == [(Decimal(0), from_pico(100 * CEILING))]
        assert 100 <= route(guard).slots <= 200
        assert llmlab.flush(10)
        assert guard.reservations == 0 and guard.local() == [(100 * COST, Decimal(0))]
        assert route(guard).slots == len(route(guard).idle) and consistent(guard)
    finally:
        llmlab.shutdown()


def test_requests_the_fast_path_does_not_take_hold_no_slot(guard: BudgetGuard) -> None:
    tools = {**REQUEST, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert isinstance(reserve(guard, "gpt-4o", tools), int)
    CATALOGUE.set_markup(10)
    try:
        assert isinstance(reserve(guard, "gpt-4o"), int)
    finally:
        CATALOGUE._markups.clear()
    assert guard._spend.pools == {}
