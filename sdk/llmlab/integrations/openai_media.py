"""OpenAI's non-chat endpoints: images and audio (the ``openai`` SDK, sync and async).

Patched: ``images.generate``, ``images.edit``, ``images.create_variation``,
``audio.speech.create``, ``audio.transcriptions.create``, ``audio.translations.create``.
What each call is billed (docs/pricing.md, "Images and audio"):

- images: gpt-image models by the response's token ``usage`` (image output tokens at the image
  output rate); DALL·E (and any response without usage) per image, as
  ``image:<quality>:<size>`` uses, quality and size read from the response, else the request,
  else the model's defaults;
- speech: tts-1 / tts-1-hd per input character (``speech_characters``, read from the request);
  gpt-4o-mini-tts bills tokens the response does not report: its input is estimated from the
  text and the event is marked estimated;
- transcription / translation: the response's ``usage`` (tokens, or a duration billed as
  ``audio_seconds``), else a verbose response's ``duration``; plain-text formats report
  neither and are estimated.

``with_raw_response`` results are costed when parsed; ``with_streaming_response`` speech is
costed at once (its price is known from the request); streamed images and transcripts
(``stream=True``) from their final event's usage.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from llmlab._tools import MAX_TOOL_USES
from llmlab.integrations import DidNotEnable, Integration
from llmlab.integrations._common import Call, CallSpec, UsageSource, async_wrapper, sync_wrapper
from llmlab.integrations.openai import _RAW_RESPONSE_TYPES, _adapt_raw, _provider
from llmlab.pricing._media_prices import AUDIO_SECONDS, IMAGE, SPEECH_CHARACTERS
from llmlab.usage import Usage

__all__ = ["OpenAIMediaIntegration", "default_image_model", "image_usage", "speech_usage",
           "transcription_usage"]

_NO_EXTRA: dict[str, Any] = {}
#: Defaults of the Images API when the request and the response leave them out.
_DEFAULT_IMAGE_MODEL = "dall-e-2"
_DEFAULT_SIZE = "1024x1024"
_DEFAULT_GPT_IMAGE_MODEL = "gpt-image-1"
#: Images API parameters only the gpt-image models accept.
_GPT_IMAGE_ONLY = ("background", "moderation", "output_compression", "output_format",
                   "partial_images", "input_fidelity")
#: The openai SDK's "left out" sentinels (a caller may pass them explicitly).
_NOT_GIVEN = ("NotGiven", "Omit")
#: The per-image price of a gpt-image response without usage at quality ``auto``.
_AUTO_QUALITY = "medium"


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _text(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def image_usage(model: str, kwargs: dict[str, Any], result: Any) -> Usage:
    """The billed usage of an ``ImagesResponse``: its tokens, else one
    ``image:<quality>:<size>`` use per image returned."""
    usage = _get(result, "usage")
    if usage is not None and _int(_get(usage, "total_tokens")):
        output = _int(_get(usage, "output_tokens"))
        details = _get(usage, "output_tokens_details")
        image_out = _int(_get(details, "image_tokens")) if details is not None else output
        return Usage(input_tokens=_int(_get(usage, "input_tokens")), output_tokens=output,
                     image_input_tokens=_int(_get(_get(usage, "input_tokens_details"),
                                                  "image_tokens")),
                     image_output_tokens=min(image_out, output))
    count = len(_get(result, "data") or ()) or _int(kwargs.get("n")) or 1
    quality = _text(_get(result, "quality")) or _text(kwargs.get("quality"))
    if quality in (None, "auto"):
        quality = "standard" if model.startswith("dall-e") else _AUTO_QUALITY
    size = _text(_get(result, "size")) or _text(kwargs.get("size"))
    if size in (None, "auto"):
        size = _DEFAULT_SIZE
    return Usage(tools={f"{IMAGE}:{quality}:{size}": min(count, MAX_TOOL_USES)})


def speech_usage(model: str, kwargs: dict[str, Any]) -> Usage | None:
    """tts-1 / tts-1-hd: the input's characters; None (estimated) for token-billed models."""
    text = kwargs.get("input")
    if not model.startswith("tts-") or not isinstance(text, str):
        return None
    return Usage(tools={SPEECH_CHARACTERS: min(len(text), MAX_TOOL_USES)})


def _seconds(value: Any) -> Usage | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return None
    seconds = int(Decimal(str(value)).to_integral_value(ROUND_HALF_UP)) or 1
    return Usage(tools={AUDIO_SECONDS: min(seconds, MAX_TOOL_USES)})


def transcription_usage(result: Any) -> Usage | None:
    """A transcription's (or translation's) billed usage: tokens, else seconds of audio
    (rounded to the nearest second, as OpenAI bills), else None (estimated)."""
    usage = _get(result, "usage")
    kind = _get(usage, "type") if usage is not None else None
    if kind == "tokens":
        details = _get(usage, "input_token_details")
        audio = _int(_get(details, "audio_tokens")) if details is not None else 0
        inp = _int(_get(usage, "input_tokens"))
        return Usage(input_tokens=inp, output_tokens=_int(_get(usage, "output_tokens")),
                     audio_input_tokens=min(audio, inp))
    if kind == "duration":
        return _seconds(_get(usage, "seconds"))
    return _seconds(_get(result, "duration"))


def default_image_model(kwargs: dict[str, Any]) -> str:
    """The model an Images request naming none runs on: ``dall-e-2``, unless it uses a
    parameter only gpt-image accepts (then ``gpt-image-1``, as OpenAI documents)."""
    if any(kwargs.get(name) is not None and type(kwargs[name]).__name__ not in _NOT_GIVEN
           for name in _GPT_IMAGE_ONLY):
        return _DEFAULT_GPT_IMAGE_MODEL
    return _DEFAULT_IMAGE_MODEL


def _model(call: Call) -> str:
    return (call.requested_model or default_image_model(call.kwargs)).lower()


def _record_images(result: Any, call: Call) -> None:
    model = _model(call)
    call.finish(model, image_usage(model, call.kwargs, result))


def _record_transcription(result: Any, call: Call) -> None:
    call.finish(None, transcription_usage(result))


def _media_spec(operation: str, record: Any) -> CallSpec:
    """A spec whose results are read with the request at hand (``record(result, call)``)."""
    spec = CallSpec(provider=_provider, operation=operation, read_result=_unread,
                    default_model=default_image_model if operation.startswith("images.")
                    else None)

    def adapt(result: Any, call: Call) -> Any:
        if spec.is_stream(call.kwargs) and type(result).__name__ not in _RAW_RESPONSE_TYPES:
            return None  # a stream: its final event's usage (`_MediaStream`)
        if type(result).__name__ in _RAW_RESPONSE_TYPES:
            return _adapt_raw(result, call, spec)
        record(result, call)
        return result

    spec.adapt_result = adapt
    spec.new_stream_state = lambda call: _MediaStream()
    return spec


def _speech_spec() -> CallSpec:
    def adapt(result: Any, call: Call) -> Any:
        call.finish(None, speech_usage(_model(call), call.kwargs))
        return result

    return CallSpec(provider=_provider, operation="audio.speech", read_result=_unread,
                    adapt_result=adapt, is_stream=lambda kwargs: False)


def _unread(result: Any) -> tuple[str | None, UsageSource | None, dict[str, Any]]:
    return None, None, _NO_EXTRA  # never used: every result goes through `adapt_result`


class _MediaStream:
    """Streamed images / transcripts: the usage of their final event."""

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def extra(self) -> dict[str, Any]:
        return _NO_EXTRA

    def on_chunk(self, event: Any) -> bool:
        usage = _get(event, "usage")
        if usage is not None:
            if _get(usage, "type") in ("tokens", "duration"):
                self.usage = transcription_usage(event)
            else:
                self.usage = image_usage("", {}, event)
        return True

    def result(self) -> tuple[str | None, UsageSource | None, int]:
        return None, self.usage, 0


class OpenAIMediaIntegration(Integration):
    """Instruments the images and audio resources of the ``openai`` package (3.x)."""

    identifier: ClassVar[str] = "openai_media"
    module: ClassVar[str] = "openai"
    distribution: ClassVar[str] = "openai"
    min_version: ClassVar[tuple[int, ...]] = (1, 92)
    max_version: ClassVar[tuple[int, ...] | None] = (4,)

    def _targets(self) -> list[tuple[Any, str, CallSpec, bool]]:
        try:
            from openai.resources.audio.speech import AsyncSpeech, Speech
            from openai.resources.audio.transcriptions import AsyncTranscriptions, Transcriptions
            from openai.resources.audio.translations import AsyncTranslations, Translations
            from openai.resources.images import AsyncImages, Images
        except ImportError as exc:
            raise DidNotEnable(f"openai layout not recognised: {exc}") from exc
        targets: list[tuple[Any, str, CallSpec, bool]] = []
        for name in ("generate", "edit", "create_variation"):
            spec = _media_spec(f"images.{name}", _record_images)
            targets += [(Images, name, spec, False), (AsyncImages, name, spec, True)]
        speech = _speech_spec()
        targets += [(Speech, "create", speech, False), (AsyncSpeech, "create", speech, True)]
        for owner, async_owner, operation in (
                (Transcriptions, AsyncTranscriptions, "audio.transcriptions"),
                (Translations, AsyncTranslations, "audio.translations")):
            spec = _media_spec(operation, _record_transcription)
            targets += [(owner, "create", spec, False), (async_owner, "create", spec, True)]
        return targets

    def _wrapper(self, spec: Any, is_async: bool) -> Any:
        return async_wrapper(spec) if is_async else sync_wrapper(spec)
