"""A month of the demo shop's LLM traffic, so ``llmlab demo`` shows trends, not one minute.

The live sample app of `llmlab_server.demo` makes about sixty calls in a few seconds; the
dashboard's trend, the budget forecast and the recommendations need weeks. `generate` builds
the same shop's last `DAYS` days (ending at ``now``), deterministic for a seed and a ``now``:

* a weekday rhythm: weekdays busier than weekends, a business-hours peak (UTC), 60 customers
  of whom a few are much more active than the rest;
* support chat on gpt-3.5-turbo until gpt-4o-mini is rolled out (`ADOPTION_DAY` and the day
  after), with a few runaway long answers and some failed calls;
* ticket triage on claude-sonnet-4-5 behind a cached 6,000-token policy prompt, written with
  the one-hour cache lifetime by a call after an hour's pause and read by the others;
* review digests on gemini-2.5-flash (thinking tokens), a weekday trend report on gemini-2.5-pro;
* nightly reports on gpt-4o at 02:00 and a catalogue reindex with text-embedding-3-small at
  03:00 UTC (nobody waits for them: Batch API candidates);
* a research agent on gpt-4o, a few runs a weekday, which loops for an afternoon on
  `History.spike_day` (the spike) until the provider rate-limits it.

Every event is priced by the cost engine (`llmlab.cost`, at its own timestamp) as the SDK
prices it, and stored by `backfill` through the server's ingest (`services.ingest.ingest`), so
events and hourly rollups agree as they do for SDK traffic. No dollar amount is written here:
token counts go in, prices come from the catalogue.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

import llmlab
from llmlab.pricing import money
from llmlab.usage import Usage
from llmlab_server.models import Project
from llmlab_server.services.ingest import ingest

__all__ = ["ADOPTION_DAY", "DAYS", "DEFAULT_SEED", "History", "backfill", "backfill_project",
           "generate"]

DAYS = 30
DEFAULT_SEED = 2026
#: The day (0 = the oldest) support chat starts moving from gpt-3.5-turbo to gpt-4o-mini.
ADOPTION_DAY = 15
#: Share of the chats on the new model on the adoption day and the day after (then all).
_ROLLOUT = (0.35, 0.75)
#: Events per ingest call: the SDK worker's batch size, one transaction each.
_BATCH = 500
#: Relative traffic per UTC hour: quiet nights, a peak in business hours.
_HOURLY = (0.15, 0.1, 0.1, 0.1, 0.1, 0.15, 0.25, 0.45, 0.8, 1.0, 1.15, 1.2,
           1.0, 1.05, 1.2, 1.15, 1.0, 0.85, 0.6, 0.5, 0.45, 0.4, 0.3, 0.2)
#: Staff-driven work (digests, agent runs) happens in office hours only.
_OFFICE = tuple(1.0 if 8 <= hour < 18 else 0.0 for hour in range(24))
#: Relative traffic per weekday, Monday first.
_DAILY = (1.05, 1.0, 1.0, 0.95, 0.85, 0.35, 0.3)
_CUSTOMERS = 60
_POLICY_TOKENS = 6000  # the triage system prompt, as in the live app
_SECTIONS = ("sales", "returns", "inventory", "marketing", "support", "outlook")
#: Error types of a failed call per provider: (cut off after billing, refused up front).
_ERRORS = {"openai": ("APITimeoutError", "RateLimitError"),
           "anthropic": ("APIConnectionError", "OverloadedError"),
           "google": ("ServerError", "ClientError")}
#: Milliseconds per output token: how long an answer takes, by model size.
_MS_PER_TOKEN = {"gpt-4o": 14.0, "claude-sonnet-4-5": 16.0, "gemini-2.5-pro": 12.0}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SDK = {"name": "llmlab-python", "version": llmlab.__version__}


@dataclass(frozen=True, slots=True)
class History:
    """Generated events (wire dicts, oldest first) and what the engine says they cost."""

    start: datetime  #: midnight UTC of the oldest day
    end: datetime  #: the ``now`` it ends at (UTC): every event is before it
    events: list[dict[str, Any]]
    total: Decimal
    spike_day: int  #: the day (0 = the oldest) the research agent ran away


class _Shop:
    """The generator: a seeded random source and the events made so far."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.events: list[dict[str, Any]] = []
        self.total = Decimal(0)
        self.ticket = 3000
        self.cache_until: datetime | None = None  # when triage's cached prompt expires
        # Customer k is about k times less active than customer 1.
        self.customers = [f"cust-{k}" for k in range(1, _CUSTOMERS + 1)]
        self.cum_weights = list(itertools.accumulate(1 / k for k in range(1, _CUSTOMERS + 1)))

    # -- randomness ------------------------------------------------------------------------

    def count(self, mean: float) -> int:
        """``mean`` as a whole count, rounded up with the probability of its fraction."""
        whole = int(mean)
        return whole + (self.rng.random() < mean - whole)

    def arrivals(self, day: datetime, per_weekday: float,
                 hourly: Sequence[float] = _HOURLY) -> list[datetime]:
        """Call times of one day: ``per_weekday`` scaled by the weekday, spread by ``hourly``."""
        scale = (per_weekday * _DAILY[day.weekday()] * self.rng.uniform(0.85, 1.15)
                 / sum(hourly))
        return sorted(day + timedelta(hours=hour, milliseconds=self.rng.randrange(3_600_000))
                      for hour, weight in enumerate(hourly)
                      for _ in range(self.count(scale * weight)))

    def customer(self) -> str:
        """A customer id, the active ones more often."""
        return self.rng.choices(self.customers, cum_weights=self.cum_weights)[0]

    def answer(self, median: int, runaway: float = 0.0) -> int:
        """Output tokens around ``median``; a ``runaway`` share rambles on for thousands."""
        if self.rng.random() < runaway:
            return self.rng.randint(2000, 4000)
        return max(20, round(self.rng.lognormvariate(math.log(median), 0.35)))

    # -- one call --------------------------------------------------------------------------

    def call(self, when: datetime, provider: str, model: str, usage: Usage, *,
             operation: str, feature: str, fail: float = 0.0, stream: bool = False,
             **attribution: str) -> float:
        """Price and record one call made at ``when`` (unless it is not yet ``now``); its
        latency in milliseconds. A ``fail`` share of calls end in an error: half of those
        after the prompt was billed (a stream cut off), half refused before any token."""
        status, error_type = "ok", None
        if self.rng.random() < fail:
            billed, refused = _ERRORS[provider]
            status = "error"
            if self.rng.random() < 0.5:
                error_type, cut = billed, usage.output_tokens // 4
                usage = dataclasses.replace(usage, output_tokens=cut,
                                            reasoning_tokens=min(usage.reasoning_tokens, cut))
            else:
                error_type, usage = refused, Usage()
        latency = round(self.rng.uniform(250, 600) + usage.input_tokens * 0.02
                        + usage.output_tokens * _MS_PER_TOKEN.get(model, 8.0), 1)
        ttfb = round(self.rng.uniform(150, 450), 1)
        event_id = self.event_id(when)
        # Calls after ``now`` draw the same random numbers as the others: a later ``now``
        # only adds calls, it does not change those already made.
        if when >= self.now:
            return latency
        breakdown = llmlab.cost(model, usage, provider, at=when)
        self.total += breakdown.total
        cost: dict[str, Any] = {"total": money(breakdown.total), "currency": "USD",
                                "priced": breakdown.priced,
                                "pricing_version": breakdown.pricing_version}
        for part in ("input", "cache_read", "cache_write", "output", "reasoning"):
            cost[part] = money(getattr(breakdown, part))
        event: dict[str, Any] = {
            "schema_version": 1, "id": event_id,
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "provider": provider, "model": model, "operation": operation,
            "usage": usage.to_sparse_dict(), "cost": cost, "latency_ms": latency,
            "stream": stream, "status": status, "tags": {"feature": feature},
            "environment": "prod", "sdk": _SDK, **attribution}
        if stream:
            event["ttfb_ms"] = ttfb
        if error_type:
            event["error_type"] = error_type
        self.events.append(event)
        return latency

    def event_id(self, when: datetime) -> str:
        """A version-7 UUID of ``when`` (as `llmlab.schema.new_event_id` makes them), with
        seeded random bits so a seed always gives the same ids."""
        ms = (when - _EPOCH) // timedelta(milliseconds=1)
        h = f"{ms:012x}{self.rng.getrandbits(76):019x}"
        return f"{h[:8]}-{h[8:12]}-7{h[12:15]}-{'89ab'[int(h[15], 16) & 3]}{h[16:19]}-{h[19:31]}"

    # -- the shop's features ---------------------------------------------------------------

    def support_chat(self, index: int, day: datetime) -> None:
        """Interactive answers; the model moves to gpt-4o-mini from `ADOPTION_DAY`."""
        step = index - ADOPTION_DAY
        share = 0.0 if step < 0 else _ROLLOUT[step] if step < len(_ROLLOUT) else 1.0
        for when in self.arrivals(day, 170):
            new = self.rng.random() < share
            prompt = self.rng.randint(1200, 2400)
            # OpenAI caches prompt prefixes of 1,024 tokens and more, in 128-token steps, by
            # itself for gpt-4o-mini; gpt-3.5-turbo has no prompt caching.
            cached = (1024 + 128 * self.rng.randint(0, (prompt - 1024) // 128)
                      if new and self.rng.random() < 0.6 else 0)
            usage = Usage(prompt, self.answer(320, runaway=0.04), cache_read_tokens=cached)
            self.call(when, "openai", "gpt-4o-mini" if new else "gpt-3.5-turbo", usage,
                      operation="chat.completions", feature="support-chat", fail=0.015,
                      stream=self.rng.random() < 0.5, user_id=self.customer())

    def triage(self, day: datetime) -> None:
        """Tickets of one to three calls each, behind a cached policy prompt."""
        calls: list[tuple[datetime, str, str]] = []
        for opened in self.arrivals(day, 55):
            self.ticket += 1
            user = self.customer()
            for step in range(self.rng.choices((1, 2, 3), (50, 35, 15))[0]):
                calls.append((opened + timedelta(seconds=40 * step + self.rng.randint(0, 30)),
                              f"ticket-{self.ticket}", user))
        for when, job, user in sorted(calls):
            # Tickets arrive minutes apart, more than the default five-minute cache lifetime,
            # so the shop writes the prompt with the one-hour lifetime; a use extends it.
            fresh = self.cache_until is None or when > self.cache_until
            self.cache_until = when + timedelta(hours=1)
            prompt = _POLICY_TOKENS + self.rng.randint(150, 600)
            cache: dict[str, Any] = ({"cache_write_1h_tokens": _POLICY_TOKENS} if fresh
                                     else {"cache_read_tokens": _POLICY_TOKENS})
            stream = self.rng.random() < 0.2
            self.call(when, "anthropic", "claude-sonnet-4-5",
                      Usage(prompt, self.rng.randint(300, 700), **cache),
                      operation="messages.stream" if stream else "messages", feature="triage",
                      fail=0.01, stream=stream, job_id=job, user_id=user)

    def summaries(self, day: datetime) -> None:
        """Review digests with thinking tokens; a trend report on weekday mornings."""
        for n, when in enumerate(self.arrivals(day, 40, _OFFICE)):
            thinking = self.rng.randint(300, 800)
            usage = Usage(self.rng.randint(6000, 10000), thinking + self.rng.randint(300, 600),
                          reasoning_tokens=thinking)
            self.call(when, "google", "gemini-2.5-flash", usage, operation="generate_content",
                      feature="summaries", fail=0.01, stream=n % 3 == 0, job_id="review-digest",
                      function="shop.reviews.summarise")
        if day.weekday() < 5:
            thinking = self.rng.randint(1000, 2000)
            usage = Usage(self.rng.randint(25000, 35000), thinking + self.rng.randint(1000, 1500),
                          reasoning_tokens=thinking)
            self.call(day + timedelta(hours=9, seconds=self.rng.randrange(1800)), "google",
                      "gemini-2.5-pro", usage, operation="generate_content",
                      feature="summaries", job_id="review-digest", function="shop.reviews.trends")

    def nightly(self, day: datetime) -> None:
        """Long reports at 02:00 and the catalogue's embeddings at 03:00, one after another."""
        when = day + timedelta(hours=2, seconds=self.rng.randrange(300))
        for _section in _SECTIONS:
            usage = Usage(self.rng.randint(11000, 13000), self.rng.randint(3000, 3900))
            latency = self.call(when, "openai", "gpt-4o", usage, operation="chat.completions",
                                feature="reports", job_id="nightly-report",
                                function="shop.reports.nightly_report")
            when += timedelta(milliseconds=latency + self.rng.randint(200, 900))
        when = day + timedelta(hours=3, seconds=self.rng.randrange(300))
        for _batch in range(16):
            latency = self.call(when, "openai", "text-embedding-3-small",
                                Usage(self.rng.randint(5000, 7000), 0), operation="embeddings",
                                feature="search", job_id="reindex-catalogue")
            when += timedelta(milliseconds=latency + self.rng.randint(50, 300))

    def agent(self, day: datetime, spike: bool) -> None:
        """A few research-agent runs a weekday; on the spike day one loops for hours."""
        if day.weekday() < 5:
            for start in self.arrivals(day, 3, _OFFICE):
                self.agent_run(start, self.rng.randint(3, 6))
        if spike:
            self.agent_run(day + timedelta(hours=13, minutes=7), 180, runaway=True)

    def agent_run(self, when: datetime, steps: int, runaway: bool = False) -> None:
        """One agent run: each step's answer joins the next step's prompt."""
        context = 1500
        for step in range(steps):
            usage = Usage(context, self.rng.randint(1200, 1990))
            # The loop that never ends ends up rate-limited.
            latency = self.call(when, "openai", "gpt-4o", usage, operation="chat.completions",
                                feature="agent", fail=0.25 if runaway and step >= 120 else 0.0,
                                job_id="research-agent", function="shop.agent.research")
            context = min(context + usage.output_tokens + self.rng.randint(200, 800), 30_000)
            when += timedelta(milliseconds=latency + self.rng.randint(500, 3000))


def generate(now: datetime, *, seed: int = DEFAULT_SEED, days: int = DAYS) -> History:
    """The shop's last ``days`` days of events before ``now`` (an aware time), oldest first."""
    now = now.astimezone(UTC)
    start = datetime.combine(now.date() - timedelta(days=days - 1), time(0), UTC)
    # The agent runs away on the last weekday at least eight days before today.
    spike = max(i for i in range(days - 8) if (start + timedelta(days=i)).weekday() < 5)
    shop = _Shop(random.Random(seed), now)
    for index in range(days):
        day = start + timedelta(days=index)
        shop.support_chat(index, day)
        shop.triage(day)
        shop.summaries(day)
        shop.nightly(day)
        shop.agent(day, index == spike)
    shop.events.sort(key=lambda event: event["timestamp"])
    return History(start, now, shop.events, shop.total, spike)


def backfill(session: Session, project: Project, *, now: datetime | None = None,
             seed: int = DEFAULT_SEED, days: int = DAYS) -> History:
    """`generate` the history and store it in ``project`` through the server's ingest."""
    history = generate(now or datetime.now(UTC), seed=seed, days=days)
    for first in range(0, len(history.events), _BATCH):
        result = ingest(session, project, history.events[first:first + _BATCH])
        for item in result.results:
            if item.status == "rejected":  # a bug here: say which event and why
                raise ValueError(f"the server rejected demo event {item.id}: {item.error}")
    return history


def backfill_project(app: Flask, project_id: int, *, now: datetime | None = None,
                     seed: int = DEFAULT_SEED, days: int = DAYS) -> History:
    """`backfill` project ``project_id`` in ``app``'s database (what ``llmlab demo`` runs)."""
    with app.extensions["llmlab_db"][1]() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise LookupError(f"no project {project_id}")
        return backfill(session, project, now=now, seed=seed, days=days)
