"""The exact cost of one call: `CostBreakdown` and the arithmetic that fills it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llmlab.pricing._rates import RateCard
from llmlab.usage import Usage

__all__ = ["ZERO", "CostBreakdown", "compute", "money"]

ZERO = Decimal(0)
_ONE = Decimal(1)


def money(value: Decimal) -> str:
    """A Decimal amount as a plain wire string: no exponent, no trailing zeros (``"0.00475"``)."""
    if not value:
        return "0"
    return format(value.normalize(), "f")


# Not frozen: a frozen dataclass sets 15 fields through object.__setattr__, which alone
# would cost a third of a cost computation.
@dataclass(slots=True)
class CostBreakdown:
    """What one call cost, in USD, split by what was billed.

    ``total`` = ``input + cache_read + cache_write + output + reasoning``, exactly.
    ``priced`` is False when the model is not in the catalogue: every amount is then zero
    and the call must not be read as free.
    """

    model: str
    provider: str | None
    input: Decimal = ZERO
    cache_read: Decimal = ZERO
    cache_write: Decimal = ZERO
    output: Decimal = ZERO
    reasoning: Decimal = ZERO
    total: Decimal = ZERO
    currency: str = "USD"
    priced: bool = False
    pricing_version: str | None = None
    #: The catalogue entry used (``openai/gpt-4o``), None when unpriced.
    priced_as: str | None = None
    service_tier: str = "standard"
    #: The long-context threshold the prompt passed, 0 when none.
    long_context_threshold: int = 0
    #: Region multiplier times project markup, applied to every component.
    multiplier: Decimal = _ONE

    def to_wire(self) -> dict[str, Any]:
        """The event's ``cost`` object: money as strings (DESIGN.md wire format)."""
        return {
            "input": money(self.input), "cache_read": money(self.cache_read),
            "cache_write": money(self.cache_write), "output": money(self.output),
            "reasoning": money(self.reasoning), "total": money(self.total),
            "currency": self.currency, "priced": self.priced,
            "pricing_version": self.pricing_version,
        }


def compute(card: RateCard, usage: Usage, multiplier: Decimal, **identity: Any) -> CostBreakdown:
    """Price ``usage`` with ``card``; every component is scaled by ``multiplier``."""
    # Zero counts are skipped: most calls use two or three of the ten components.
    u = usage
    inp = u.uncached_input_tokens * card.input
    if u.audio_input_tokens:
        inp += u.audio_input_tokens * card.audio_input
    if u.image_input_tokens:
        inp += u.image_input_tokens * card.image_input
    cache_read = u.cache_read_tokens * card.cache_read if u.cache_read_tokens else ZERO
    cache_write = u.cache_write_tokens * card.cache_write if u.cache_write_tokens else ZERO
    if u.cache_write_1h_tokens:
        cache_write += u.cache_write_1h_tokens * card.cache_write_long
    out = u.text_output_tokens * card.output
    if u.audio_output_tokens:
        out += u.audio_output_tokens * card.audio_output
    if u.image_output_tokens:
        out += u.image_output_tokens * card.image_output
    reasoning = u.reasoning_tokens * card.reasoning if u.reasoning_tokens else ZERO
    if multiplier != _ONE:
        inp, cache_read, cache_write, out, reasoning = (
            inp * multiplier, cache_read * multiplier, cache_write * multiplier,
            out * multiplier, reasoning * multiplier)
    return CostBreakdown(
        input=inp, cache_read=cache_read, cache_write=cache_write, output=out,
        reasoning=reasoning, total=inp + cache_read + cache_write + out + reasoning,
        priced=True, service_tier=card.service_tier, long_context_threshold=card.threshold,
        multiplier=multiplier, **identity,
    )
