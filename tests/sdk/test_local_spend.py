"""`llmlab._local_spend`: the guard's running totals of spend the server may not have counted.

Each test drives the books the way the guard does (record, acknowledge, cut before a status
request, apply its answer) and reads the totals a budget check adds to the server's spend.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from types import FrameType
from typing import Any

from llmlab._budgets import Budget, BudgetGuard
from llmlab._estimate import from_pico, to_pico
from llmlab._local_spend import MAX_HELD, MAX_OPEN, LocalSpend, attribution
from llmlab.schema import new_event_id

NOV = 1_795_000_000.0  # a wall time in November 2026, for records
DEC_1 = "2026-12-01T00:00:00Z"  # a period start after it


#: A monthly block budget of $1 on project p (November), as the server's status has it.
STATUS = {"id": "b_1", "name": "cap", "action": "block", "scope": {"project": "p"},
          "amount": "1", "spent": "0", "period": "monthly",
          "period_start": "2026-11-01T00:00:00Z", "resets_at": DEC_1}


def budget(**changes: Any) -> Budget:
    """`STATUS` with ``changes``, read as the guard reads it."""
    return Budget.from_status({**STATUS, **changes})


def books(*budgets: Budget, max_open: int = MAX_OPEN) -> LocalSpend:
    """Books that already applied a first status with ``budgets``."""
    spend = LocalSpend(max_open)
    assert spend.apply(list(budgets), spend.cut())
    return spend


CALL = {"project": "p", "model": "gpt-4o"}


def lines_run(action: Callable[[], object]) -> int:
    """How many Python lines ``action()`` executes (a measure of work that is not a time)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += event == "line"
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        action()
    finally:
        sys.settrace(previous)
    return count




class TestReleasedByStatus:
    def test_spend_acknowledged_before_the_cut_is_released_by_that_status(self) -> None:
        """The server stored it before the status request was sent, so the status has it."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        spend.acknowledge(["e1"])
        assert spend.totals == [Decimal("0.25")]  # acknowledged, not yet in a status
        assert spend.apply([budget(spent="0.25")], spend.cut())
        assert spend.totals == [Decimal(0)]

    def test_spend_acknowledged_after_the_cut_waits_for_the_next_status(self) -> None:
        """A status requested before the acknowledgement may not include it: kept until the
        next one."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        cut = spend.cut()
        spend.acknowledge(["e1"])  # while the status request is in flight
        assert spend.apply([budget()], cut)
        assert spend.totals == [Decimal("0.25")]
        assert spend.apply([budget(spent="0.25")], spend.cut())
        assert spend.totals == [Decimal(0)]

    def test_unacknowledged_spend_survives_any_number_of_statuses(self) -> None:
        """Queued, in-flight, spooled or rejected events are not in the server's spent."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        spend.acknowledge(["someone-else"])
        for _ in range(3):
            assert spend.apply([budget()], spend.cut())
        assert spend.totals == [Decimal("0.25")]

    def test_a_failed_status_keeps_sealed_spend_for_the_next_one(self) -> None:
        """Spend sealed for a request that failed is released by the next status instead."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        spend.acknowledge(["e1"])
        spend.cut()  # that request fails: nothing applied
        assert spend.totals == [Decimal("0.25")]
        assert spend.apply([budget(spent="0.25")], spend.cut())
        assert spend.totals == [Decimal(0)]

    def test_an_older_status_answered_late_is_ignored(self) -> None:
        """Two refreshes overlap: the one requested first, answered last, changes nothing."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        first = spend.cut()
        spend.acknowledge(["e1"])
        second = spend.cut()
        assert spend.apply([budget(spent="0.25")], second)
        assert not spend.apply([budget()], first)
        assert spend.totals == [Decimal(0)] and spend.budgets[0].spent == Decimal("0.25")

    def test_an_earlier_status_does_not_release_what_a_later_cut_sealed(self) -> None:
        """Two refreshes overlap: the first one's answer predates acknowledgements sealed
        by the second cut, so only the second answer releases them."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        first = spend.cut()
        spend.acknowledge(["e1"])
        second = spend.cut()
        assert spend.apply([budget()], first)
        assert spend.totals == [Decimal("0.25")]
        assert spend.apply([budget(spent="0.25")], second)
        assert spend.totals == [Decimal(0)]

    def test_a_reused_event_id_keeps_both_amounts(self) -> None:
        """Recording one id twice never loses the first amount (the second is held)."""
        spend = books(budget())
        spend.record(attribution(CALL), Decimal("0.25"), "e1", NOV)
        spend.record(attribution(CALL), Decimal("0.5"), "e1", NOV)
        spend.acknowledge(["e1"])
        assert spend.apply([budget(spent="0.25")], spend.cut())
        assert spend.totals == [Decimal("0.5")]


class TestBoundedMemory:
    def test_old_unacknowledged_spend_is_held_not_forgotten(self) -> None:
        """Past max_open records the oldest become sums: records stay at max_open, every
        cent still counts, and acknowledging the newest still releases them."""
        spend = books(budget(), max_open=100)
        for i in range(1_000):
            spend.record(attribution(CALL), Decimal("0.001"), f"e{i}", NOV + i)
        assert spend.open_records == 100 and spend.held_buckets == 1 and spend.sums() == 1
        assert spend.totals == [Decimal("1.000")]
        spend.acknowledge([f"e{i}" for i in range(900, 1_000)])
        assert spend.apply([budget(spent="0.1")], spend.cut())
        assert spend.totals == [Decimal("0.900")]

    def test_hours_of_outage_stay_within_the_held_bucket_cap(self) -> None:
        """A day of unacknowledged calls, one a minute past the cap, keeps at most MAX_HELD
        hour buckets, and their sum is exact."""
        spend = books(budget(period_start=None), max_open=10)
        minutes = 60 * 24 * 3
        for i in range(minutes):
            spend.record(attribution(CALL), Decimal("0.0001"), f"e{i}", NOV + 60 * i)
        assert spend.open_records == 10 and spend.held_buckets == MAX_HELD
        assert spend.totals == [Decimal("0.0001") * minutes]

    def test_memory_stops_growing_at_the_default_cap(self) -> None:
        """Traced memory after 2 and after 4 times MAX_OPEN unacknowledged calls is the same
        (within 64 KB): records are bounded by design, not by time."""
        spend = books(budget())
        amount = Decimal("0.001")
        tracemalloc.start()
        try:
            for i in range(2 * MAX_OPEN):
                spend.record(attribution({"project": "p", "model": "gpt-4o", "user": f"u{i % 50}"}),
                             amount, f"event-{i:012d}", NOV)
            half, _ = tracemalloc.get_traced_memory()
            for i in range(2 * MAX_OPEN, 4 * MAX_OPEN):
                spend.record(attribution({"project": "p", "model": "gpt-4o", "user": f"u{i % 50}"}),
                             amount, f"event-{i:012d}", NOV)
            full, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert full - half < 64 * 1024, (half, full)
        assert spend.totals == [amount * 4 * MAX_OPEN]


class TestBudgetsChange:
    def test_a_new_budget_counts_open_spend_by_attribution(self) -> None:
        """Calls recorded before a per-user budget existed count toward it only if they are
        that user's (open records keep their attribution)."""
        spend = books()
        spend.record(attribution({"project": "p", "user": "alice"}), Decimal("0.25"), "a", NOV)
        spend.record(attribution({"project": "p", "user": "bob"}), Decimal("0.5"), "b", NOV)
        alice = budget(id="b_alice", scope={"project": "p", "user": "alice"})
        assert spend.apply([budget(), alice], spend.cut())
        assert spend.totals == [Decimal("0.75"), Decimal("0.25")]

    def test_a_new_budget_counts_every_sum_it_may_cover(self) -> None:
        """Held spend has no attribution left: a budget it was folded without counts it all
        (it may be its spend), while the budgets it knew keep their exact share."""
        spend = books(budget(), max_open=1)
        spend.record(attribution({"project": "p", "user": "bob"}), Decimal("0.5"), "b", NOV)
        spend.record(attribution({"project": "p", "user": "bob"}), Decimal("0.25"), "c", NOV)  # folds b
        alice = budget(id="b_alice", scope={"project": "p", "user": "alice"})
        assert spend.apply([budget(), alice], spend.cut())
        assert spend.totals == [Decimal("0.75"), Decimal("0.5")]

    def test_held_spend_leaves_a_budget_whose_period_started_after_it(self) -> None:
        """A new period does not include earlier calls; a total budget always does."""
        total = budget(id="b_total", period_start=None, resets_at=None)
        spend = books(budget(), total, max_open=1)
        spend.record(attribution(CALL), Decimal("0.5"), "old", NOV)
        spend.record(attribution(CALL), Decimal("0.25"), "older-open", NOV)  # folds "old"
        assert spend.totals == [Decimal("0.75"), Decimal("0.75")]
        december = budget(period_start=DEC_1, resets_at="2027-01-01T00:00:00Z")
        assert spend.apply([december, total], spend.cut())
        assert spend.totals == [Decimal(0), Decimal("0.75")]

    def test_a_changed_scope_is_a_new_budget(self) -> None:
        """Re-scoping a budget (same id) recounts which calls it covers."""
        spend = books(budget())
        spend.record(attribution({"project": "p", "model": "gpt-4o"}), Decimal("0.5"), "e1", NOV)
        narrowed = budget(scope={"project": "p", "model": "o3"})
        assert spend.apply([narrowed], spend.cut())
        assert spend.totals == [Decimal(0)]


class TestPerCallWork:
    """A check, and recording a call, do the same work however many calls were made lately."""

    @staticmethod
    def guard_after(calls: int) -> BudgetGuard:
        """A guard with one block budget and ``calls`` unacknowledged recent calls."""
        guard = BudgetGuard(lambda: [{**STATUS, "amount": "1000000"}])
        assert guard.refresh()
        for _ in range(calls):
            guard.record(CALL, Decimal("0.001"), new_event_id())
        return guard

    def test_a_check_runs_the_same_lines_at_any_number_of_recent_calls(self) -> None:
        """The check reads one running total per budget: 0, 1,000 and 50,000 recent calls
        make it run exactly the same lines (it used to re-add every recent call)."""
        call = CALL
        runs = []
        for calls in (0, 1_000, 50_000):
            guard = self.guard_after(calls)
            runs.append(lines_run(partial(guard.check, call, lambda: Decimal("0.01"))))
            guard.stop()
        assert runs[0] == runs[1] == runs[2], runs

    def test_recording_runs_the_same_lines_at_any_number_of_recent_calls(self) -> None:
        """Recording a call is constant work below the record cap and constant (one fold
        more) above it."""
        call = CALL
        runs = []
        for calls in (0, 1_000, 30_000, 50_000):
            guard = self.guard_after(calls)
            guard.record(call, Decimal("0.001"), new_event_id())  # its cover is now known
            runs.append(lines_run(partial(guard.record, call, Decimal("0.001"), new_event_id())))
            guard.stop()
        assert runs[0] == runs[1] and runs[2] == runs[3], runs
        assert runs[2] - runs[0] < 15, runs

    def test_reserving_and_settling_run_the_same_lines_at_any_number_of_recent_calls(
            self) -> None:
        """A budgeted call's check-and-reserve, and its settlement on the worker, are
        constant work too, however many calls and reservations are in flight."""
        key = attribution(CALL)
        runs = []
        for calls in (0, 1_000, 50_000):
            guard = self.guard_after(calls)
            for _ in range(1 + calls // 1000):  # others in flight (and the cover known)
                guard.reserve(key, lambda: Decimal("0.001"))
            tokens: list[int | None] = []
            reserve = lines_run(partial(_reserve_into, tokens, guard, key))
            settle = lines_run(partial(guard.record_attributed, key, Decimal("0.004"),
                                       new_event_id(), tokens[0]))
            runs.append((reserve, settle))
            guard.stop()
        assert runs[0] == runs[1] and runs[1][0] == runs[2][0], runs
        assert runs[2][1] - runs[1][1] < 15, runs  # past the record cap: one fold more


def _reserve_into(tokens: list[int | None], guard: BudgetGuard, key: Any) -> None:
    tokens.append(guard.reserve(key, lambda: Decimal("0.01")))


def pico(dollars: str) -> int:
    """Whole pico-dollars, as reservations are kept."""
    return to_pico(Decimal(dollars))


class TestReservations:
    """A call's worst case, reserved at its check until its event is priced."""

    def test_a_reservation_counts_until_settled_to_the_real_cost(self) -> None:
        spend = books(budget())
        key = attribution(CALL)
        token = spend.reserve(key, spend.cover(key), pico("0.3"))
        assert (spend.totals, spend.reserved) == ([Decimal(0)], [pico("0.3")])
        assert spend.settle(token) and not spend.settle(token)  # once
        spend.record(key, Decimal("0.1"), "e1", NOV)
        assert (spend.totals, spend.reserved) == ([Decimal("0.1")], [0])

    def test_a_reservation_whose_event_is_never_built_is_kept_as_spend(self) -> None:
        """Never fail open: a call whose real cost will never be known keeps its worst case,
        as spend no acknowledgement can release."""
        spend = books(budget())
        key = attribution(CALL)
        spend.keep(spend.reserve(key, spend.cover(key), pico("0.3")), NOV)
        assert (spend.totals, spend.reserved) == ([Decimal("0.3")], [0])
        assert spend.apply([budget()], spend.cut()) and spend.totals == [Decimal("0.3")]

    def test_reservations_never_settled_stay_bounded_and_counted(self) -> None:
        """Past ``max_open`` reservations (events dropped before they were built), the oldest
        become spend: memory is bounded and nothing is forgotten."""
        spend = books(budget(), max_open=10)
        key = attribution(CALL)
        for _ in range(25):
            spend.reserve(key, spend.cover(key), pico("0.01"))
        assert spend.reservations == 10 and spend.open_records <= 10
        assert spend.totals[0] + from_pico(spend.reserved[0]) == Decimal("0.25")

    def test_new_budgets_count_the_reservations_they_cover(self) -> None:
        spend = books(budget())
        key = attribution(CALL)
        token = spend.reserve(key, spend.cover(key), pico("0.3"))
        other = budget(id="b_2", scope={"project": "q"})
        assert spend.apply([other, budget(), budget(id="b_3", scope={"model": "gpt-4o"})],
                           spend.cut())
        assert spend.reserved == [0, pico("0.3"), pico("0.3")]
        assert spend.settle(token) and spend.reserved == [0] * 3

    def test_headroom_follows_the_totals_in_whole_pico_dollars(self) -> None:
        """What the per-call check compares with: the status's ``amount - spent`` less the
        local spend, rounded down (never more room than there is), after every change."""
        spend = books(budget(amount="1", spent="0.25"))
        key = attribution(CALL)
        assert spend.headroom == [pico("0.75")]
        spend.record(key, Decimal("0.1000000000005"), "e1", NOV)  # below a pico-dollar
        assert spend.headroom == [pico("0.6499999999995") - 1]
        spend.acknowledge(["e1"])
        assert spend.apply([budget(amount="1", spent="0.3500000000005")], spend.cut())
        assert spend.headroom == [pico("0.6499999999995") - 1]  # released, counted there
        spend.keep(spend.reserve(key, spend.cover(key), pico("0.2")), NOV)
        assert spend.headroom == [pico("0.4499999999995") - 1]
def test_a_reservation_kept_for_the_bound_is_replaced_by_its_real_cost_not_added_to() -> None:
    """Past ``max_open`` reservations the oldest is kept as spend (its worst case); when that
    call is priced after all, its real cost replaces the worst case: counted once."""
    guard = BudgetGuard(lambda: [STATUS], max_open=2)
    try:
        assert guard.refresh()
        key = attribution(CALL)
        tokens = [guard.reserve(key, lambda: Decimal("0.1")) for _ in range(3)]
        assert guard.reservations == 2
        assert guard.local() == [(Decimal("0.1"), Decimal("0.2"))]  # the oldest became spend
        first = new_event_id()
        guard.record_attributed(key, Decimal("0.02"), first, tokens[0])
        assert guard.local() == [(Decimal("0.02"), Decimal("0.2"))]
        guard.acknowledged([first])
        assert guard.refresh()  # the server's status now includes the first call
        assert guard.local() == [(Decimal(0), Decimal("0.2"))]
        for token in tokens[1:]:
            guard.record_attributed(key, Decimal("0.03"), new_event_id(), token)
        assert guard.local() == [(Decimal("0.06"), Decimal(0))]
    finally:
        guard.stop()
