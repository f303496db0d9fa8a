"""The budget guard's books: spend of this process the server may not have counted yet.

The guard (`llmlab._budgets`) adds to each budget's ``spent`` (the server's status) the
spend of this process's calls that the status may not include. `LocalSpend` keeps that
spend as one running total per budget (``totals[i]`` for ``budgets[i]``), so a check reads
one number per budget however many calls were made recently, and its memory is bounded
however long the server stays unreachable, without forgetting spend.

A call counts toward the budgets whose scope covers its attribution (its *cover*, a tuple
of budget indices). Its spend is in exactly one of four places until it is released:

* **open**: one small record per event (id → amount, attribution, cover, time) from the
  moment the call is recorded until the server acknowledges the event (stored, or already
  stored). Queued, in-flight, spooled, rejected and dropped events stay open: the server
  has not counted them, so they keep counting here.
* **acknowledged**: an acknowledgement turns the record into a sum per cover. Just before
  each status request the guard *cuts*: what was acknowledged before the cut is *sealed*.
  The server stored those events before it answered their delivery, so before it received
  the status request: a successful status *released* the sealed sums. What is
  acknowledged after the cut may or may not be in that status, and waits for the next.
* **held**: past ``max_open`` open records (the server unreachable for long, its events
  spooled), the oldest records are folded into per-cover sums in hour-long buckets (at
  most `MAX_HELD`), keeping the newest call's time but not the event ids, so an
  acknowledgement can no longer find them. Held spend is never released by a status; it
  stops counting toward a budget once that budget's period starts after the bucket's newest
  call (the server counts an event in the period of its time), and counts toward a
  ``total`` budget for good. An outage of more than ``max_open`` calls therefore costs the
  guard some precision, not memory and never money: after the server gets the replayed
  events it counts the held part twice until the period ends, and may refuse a call it
  could have allowed, never the reverse.

* **reserved**: a call checked against a ``block`` budget reserves its worst-case cost
  (`reserve`) before the provider is called, in ``reserved[i]`` beside ``totals[i]`` of each
  block budget covering it (alert budgets see real costs only), until
  its event is priced (on the delivery worker) and `settle` replaces the reservation with the
  call's real cost as an open record. A budget check adds both. Reservations are bounded
  like open records: past ``max_open`` of them (calls whose events were never built, say
  dropped), the oldest becomes an open record without an id (kept, never forgotten); a
  call priced after all then replaces that record with its real cost (`unkeep`). Calls
  far from the limits hold *slots* instead (`llmlab._budget_routes`): ceilings reserved
  per model (`add_slots`), reused by its calls and released (`drop_slots`) by the guard.

Recording adds to the totals of its cover; releasing subtracts; acknowledging and folding
move spend without changing any total. So a check is O(budgets), recording and
acknowledging are O(cover), and nothing walks the records on the per-call path. When the
budgets themselves change (added, removed, re-scoped, or a new period), the totals are
rebuilt once on the refresh thread: open records exactly, from their attribution and time;
sums by budget identity, and a budget a sum was made without is assumed to cover it (its
spend may belong to it).

Not thread-safe: the guard calls every method under its lock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmlab._spend_sums import Cover, Held, Key, add_sums, call_of, remap_sums, started_after

if TYPE_CHECKING:
    from llmlab._budget_routes import Route
    from llmlab._budget_status import Budget

__all__ = ["HELD_SPAN", "MAX_HELD", "MAX_OPEN", "Cover", "Key", "LocalSpend", "attribution"]

#: Unacknowledged events kept one by one (about 0.45 KB each with their id and amount, so at
#: most about 9 MB); past it the oldest are held as sums.
MAX_OPEN = 20_000
#: Seconds of calls one held bucket gathers, and the most buckets kept (the two oldest merge).
HELD_SPAN = 3600.0
MAX_HELD = 48
#: Attributions whose cover is remembered (the cache is emptied when full).
MAX_REMEMBERED = 1024

ZERO = Decimal(0)
#: Reservations and headroom are whole pico-dollars: dollars times 10 ** PICO_DIGITS.
PICO_DIGITS = 12
#: An open record: (amount, attribution, cover, wall time recorded).
Record = tuple[Decimal, Key, Cover, float]
#: A reservation: (worst case in whole pico-dollars, attribution, cover).
Reservation = tuple[int, Key, Cover]


class LocalSpend:
    """Running totals of local spend per budget; see the module docstring."""

    def __init__(self, max_open: int = MAX_OPEN) -> None:
        self.max_open = max(1, max_open)
        self.budgets: list[Budget] = []
        #: Replaced (never resized) when the budgets change, so a reader may hold it.
        self.totals: list[Decimal] = []
        #: Worst cases reserved by calls not yet settled, per budget, in whole pico-dollars
        #: (integers: the per-call check does no `Decimal` arithmetic); replaced like `totals`.
        self.reserved: list[int] = []
        #: Per block budget, what its status leaves minus its local spend (``amount - spent -
        #: totals[i]``) in whole pico-dollars, rounded down: kept in step with `totals`, so
        #: the per-call check compares integers.
        self.headroom: list[int] = []
        self._reservations: OrderedDict[int, Reservation] = OrderedDict()
        #: Routes with reserved slots (`llmlab._budget_routes`), an ordered set.
        self.pools: dict[Route, None] = {}
        #: Reservations kept as spend past the bound -> the key of that open record.
        self._kept: OrderedDict[int, int] = OrderedDict()
        self._tokens = 0
        self._indexed: list[tuple[int, Budget]] = []
        self._open: OrderedDict[str | int, Record] = OrderedDict()
        self._unnamed = 0  # keys of records without an event id (ints: never an id)
        self._acked: dict[Cover, Decimal] = {}
        self._sealed: dict[Cover, Decimal] = {}
        self._sealed_cut = 0
        self._cuts = 0
        self._applied = 0
        self._held: list[Held] = []
        self._interned: dict[Cover, Cover] = {}
        self._covers: dict[Key, Cover] = {}  # attribution -> cover, for the current budgets

    # -- the per-call path -----------------------------------------------------------------------

    def record(self, key: Key, amount: Decimal, event_id: str | None, now: float) -> Cover:
        """Count the spend of a call attributed ``key`` (`attribution`) until its event is
        acknowledged; returns its cover."""
        cover = self._covers.get(key)
        if cover is None:
            cover = self._cover_of(key)
        if cover:
            totals = self.totals
            for i in cover:
                totals[i] += amount
            self._sync(cover)
        record: Record = (amount, key, cover, now)
        opened = self._open
        if event_id is None or opened.setdefault(event_id, record) is not record:
            self._unnamed += 1  # no id (or one seen before): never acknowledged
            opened[self._unnamed] = record
        if len(opened) > self.max_open:
            self._fold(now)
        return cover

    def cover(self, key: Key) -> Cover:
        """The budgets an attribution counts toward."""
        cover = self._covers.get(key)
        return self._cover_of(key) if cover is None else cover

    def reserve(self, key: Key, cover: Cover, amount: int) -> int:
        """Reserve ``amount`` pico-dollars in the budgets of ``cover`` (the block budgets
        covering ``key``) until `settle`; returns its token."""
        reserved = self.reserved
        for i in cover:
            reserved[i] += amount
        self._tokens += 1
        reservations = self._reservations
        reservations[self._tokens] = (amount, key, cover)
        if len(reservations) > self.max_open:  # never settled (its event was never built)
            self.keep(next(iter(reservations)), remember=True)
        return self._tokens

    def add_slots(self, route: Route, count: int) -> None:
        """Reserve ``count`` more slots of ``route``: its ``unit`` each, in its ``cover``."""
        reserved, amount = self.reserved, (route.unit or 0) * count
        for i in route.cover:
            reserved[i] += amount
        route.slots += count
        self.pools[route] = None

    def drop_slots(self, route: Route, count: int) -> None:
        """Release ``count`` of ``route``'s slots."""
        if count:
            reserved, amount = self.reserved, (route.unit or 0) * count
            for i in route.cover:
                reserved[i] -= amount
            route.slots -= count
            if not route.slots:
                del self.pools[route]

    def settle(self, token: int) -> bool:
        """Drop reservation ``token`` (its call's real cost is recorded instead); False when
        it is gone already (settled, or kept as spend past the bound)."""
        record = self._reservations.pop(token, None)
        if record is None:
            return False
        amount, _, cover = record
        reserved = self.reserved
        for i in cover:
            reserved[i] -= amount
        return True

    def keep(self, token: int, now: float | None = None, *, remember: bool = False) -> None:
        """Keep reservation ``token`` as spend, in every budget covering its call (its real
        cost will never be known). ``remember``: it is kept only for the bound, and its
        call may still be settled (`unkeep`)."""
        record = self._reservations.get(token)
        if record is not None and self.settle(token):
            self.record(record[1], Decimal(record[0]).scaleb(-PICO_DIGITS), None,
                        time.time() if now is None else now)
            if remember:
                self._kept[token] = self._unnamed
                if len(self._kept) > self.max_open:
                    self._kept.popitem(last=False)

    def unkeep(self, token: int) -> None:
        """A reservation `keep` made spend for the bound is settled after all (its call is
        priced now): drop that worst case, so the real cost replaces it instead of adding
        to it. Spend folded since stays counted (never less than was spent)."""
        key = self._kept.pop(token, None)
        record = self._open.pop(key, None) if key is not None else None
        if record is not None:
            totals = self.totals
            for i in record[2]:
                totals[i] -= record[0]
            self._sync(record[2])

    def _cover_of(self, key: Key) -> Cover:
        """The budgets an attribution counts toward, remembered (most calls share a few)."""
        call = call_of(key)
        found = tuple([i for i, budget in self._indexed if budget.covers(call)])
        cover = self._interned.setdefault(found, found)
        if len(self._covers) >= MAX_REMEMBERED:
            self._covers.clear()  # many distinct attributions (say a job id per request)
        self._covers[key] = cover
        return cover

    def acknowledge(self, event_ids: Iterable[str]) -> None:
        """The server stored these events: their spend waits for the next cut's status."""
        opened, acked = self._open, self._acked
        for event_id in event_ids:
            record = opened.pop(event_id, None)
            if record is not None:
                cover = record[2]
                acked[cover] = acked.get(cover, ZERO) + record[0]

    def _fold(self, now: float) -> None:
        """Move the oldest open record into a held bucket (totals unchanged)."""
        _, (amount, _, cover, when) = self._open.popitem(last=False)
        held = self._held
        if not held or now - held[-1].since >= HELD_SPAN:
            held.append(Held(now))
            if len(held) > MAX_HELD:
                first, second = held.pop(0), held[0]
                second.since, second.newest = first.since, max(first.newest, second.newest)
                for old_cover, old_amount in first.sums.items():
                    second.sums[old_cover] = second.sums.get(old_cover, ZERO) + old_amount
        bucket = held[-1]
        bucket.newest = max(bucket.newest, when)
        bucket.sums[cover] = bucket.sums.get(cover, ZERO) + amount

    # -- status refreshes ------------------------------------------------------------------------

    def cut(self) -> int:
        """Seal what was acknowledged so far (a status request is about to be sent); returns
        the cut's number for `apply`."""
        self._cuts += 1
        if self._acked:
            add_sums(self._sealed, self._acked)
            self._acked = {}
        self._sealed_cut = self._cuts
        return self._cuts

    def apply(self, budgets: list[Budget], cut: int) -> bool:
        """Take the status requested after ``cut``: release what it includes, and rebuild
        the totals if the budgets changed. False (and nothing done) for a status older than
        one already applied."""
        if cut <= self._applied:
            return False
        self._applied = cut
        if self._sealed_cut <= cut:  # else a later cut sealed more: the later status releases
            for cover, amount in self._sealed.items():
                for i in cover:
                    self.totals[i] -= amount
            self._sealed = {}
        if [(b.identity, b.period_start_at) for b in budgets] == \
                [(b.identity, b.period_start_at) for b in self.budgets]:
            self.budgets = budgets  # amounts and spent moved; covers and totals did not
            self._indexed = list(enumerate(budgets))
        else:
            self._rebuild(budgets)
        self._sync(range(len(budgets)))
        return True

    def _sync(self, cover: Iterable[int]) -> None:
        """`headroom` of the block budgets in ``cover`` after their totals moved."""
        headroom, totals, budgets = self.headroom, self.totals, self.budgets
        if len(headroom) != len(budgets):
            headroom = self.headroom = [0] * len(budgets)
        for i in cover:
            budget = budgets[i]
            if budget.action == "block":
                headroom[i] = math.floor(
                    (budget.amount - budget.spent - totals[i]).scaleb(PICO_DIGITS))

    def _rebuild(self, budgets: list[Budget]) -> None:
        """New budgets (or periods): every cover and total again, once."""
        old = [b.identity for b in self.budgets]
        known = set(old)
        index = {b.identity: i for i, b in enumerate(budgets)}
        fresh = {i for i, b in enumerate(budgets) if b.identity not in known}
        starts = [b.period_start_at for b in budgets]
        self.budgets, self._indexed = budgets, list(enumerate(budgets))
        self._interned, self._covers = {}, {}
        totals = [ZERO] * len(budgets)
        remapped: dict[Cover, Cover] = {}

        def remap(cover: Cover, newest: float | None = None) -> Cover:
            """A sum's cover under the new budgets (it has no attribution left)."""
            mapped = remapped.get(cover) if newest is None else None
            if mapped is None:
                ids = {index[old[i]] for i in cover if old[i] in index} | fresh
                mapped = self._intern(tuple(sorted(
                    i for i in ids if newest is None or not started_after(starts[i], newest))))
                if newest is None:
                    remapped[cover] = mapped
            return mapped

        for event_id, (amount, key, _, when) in list(self._open.items()):
            call = call_of(key)
            cover = self._intern(tuple(i for i, b in enumerate(budgets) if b.covers(call)
                                       and not started_after(starts[i], when)))
            self._open[event_id] = (amount, key, cover, when)
            for i in cover:
                totals[i] += amount
        reserved = [0] * len(budgets)
        for token, (worst, key, _) in list(self._reservations.items()):
            call = call_of(key)
            cover = self._intern(tuple(i for i, b in enumerate(budgets)
                                       if b.action == "block" and b.covers(call)))
            self._reservations[token] = (worst, key, cover)
            for i in cover:
                reserved[i] += worst
        for route in self.pools:
            route.cover = self._intern(tuple(i for i, b in enumerate(budgets)
                                             if b.action == "block" and b.covers(call_of(route.key))))
            for i in route.cover:
                reserved[i] += route.slots * (route.unit or 0)
        self.reserved = reserved
        self._acked = remap_sums(self._acked, remap, None, totals)
        self._sealed = remap_sums(self._sealed, remap, None, totals)
        for bucket in self._held:
            bucket.sums = remap_sums(bucket.sums, remap, bucket.newest, totals)
        self.totals = totals

    def _intern(self, cover: Cover) -> Cover:
        return self._interned.setdefault(cover, cover)

    def reset(self) -> None:
        """Forget every record and sum (a forked child: the parent's calls are its own)."""
        self._open.clear()
        self._reservations.clear()
        self.pools.clear()
        self._kept.clear()
        self._acked, self._sealed, self._held = {}, {}, []
        self.totals = [ZERO] * len(self.budgets)
        self.reserved = [0] * len(self.budgets)
        self._sync(range(len(self.budgets)))

    # -- what tests and stats read ---------------------------------------------------------------

    @property
    def open_records(self) -> int:
        """Events counted one by one (unacknowledged, at most ``max_open``)."""
        return len(self._open)

    @property
    def reservations(self) -> int:
        """Calls whose worst case is reserved, not yet settled."""
        return len(self._reservations)

    @property
    def held_buckets(self) -> int:
        """Buckets of folded spend (at most `MAX_HELD`)."""
        return len(self._held)

    def sums(self) -> int:
        """Per-cover sums kept for acknowledged and held spend."""
        return (len(self._acked) + len(self._sealed)
                + sum(len(bucket.sums) for bucket in self._held))


def attribution(call: Mapping[str, Any]) -> Key:
    """The attribution tuple of a call mapping (project, job, user, model, tags)."""
    tags = call.get("tags")
    return (call.get("project"), call.get("job"), call.get("user"), call.get("model"),
            tuple(tags.items()) if tags else ())
