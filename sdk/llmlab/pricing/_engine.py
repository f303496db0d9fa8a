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

    ``total`` = ``input + cache_read + cache_write + output + reasoning + tools``, exactly;
    ``tools`` is the per-use fees of built-in tools (web search, file search, containers …).
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
    tools: Decimal = ZERO
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
    #: Tool kinds the call used that no price covers (billed here as zero).
    unpriced_tools: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """The event's ``cost`` object: money as strings (DESIGN.md wire format); ``tools``
        only when non-zero, so servers older than it still take the event."""
        wire = {
            "input": money(self.input), "cache_read": money(self.cache_read),
            "cache_write": money(self.cache_write), "output": money(self.output),
            "reasoning": money(self.reasoning), "total": money(self.total),
            "currency": self.currency, "priced": self.priced,
            "pricing_version": self.pricing_version,
        }
        if self.tools:
            wire["tools"] = money(self.tools)
        return wire


def compute(card: RateCard, u: Usage, multiplier: Decimal, model: str, provider: str | None,
            pricing_version: str | None, priced_as: str | None,
            tools: Decimal = ZERO, unpriced_tools: tuple[str, ...] = ()) -> CostBreakdown:
    """Price usage ``u`` with ``card``, plus ``tools`` (the call's tool fees, priced by the
    catalogue); every component is scaled by ``multiplier``."""
    # The hot path of every call: zero counts are skipped (most calls use two or three of the
    # ten components) and the subset arithmetic of Usage is inlined.
    cache_read_tokens = u.cache_read_tokens
    cache_write_tokens = u.cache_write_tokens
    cache_long_tokens = u.cache_write_1h_tokens
    audio_in, image_in = u.audio_input_tokens, u.image_input_tokens
    reasoning_tokens, audio_out, image_out = (u.reasoning_tokens, u.audio_output_tokens,
                                              u.image_output_tokens)
    inp = (u.input_tokens - cache_read_tokens - cache_write_tokens - cache_long_tokens - audio_in
           - image_in) * card.input
    if audio_in:
        inp += audio_in * card.audio_input
    if image_in:
        inp += image_in * card.image_input
    cache_read = cache_read_tokens * card.cache_read if cache_read_tokens else ZERO
    cache_write = cache_write_tokens * card.cache_write if cache_write_tokens else ZERO
    if cache_long_tokens:
        cache_write += cache_long_tokens * card.cache_write_long
    out = (u.output_tokens - reasoning_tokens - audio_out - image_out) * card.output
    if audio_out:
        out += audio_out * card.audio_output
    if image_out:
        out += image_out * card.image_output
    reasoning = reasoning_tokens * card.reasoning if reasoning_tokens else ZERO
    if multiplier != _ONE:
        inp, cache_read, cache_write, out, reasoning = (
            inp * multiplier, cache_read * multiplier, cache_write * multiplier,
            out * multiplier, reasoning * multiplier)
        if tools:
            tools = tools * multiplier
    total = inp + cache_read + cache_write + out + reasoning
    if tools:  # most calls use no built-in tool: no Decimal addition for them
        total += tools
    return CostBreakdown(model, provider, inp, cache_read, cache_write, out, reasoning, tools,
                         total, "USD", True, pricing_version, priced_as, card.service_tier,
                         card.threshold, multiplier, unpriced_tools)
