"""The budget guard's fast path: a route per model, and its pool of reserved slots.

Far from the limits of the block budgets covering a call (each has room for `ROOM_FACTOR`
times the most any call to its model can cost, its *ceiling*: `ceiling_pico`), a call needs
no estimate: reserving its ceiling is enough. A `Route` holds what that takes for one
model's calls (their attribution, the block budgets covering them, the ceiling) and a pool
of *slots*: ceilings reserved in those budgets (`LocalSpend.add_slots`).

* A call takes an idle slot with one ``list.pop`` (atomic under the GIL), without the lock
  and without a record: the slot is its reservation.
* Only when the pool is empty (more calls in flight than ever before) does a call take the
  lock and new slots, as many as the pool had (`take_slot`), if the budgets keep room for
  `ROOM_FACTOR` ceilings beside each; otherwise its request is estimated.
* The delivery worker, pricing the call, gives its slot back (`give_back`): to the pool
  while the budgets still have that room beside it, else the slot is released.

So a pool holds at most twice as many slots as calls were ever in flight (not yet priced)
at once, and a call takes the lock only when that number doubles. An idle slot is held by
no call and never makes the guard refuse one: a check that would refuse first releases
every idle slot (`reclaim`) and checks again, and the guard's `local()` and `reservations`
count only slots calls hold. A new status retires every route (`retire`): its idle slots
are released, and its slots in flight when their calls are priced.

Everything here runs under the guard's lock, except the ``pop`` in
`BudgetGuard.reserve_request`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmlab._estimate import from_pico
from llmlab._spend_sums import Cover, Key

if TYPE_CHECKING:
    from llmlab._local_spend import LocalSpend

__all__ = ["MAX_SLOTS", "ROOM_FACTOR", "Route", "Token", "give_back", "idle_reserved", "in_flight",
           "keep_slot", "reclaim", "retire", "short_of", "take_slot"]

#: A call reserves its model's ceiling while each block budget covering it has room for
#: this many ceilings.
ROOM_FACTOR = 64
#: The most slots a route reserves (past it, calls are estimated one by one).
MAX_SLOTS = 16_384


class Route:
    """A model's calls outside any scope: their attribution, the block budgets covering
    them (its ``cover``), their ceiling (its ``unit``) and the pool of slots."""

    __slots__ = ("cover", "idle", "key", "live", "margin", "project", "resolved", "slots",
                 "unit")

    def __init__(self, key: Key, cover: Cover, unit: int | None, resolved: Any) -> None:
        self.key = key
        self.project = key[0]
        #: Block budgets holding the slots (remapped by `LocalSpend` when budgets change).
        self.cover = cover
        #: The ceiling in pico-dollars; None for a model without token limits, 0 unpriced.
        self.unit = unit
        self.margin = (unit or 0) * ROOM_FACTOR
        #: The catalogue index the ceiling was worked out on.
        self.resolved = resolved
        #: One entry (this route) per idle slot: ``pop`` hands one to a call.
        self.idle: list[Route] = []
        #: Slots reserved, idle or held by a call.
        self.slots = 0
        #: False once retired: its slots are released, never pooled again.
        self.live = True


#: A reservation: an int (`LocalSpend.reserve`, one call's worst case) or a slot's route.
Token = int | Route


def has_room(spend: LocalSpend, route: Route, own: int) -> bool:
    """Whether every budget covering ``route`` has room for `ROOM_FACTOR` ceilings beside
    what is reserved, ``own`` pico-dollars of which are the slot being decided on."""
    headroom, reserved = spend.headroom, spend.reserved
    margin = route.margin - own
    return all(reserved[i] + margin <= headroom[i] for i in route.cover)


def take_slot(spend: LocalSpend, route: Route) -> bool:
    """A call found a live route's pool empty: reserve new slots, one for the call and the
    rest idle, if every budget keeps room for `ROOM_FACTOR` ceilings beside each. The pool
    doubles (up to `MAX_SLOTS`): calls outrunning the worker that prices them take the lock
    a few times, not once each."""
    unit, cover = route.unit, route.cover
    if not route.live or not unit or not cover:
        return False
    headroom, reserved, margin = spend.headroom, spend.reserved, route.margin
    room = min([(headroom[i] - reserved[i] - margin) // unit for i in cover]) + 1
    grow = min(room, route.slots or 1, MAX_SLOTS - route.slots)
    if grow < 1:
        return False
    spend.add_slots(route, grow)
    if grow > 1:
        route.idle.extend([route] * (grow - 1))  # atomic, like the callers' ``pop``
    return True


def _held(spend: LocalSpend, route: Route) -> bool:
    """Whether some call holds a slot of ``route`` (a token of this guard, not settled)."""
    return len(route.idle) < route.slots and route in spend.pools


def give_back(spend: LocalSpend, route: Route) -> None:
    """A call holding a slot was priced (its cost recorded already): the slot returns to
    the pool while there is room beside it, else it is released."""
    if _held(spend, route):
        if route.live and has_room(spend, route, route.unit or 0):
            route.idle.append(route)
        else:
            spend.drop_slots(route, 1)


def keep_slot(spend: LocalSpend, route: Route, now: float) -> None:
    """A call holding a slot goes unpriced: its ceiling is kept as spend instead."""
    if _held(spend, route):
        spend.drop_slots(route, 1)
        spend.record(route.key, from_pico(route.unit or 0), None, now)


def _drain(spend: LocalSpend, route: Route) -> int:
    """Release the idle slots of ``route``; how many. Each is popped: one a call pops
    meanwhile is that call's."""
    idle, count = route.idle, 0
    while True:
        try:
            idle.pop()
        except IndexError:
            break
        count += 1
    spend.drop_slots(route, count)
    return count


def retire(spend: LocalSpend, route: Route) -> None:
    """A route replaced (new status, new catalogue, another project): its idle slots are
    released, and its others when their calls are priced."""
    route.live = False
    _drain(spend, route)


def reclaim(spend: LocalSpend) -> bool:
    """Release every idle slot (a check is about to refuse a call); whether there was any."""
    return sum(_drain(spend, route) for route in list(spend.pools)) > 0


def short_of(spend: LocalSpend, blocks: Cover, worst: int) -> int | None:
    """The first of ``blocks`` without room for ``worst`` more, or None."""
    headroom, reserved = spend.headroom, spend.reserved
    for i in blocks:
        if reserved[i] + worst > headroom[i]:
            return i
    return None


def idle_reserved(spend: LocalSpend) -> list[int]:
    """Per budget, the pico-dollars idle slots reserve."""
    idle = [0] * len(spend.reserved)
    for route in spend.pools:
        amount = len(route.idle) * (route.unit or 0)
        for i in route.cover:
            idle[i] += amount
    return idle


def in_flight(spend: LocalSpend) -> int:
    """Slots held by calls not yet priced."""
    return sum(route.slots - len(route.idle) for route in spend.pools)
