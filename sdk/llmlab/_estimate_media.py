"""Worst cases of what is not billed by prompt and output tokens alone (docs/budgets.md).

`llmlab._estimate.worst_case_cost` hands a request here when its model is an image, speech or
transcription model (its catalogue ``mode``), and for the built-in tool fees a request bounds.
Every figure is at or above what the call can be billed at list price; the assumptions are
the constants below:

- images: ``n`` (OpenAI, default 1) or ``number_of_images`` (Imagen, default 4, the API's
  default) images, each at the per-image price of the requested quality and size (the
  defaults when left out; the dearest matching price when ``auto`` or not priced). A
  token-billed model (gpt-image) also bounds each image by its output tokens:
  `IMAGE_TOKENS_PER_MEGAPIXEL` per 1024x1024 area by quality (about 1.5x the most OpenAI
  publishes; ``auto`` or unknown: high quality at 1536x1024), `PARTIAL_IMAGE_TOKENS` per
  streamed partial image, and for edits `INPUT_IMAGE_TOKENS` per input image and mask; the
  prompt counts one token per UTF-8 byte (a byte-level BPE token is at least one byte);
- speech: per-character models, the input's characters exactly; token-billed ones (gpt-4o-mini-tts)
  the input and instructions at one token per byte and `SPEECH_AUDIO_TOKENS_PER_CHAR` audio
  tokens per character, divided by ``speed`` (speech read at 2 characters a second, a
  seventh of a normal pace);
- transcription and translation: the audio's length is unknown before the call, so it is
  bounded by the file's size at `AUDIO_BITRATE_FLOOR` bits per second (Opus's lowest
  bitrate; every accepted format is at least this dense), the upload limit when the size
  cannot be read without consuming the file; per second at the ``audio_seconds`` price,
  token-billed at `AUDIO_TOKENS_PER_SECOND` audio input and `TRANSCRIPT_TOKENS_PER_SECOND`
  text output tokens, whichever is dearer;
- tool fees: Anthropic server tools with ``max_uses`` (that many uses), OpenAI Responses
  ``max_tool_calls`` (that many calls of the dearest priced tool requested). Unbounded
  requests add nothing (docs/budgets.md lists them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from llmlab.pricing._media_prices import AUDIO_SECONDS, IMAGE, SPEECH_CHARACTERS
from llmlab.pricing._rates import RateCard
from llmlab.pricing._tool_prices import ToolPrices, tool_cost

__all__ = ["AUDIO_BITRATE_FLOOR", "MEDIA_MODES", "audio_seconds_bound", "media_worst_case",
           "tool_fee_bound"]

MEDIA_MODES = frozenset({"image_generation", "audio_speech", "audio_transcription"})
#: Image output tokens per image of 1024x1024 pixels (scaled by area) by quality.
IMAGE_TOKENS_PER_MEGAPIXEL = {"low": 1_000, "medium": 2_000, "high": 6_300}
PARTIAL_IMAGE_TOKENS = 100
INPUT_IMAGE_TOKENS = 8_000
SPEECH_AUDIO_TOKENS_PER_CHAR = 11
AUDIO_BITRATE_FLOOR = 6_000
AUDIO_TOKENS_PER_SECOND = 50
TRANSCRIPT_TOKENS_PER_SECOND = 10
#: OpenAI's upload limit for audio files (25 MB).
MAX_AUDIO_BYTES = 25 * 1024 * 1024
_SQUARE = 1024 * 1024
_LARGEST_AUTO = 1536 * 1024
_ZERO = Decimal(0)
_IMAGEN_PROVIDERS = ("google", "vertex")
_DALL_E_QUALITY = "standard"
_DEFAULT_SIZE = "1024x1024"


def _int(value: Any, default: int) -> int:
    return value if type(value) is int and value > 0 else default


def _text(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def _bytes(value: Any) -> int:
    """Tokens bound of a text field: its UTF-8 bytes."""
    return len(value.encode()) if isinstance(value, str) else 0


def _image_price(prices: Mapping[str, Decimal], quality: str | None, size: str | None) -> Decimal:
    """The per-image price of ``quality`` and ``size`` (None: any), the dearest match."""
    if quality and size:
        exact = prices.get(f"{IMAGE}:{quality}:{size}")
        if exact is not None:
            return exact
    found = _ZERO
    fallback = _ZERO
    for key, price in prices.items():
        base, _, rest = key.partition(":")
        if base != IMAGE:
            continue
        fallback = max(fallback, price)
        q, _, s = rest.partition(":")
        if (not quality or not q or q == quality) and (not size or not s or s == size):
            found = max(found, price)
    return found or fallback


def _area(size: str | None) -> int:
    width, _, height = (size or "").partition("x")
    if width.isdigit() and height.isdigit():
        return max(int(width) * int(height), 1)
    return _LARGEST_AUTO


def _count(value: Any) -> int:
    if value is None:
        return 0
    return len(value) if isinstance(value, (list, tuple)) else 1


def _config(kwargs: Mapping[str, Any], name: str) -> Any:
    config = kwargs.get("config")
    return config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)


def _images(provider: str, card: RateCard, prices: Mapping[str, Decimal],
            kwargs: Mapping[str, Any]) -> Decimal:
    if provider in _IMAGEN_PROVIDERS:
        count = _int(_config(kwargs, "number_of_images"), 4)
    else:
        count = _int(kwargs.get("n"), 1)
    quality = _text(kwargs.get("quality"))
    size = _text(kwargs.get("size"))
    out_rate = max(card.output, card.image_output)
    if not out_rate:  # billed per image (DALL·E, Imagen): the defaults when left out
        if provider not in _IMAGEN_PROVIDERS:
            quality = _DALL_E_QUALITY if quality is None else quality
            size = _DEFAULT_SIZE if size is None else size
        quality = None if quality == "auto" else quality
        size = None if size == "auto" else size
        return count * _image_price(prices, quality, size)
    quality = None if quality == "auto" else quality
    size = None if size == "auto" else size
    tokens = IMAGE_TOKENS_PER_MEGAPIXEL.get(quality or "high", IMAGE_TOKENS_PER_MEGAPIXEL["high"])
    per_image = max(math.ceil(tokens * max(_area(size), _SQUARE) / _SQUARE) * out_rate,
                    _image_price(prices, quality, size))
    partial = _int(kwargs.get("partial_images"), 0) * PARTIAL_IMAGE_TOKENS * out_rate
    in_rate = max(card.input, card.cache_write, card.image_input)
    inputs = (_count(kwargs.get("image")) + _count(kwargs.get("mask"))) * INPUT_IMAGE_TOKENS
    prompt = _bytes(kwargs.get("prompt")) + 16
    return count * (per_image + partial) + prompt * in_rate + inputs * max(card.image_input,
                                                                           card.input)


def _speech(card: RateCard, prices: Mapping[str, Decimal], kwargs: Mapping[str, Any]) -> Decimal:
    text = kwargs.get("input")
    chars = len(text) if isinstance(text, str) else 0
    cost = chars * prices.get(SPEECH_CHARACTERS, _ZERO)
    out_rate = max(card.output, card.audio_output)
    if out_rate or card.input:
        speed = kwargs.get("speed")
        speed = speed if isinstance(speed, (int, float)) and speed > 0 else 1.0
        prompt = _bytes(text) + _bytes(kwargs.get("instructions")) + 16
        audio = math.ceil(chars * SPEECH_AUDIO_TOKENS_PER_CHAR / min(speed, 1.0))
        cost += prompt * max(card.input, card.cache_write) + audio * out_rate
    return cost


def file_size(value: Any) -> int:
    """The bytes an upload (``bytes``, a path, a file object or a ``(name, content, ...)``
    tuple) will send, read without consuming it; `MAX_AUDIO_BYTES` when unknown."""
    if isinstance(value, tuple) and len(value) >= 2:
        value = value[1]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    try:
        if isinstance(value, (str, os.PathLike)):
            return os.stat(value).st_size
        tell, seek = value.tell, value.seek
        position = tell()
        end = seek(0, os.SEEK_END)
        seek(position)
        return max(int(end) - int(position), 0)
    except Exception:  # not seekable, closed, or not a file at all
        return MAX_AUDIO_BYTES


def audio_seconds_bound(file: Any) -> int:
    """The most seconds of audio ``file`` can hold (its size at `AUDIO_BITRATE_FLOOR`)."""
    return max(1, math.ceil(file_size(file) * 8 / AUDIO_BITRATE_FLOOR))


def _transcription(card: RateCard, prices: Mapping[str, Decimal],
                   kwargs: Mapping[str, Any]) -> Decimal:
    seconds = audio_seconds_bound(kwargs.get("file"))
    per_second = seconds * prices.get(AUDIO_SECONDS, _ZERO)
    tokens = ((_bytes(kwargs.get("prompt")) + 16) * card.input
              + seconds * AUDIO_TOKENS_PER_SECOND * max(card.audio_input, card.input)
              + seconds * TRANSCRIPT_TOKENS_PER_SECOND * card.output)
    return max(per_second, tokens)


def media_worst_case(mode: str, provider: str, card: RateCard, tools: ToolPrices | None,
                     kwargs: Mapping[str, Any]) -> Decimal:
    """The worst case of an image, speech or transcription request (before multipliers)."""
    prices: Mapping[str, Decimal] = tools.prices if tools is not None else {}
    if mode == "image_generation":
        return _images(provider, card, prices, kwargs)
    if mode == "audio_speech":
        return _speech(card, prices, kwargs)
    return _transcription(card, prices, kwargs)


#: Request tool ``type`` prefixes → the tool kind they are billed as.
_TOOL_KINDS = (("web_search", "web_search"), ("web_fetch", "web_fetch"),
               ("file_search", "file_search"), ("code_execution", "code_execution"))


def _kind(tool: Any) -> str | None:
    kind = tool.get("type") if isinstance(tool, Mapping) else None
    if isinstance(kind, str):
        for prefix, name in _TOOL_KINDS:
            if kind.startswith(prefix):
                return name
    return None


def tool_fee_bound(kwargs: Mapping[str, Any], model_tools: ToolPrices | None,
                   provider_tools: ToolPrices | None) -> Decimal:
    """The most the request's built-in tools can bill where it bounds their uses."""
    tools = kwargs.get("tools")
    if not isinstance(tools, (list, tuple)) or not tools:
        return _ZERO
    total = _ZERO
    unbounded: set[str] = set()
    for tool in tools:
        kind = _kind(tool)
        if kind is None:
            continue
        uses = _int(tool.get("max_uses"), 0)  # Anthropic server tools
        if uses:
            total += tool_cost({kind: uses}, model_tools, provider_tools)[0]
        else:
            unbounded.add(kind)
    calls = _int(kwargs.get("max_tool_calls"), 0)  # OpenAI Responses: all built-in tools
    if calls and unbounded:
        total += max(tool_cost({kind: calls}, model_tools, provider_tools)[0]
                     for kind in unbounded)
    return total
