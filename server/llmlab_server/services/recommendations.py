"""Savings recommendations from a project's recent spend, each with dollars saved per month.

Everything is measured over a window of whole UTC hours (``days`` long, ending at the next
full hour) and extrapolated to a 30-day month: ``monthly = saving_in_window x 30 / days``.

* ``cheaper_model`` — for each model used, the cheapest model of the *same provider* with the
  same or a higher capability tier, priced on the project's actual token mix (uncached input,
  cache reads, cache writes, output, from the hourly rollups). The tier comes from the name
  family (`tier_of`: opus > sonnet > haiku; pro > flash > flash-lite; gpt-4/4o/4.1/5 and o1/o3
  > -mini > -nano; large > medium > small), and a candidate must also keep every capability
  the model has (tools, vision, audio, PDF), match its reasoning-or-not (a reasoning model bills
  hidden tokens, which would break the token mix), fit the largest prompt and completion seen,
  be a plain alias (no dated snapshot, preview or fine-tune) and not be deprecated. The saving
  is ``actual cost x (1 - candidate price / current price)`` on the mix.
* ``prompt_caching`` — long prompts (≥ 1,024 input tokens per call on average, ≥ 20 calls)
  with few cache reads (< 20 % of input) on a model whose cache-read price is lower: assumes
  half of the uncached input is a repeated prefix (system prompt, documents), read from cache,
  minus the cache-write premium where the provider charges one (one write per ten reads).
* ``batch_api`` — jobs (``job_id``, else ``function``) whose calls are tagged
  ``interactive=false`` or ``batchable`` (high confidence), or that ran ≥ 20 calls, 80 % of
  them outside business hours (Mon-Fri 08:00-18:00 UTC; low confidence): the catalogue's batch
  rates (half price where it has none) on the job's token mix.
* ``failed_calls`` — money spent on calls whose status is ``error`` (billed tokens of calls
  that produced nothing usable; retries of them are ordinary calls the events cannot tell
  apart).
* ``output_cap`` — output that runs long: for each model with ≥ 50 successful (``ok``) calls,
  when the mean of the longest tenth of completions is over 3x the median, suggest capping
  ``max_tokens`` at the 95th percentile of output tokens (the 90th when the 95th is itself
  over 3x the median; none when the 90th is — long outputs are then normal), rounded up to a
  hundred. Saving: ``Σ max(0, output_tokens - cap)`` over the window's successful calls at the
  model's catalogue output rate (``output_tokens`` includes reasoning tokens, which the cap
  also limits), at least $0.05 a month. The percentiles come from the ``output_tokens`` of
  the model's most recent ``OUTPUT_SAMPLE`` successful calls (one column, a bounded query on
  the (project, model, time) index, sorted in Python, so SQLite and PostgreSQL agree); the
  count, maximum and excess over the cap are exact SQL aggregates over every call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy.orm import Session

from llmlab.pricing import Catalogue
from llmlab.pricing._rates import ModelPrice, RateCard
from llmlab_server.budget_schemas import Evidence, Recommendation, Recommendations
from llmlab_server.models import utcnow
from llmlab_server.services.recommendation_reads import (
    OUTPUT_SAMPLE,
    Mix,
    failed_calls,
    job_stats,
    model_stats,
    ok_stats,
    output_sample,
    over_cap,
)
from llmlab_server.services.summaries import usd

__all__ = ["OUTPUT_SAMPLE", "Mix", "cheaper_model", "output_cap", "percentile", "price_mix",
           "recommend", "tier_of", "top_decile_mean"]

_CENT = Decimal("0.01")
_NANO = Decimal(1).scaleb(-9)
#: Capabilities a replacement must keep.
_KEEP = frozenset({"tools", "vision", "audio_input", "audio_output", "pdf_input"})
_CHAT = ("chat", "responses")
#: Successful calls per model whose output tokens are read to find the percentiles.
_CAP_MIN_MONTHLY = Decimal("0.05")
NOTES = [
    "Retries are not identified separately: events carry no retry marker; billed failed calls "
    "are reported as failed_calls.",
]

_DATED = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4})$")
_OPENAI = re.compile(r"^(?:gpt-(?P<gen>\d(?:\.\d)?)(?P<o>o)?|(?P<oseries>o\d))"
                     r"(?:-(?P<size>mini|nano|turbo))?$")
_CLAUDE = re.compile(r"^claude-(?:(?P<a>opus|sonnet|haiku)-[\d.-]*\d|[\d.-]*\d-(?P<b>opus|sonnet|haiku))$")
_GEMINI = re.compile(r"^gemini-[\d.]+-(?P<size>pro|flash|flash-lite)$")
_MISTRAL = re.compile(r"^mistral-(?P<size>large|medium|small|tiny)(?:-latest)?$")


def tier_of(name: str) -> int | None:
    """Capability tier from the model's name family: 3 flagship … 0 tiny; None when unknown.

    >>> tier_of("gpt-4"), tier_of("gpt-4o-mini"), tier_of("claude-haiku-4-5")
    (3, 1, 1)
    """
    base = _DATED.sub("", name.rsplit("/", 1)[-1])
    if m := _OPENAI.match(base):
        if m.group("gen") and m.group("gen").startswith("3"):
            return 1  # gpt-3.5-turbo: succeeded by the -mini models
        return {"mini": 1, "nano": 0}.get(m.group("size") or "", 3)
    if m := _CLAUDE.match(base):
        return {"opus": 3, "sonnet": 2, "haiku": 1}[m.group("a") or m.group("b")]
    if m := _GEMINI.match(base):
        return {"pro": 3, "flash": 2, "flash-lite": 1}[m.group("size")]
    if m := _MISTRAL.match(base):
        return {"large": 3, "medium": 2, "small": 1, "tiny": 0}[m.group("size")]
    return None


def _card(entry: ModelPrice, mix: Mix, tier: str = "standard") -> RateCard:
    return entry.period_at(None).card(tier, mix.avg_prompt)


def price_mix(card: RateCard, mix: Mix) -> Decimal:
    """USD of ``mix`` at ``card``'s rates."""
    uncached = max(mix.input - mix.cache_read - mix.cache_write, 0)
    return (uncached * card.input + mix.cache_read * card.cache_read
            + mix.cache_write * card.cache_write + mix.output * card.output)


def _deprecated(entry: ModelPrice, today: date) -> bool:
    if not entry.deprecation_date:
        return False
    try:
        return date.fromisoformat(entry.deprecation_date[:10]) <= today
    except ValueError:
        return False


def _alias(entry: ModelPrice) -> bool:
    return _DATED.search(entry.name) is None and tier_of(entry.name) is not None


def cheaper_model(catalogue: Catalogue, entry: ModelPrice, mix: Mix, max_prompt: int,
                  max_output: int, today: date) -> tuple[ModelPrice, Decimal] | None:
    """The cheapest acceptable replacement of ``entry`` on ``mix`` and its price ratio."""
    tier = tier_of(entry.name)
    if tier is None or entry.mode not in _CHAT:
        return None
    current = price_mix(_card(entry, mix), mix)
    if current <= 0:
        return None
    keep = entry.supports & _KEEP
    reasoning = "reasoning" in entry.supports
    best: tuple[ModelPrice, Decimal] | None = None
    for cand in catalogue.models.values():
        if (cand.provider != entry.provider or cand.key == entry.key or cand.mode not in _CHAT
                or not _alias(cand) or (tier_of(cand.name) or -1) < tier
                or not keep <= cand.supports or ("reasoning" in cand.supports) != reasoning
                or _deprecated(cand, today)
                or (cand.max_input_tokens is not None and cand.max_input_tokens < max_prompt)
                or (cand.max_output_tokens is not None and cand.max_output_tokens < max_output)):
            continue
        ratio = price_mix(_card(cand, mix), mix) / current
        if best is None or ratio < best[1] or (ratio == best[1] and cand.name < best[0].name):
            best = (cand, ratio)
    return best


def percentile(ordered: Sequence[int], pct: int) -> int:
    """Nearest-rank ``pct``-th percentile (1-100) of the non-empty ascending ``ordered``.

    >>> percentile([10, 20, 30, 40], 50), percentile([10, 20, 30, 40], 95)
    (20, 40)
    """
    return ordered[max(-(-len(ordered) * pct // 100) - 1, 0)]


def top_decile_mean(ordered: Sequence[int]) -> Decimal:
    """Mean of the largest tenth (rounded up) of the non-empty ascending ``ordered``."""
    top = ordered[len(ordered) * 9 // 10:]
    return Decimal(sum(top)) / len(top)


def output_cap(ordered: Sequence[int]) -> int | None:
    """The suggested output cap for ascending output token counts; None when output is not long.

    Long means the mean of the top tenth exceeds 3x the median. The cap is the 95th percentile,
    or the 90th when the 95th is also over 3x the median, rounded up to a multiple of 100; None
    when the 90th is over 3x the median (long completions are then a tenth or more of the calls).
    """
    if not ordered:
        return None
    median = percentile(ordered, 50)
    if top_decile_mean(ordered) <= 3 * median:
        return None
    p90, p95 = percentile(ordered, 90), percentile(ordered, 95)
    if p90 > 3 * median:
        return None
    cap = -(-(p95 if p95 <= 3 * median else p90) // 100) * 100
    return max(cap, 100)


# -- queries -----------------------------------------------------------------------------------

# -- assembling --------------------------------------------------------------------------------

def _usd(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def recommend(session: Session, ids: Sequence[int], *, days: int = 30,
              now: datetime | None = None, catalogue: Catalogue | None = None
              ) -> Recommendations:
    """Recommendations for the projects ``ids`` over the last ``days`` days."""
    now = now or utcnow()
    catalogue = catalogue or Catalogue.default()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(days=days)
    monthly = Decimal(30) / Decimal(days)
    period = {"start": start.isoformat(), "end": end.isoformat(), "days": days}
    recs: list[Recommendation] = []

    def add(kind: str, project_id: int, title: str, detail: str, saving_usd: Decimal,
            confidence: str, model: str | None, provider: str | None, calls: int, cost: int,
            mix: Mix, details: dict[str, Any]) -> None:
        per_month = saving_usd * monthly
        if per_month < _CENT:
            return
        recs.append(Recommendation(
            kind=kind, project_id=project_id, title=title, detail=detail,  # type: ignore[arg-type]
            monthly_savings=_usd(per_month), confidence=confidence,  # type: ignore[arg-type]
            evidence=Evidence(model=model, provider=provider, calls=calls, cost=usd(cost),
                              tokens=mix.wire(), period=period, details=details)))

    today = now.date()
    for s in model_stats(session, ids, start, end):
        entry = catalogue.resolve(s.model, s.provider)
        if entry is None or not s.mix.calls or s.cost <= 0:
            continue
        actual = Decimal(s.cost) * _NANO
        found = cheaper_model(catalogue, entry, s.mix, s.max_prompt, s.max_output, today)
        if found is not None and found[1] <= Decimal("0.9"):
            cand, ratio = found
            same = tier_of(cand.name) == tier_of(entry.name)
            confidence = ("high" if s.mix.calls >= 100 and same else
                          "medium" if s.mix.calls >= 20 else "low")
            saving = actual * (1 - ratio)
            add("cheaper_model", s.project_id, f"Switch {s.model} to {cand.name}",
                f"{cand.name} ({cand.provider}) is in the same capability tier as {s.model}, "
                f"keeps its capabilities and fits the largest prompt seen ({s.max_prompt:,} "
                f"tokens); on this project's token mix it costs {ratio:.1%} as much. Check "
                "quality on your own prompts before switching.",
                saving, confidence, s.model, s.provider, s.mix.calls, s.cost, s.mix,
                {"suggested_model": cand.name, "price_ratio": f"{ratio:.4f}",
                 "current_tier": tier_of(entry.name), "suggested_tier": tier_of(cand.name),
                 "deprecated_since": entry.deprecation_date
                 if _deprecated(entry, today) else None})
        card = _card(entry, s.mix)
        mix = s.mix
        if ("prompt_caching" in entry.supports and card.cache_read < card.input
                and mix.calls >= 20 and mix.avg_prompt >= 1024
                and mix.cache_read * 5 < mix.input):
            uncached = max(mix.input - mix.cache_read - mix.cache_write, 0)
            cacheable = Decimal(uncached) / 2
            saving = cacheable * (card.input - card.cache_read)
            if card.cache_write > card.input:
                saving -= cacheable / 10 * (card.cache_write - card.input)
            if saving > 0:
                add("prompt_caching", s.project_id, f"Use prompt caching for {s.model}",
                    f"Prompts average {mix.avg_prompt:,} input tokens over {mix.calls:,} calls "
                    f"but only {mix.cache_read / mix.input:.0%} are cache reads. Cached input "
                    f"costs ${card.cache_read * 1_000_000:.4f}/M instead of "
                    f"${card.input * 1_000_000:.4f}/M; the estimate assumes half the uncached "
                    "input is a repeated prefix (put stable content first).",
                    saving, "medium" if mix.avg_prompt >= 4096 else "low", s.model, s.provider,
                    mix.calls, s.cost, mix,
                    {"cache_read_share": f"{mix.cache_read / mix.input:.4f}",
                     "input_per_million": str(card.input * 1_000_000),
                     "cache_read_per_million": str(card.cache_read * 1_000_000)})

    for (pid, job, provider, model, calls, cost, inp, out, cread, cwrite, tagged,
         off) in job_stats(session, ids, start, end):
        entry = catalogue.resolve(model, provider)
        if entry is None or not calls or not cost:
            continue
        mix = Mix(int(calls), int(inp), int(out), int(cread), int(cwrite))
        is_tagged = int(tagged) * 2 > int(calls)
        observed = int(calls) >= 20 and int(off) * 5 >= int(calls) * 4
        if not (is_tagged or observed):
            continue
        standard = price_mix(_card(entry, mix), mix)
        if standard <= 0:
            continue
        ratio = price_mix(_card(entry, mix, "batch"), mix) / standard
        saving = Decimal(int(cost)) * _NANO * (1 - ratio)
        reason = ("its calls are tagged interactive=false or batchable" if is_tagged else
                  f"{int(off) / int(calls):.0%} of its {int(calls):,} calls ran outside "
                  "business hours (Mon-Fri 08:00-18:00 UTC)")
        add("batch_api", pid, f"Run job {job!r} through the {provider} Batch API",
            f"Job {job!r} on {model} looks non-interactive: {reason}. Batch requests cost "
            f"{ratio:.0%} of the standard price and complete within 24 hours.",
            saving, "high" if is_tagged else ("medium" if int(off) * 20 >= int(calls) * 19
                                             and int(calls) >= 100 else "low"),
            model, provider, int(calls), int(cost), mix,
            {"job": job, "tagged_calls": int(tagged), "off_hours_calls": int(off),
             "batch_price_ratio": f"{ratio:.4f}"})

    for (pid, provider, model, calls, cost, inp, out, cread, cwrite, reasoning,
         longest) in ok_stats(session, ids, start, end):
        entry = catalogue.resolve(model, provider)
        if entry is None:
            continue
        mix = Mix(int(calls), int(inp), int(out), int(cread), int(cwrite))
        card = _card(entry, mix)
        sample = output_sample(session, pid, provider, model, start, end)
        cap = output_cap(sample)
        if cap is None or card.output <= 0:
            continue
        truncated, excess = over_cap(session, pid, provider, model, start, end, cap)
        saving = excess * card.output
        if saving * monthly < _CAP_MIN_MONTHLY:
            continue
        median, p90, p95 = (percentile(sample, q) for q in (50, 90, 95))
        add("output_cap", pid, f"Cap {model} output at {cap:,} tokens",
            f"Half of the {int(calls):,} successful {model} calls produce at most {median:,} "
            f"output tokens and 95 % at most {p95:,}, but the longest reach {int(longest):,}. "
            f"Setting max_tokens (max_completion_tokens / max_output_tokens) to {cap:,} would "
            f"have cut {excess:,} output tokens from {truncated:,} calls. A cap truncates the "
            "answer rather than shortening it, and reasoning tokens count against it too (a "
            "reasoning model may then return little or no visible text): check that those long "
            "completions are runaway output, or ask for brevity in the prompt instead.",
            saving, "medium" if int(calls) >= 500 else "low", model, provider, int(calls),
            int(cost), mix,
            {"suggested_max_tokens": cap, "median_output_tokens": median,
             "p90_output_tokens": p90, "p95_output_tokens": p95,
             "max_output_tokens": int(longest),
             "top_decile_mean_output_tokens": round(top_decile_mean(sample)),
             "calls_over_cap": truncated, "excess_output_tokens": excess,
             "reasoning_tokens": int(reasoning), "sampled_calls": len(sample),
             "output_per_million": str(card.output * 1_000_000)})

    for pid, provider, model, calls, cost, inp, out in failed_calls(session, ids, start, end):
        mix = Mix(int(calls), int(inp), int(out), 0, 0)
        add("failed_calls", pid, f"Stop paying for failed {model} calls",
            f"{int(calls):,} calls to {model} ended in an error but were billed "
            f"${usd(int(cost))} in the window. Validate inputs before calling, fix the "
            "failing prompts, and cap retries with backoff.",
            Decimal(int(cost)) * _NANO, "high" if int(calls) >= 20 else "medium", model,
            provider, int(calls), int(cost), mix, {"status": "error"})

    recs.sort(key=lambda r: (-Decimal(r.monthly_savings), r.kind, r.title))
    return Recommendations(start=start, end=end, days=days, recommendations=recs,
                           notes=list(NOTES))
