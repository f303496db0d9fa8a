"""Prices of the non-chat endpoints: images, speech, transcription (a layer on the bundled
catalogue).

The bundled catalogue is built from the chat-like modes of the LiteLLM table; this module adds
the OpenAI image and audio models and Google's Imagen models (`with_media_models`), each a
catalogue model whose token rates come from the table (via `convert_entry`) and whose unit
prices are per-use ``tools`` prices (`llmlab.pricing._tool_prices`) of these kinds:

- ``image:<quality>:<size>`` (``image:hd:1024x1792``): one generated image (DALL·E, and
  gpt-image when a response reports no token usage); ``image`` alone: Imagen, any size;
- ``speech_characters``: one character of ``audio.speech`` input (tts-1, tts-1-hd);
- ``audio_seconds``: one second of transcribed/translated audio (whisper-1; gpt-4o-transcribe
  when the response reports a duration instead of tokens).

Sources (docs/pricing.md, "Images and audio"): LiteLLM's table (the pinned copy in
scripts/data) for every token rate and for ``input_cost_per_character``,
``input_cost_per_second``, ``output_cost_per_image`` and the per-image gpt-image prices;
OpenAI's price page (developers.openai.com/api/docs/pricing#image-generation) for DALL·E 2
and 3, which the table lists only for Azure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmlab.pricing._litellm import convert_entry

__all__ = ["AUDIO_SECONDS", "IMAGE", "MEDIA_MODELS", "SPEECH_CHARACTERS", "media_models",
           "with_media_models"]

IMAGE, SPEECH_CHARACTERS, AUDIO_SECONDS = "image", "speech_characters", "audio_seconds"

_SQUARE, _TALL, _WIDE = "1024x1024", "1024x1536", "1536x1024"

#: Token-priced models: their LiteLLM entries (rates only, as the table has them).
_TOKEN_ENTRIES: dict[str, dict[str, Any]] = {
    "gpt-image-1": {"mode": "image_generation", "input_cost_per_token": 5e-06,
                    "cache_read_input_token_cost": 1.25e-06,
                    "input_cost_per_image_token": 1e-05, "output_cost_per_image_token": 4e-05},
    "gpt-image-1-mini": {"mode": "image_generation", "input_cost_per_token": 2e-06,
                         "cache_read_input_token_cost": 2e-07,
                         "input_cost_per_image_token": 2.5e-06,
                         "output_cost_per_image_token": 8e-06},
    "gpt-image-1.5": {"mode": "image_generation", "input_cost_per_token": 5e-06,
                      "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06,
                      "input_cost_per_image_token": 8e-06,
                      "output_cost_per_image_token": 3.2e-05},
    "gpt-image-2": {"mode": "image_generation", "input_cost_per_token": 5e-06,
                    "cache_read_input_token_cost": 1.25e-06,
                    "input_cost_per_image_token": 8e-06, "output_cost_per_image_token": 3e-05},
    "chatgpt-image-latest": {"mode": "image_generation", "input_cost_per_token": 5e-06,
                             "output_cost_per_token": 1e-05,
                             "cache_read_input_token_cost": 1.25e-06,
                             "input_cost_per_image_token": 8e-06,
                             "output_cost_per_image_token": 3.2e-05},
    "gpt-4o-transcribe": {"mode": "audio_transcription", "input_cost_per_token": 2.5e-06,
                          "input_cost_per_audio_token": 2.5e-06,
                          "output_cost_per_token": 1e-05, "input_cost_per_second": 0.0001},
    "gpt-4o-transcribe-diarize": {"mode": "audio_transcription",
                                  "input_cost_per_token": 2.5e-06,
                                  "input_cost_per_audio_token": 2.5e-06,
                                  "output_cost_per_token": 1e-05,
                                  "input_cost_per_second": 0.0001},
    "gpt-4o-mini-transcribe": {"mode": "audio_transcription", "input_cost_per_token": 1.25e-06,
                               "input_cost_per_audio_token": 1.25e-06,
                               "output_cost_per_token": 5e-06, "input_cost_per_second": 5e-05},
    "gpt-4o-mini-tts": {"mode": "audio_speech", "input_cost_per_token": 6e-07,
                        "output_cost_per_token": 1e-05, "output_cost_per_audio_token": 1.2e-05},
}
#: Unit-priced models: (mode, {kind: USD per use}).
_UNIT_ENTRIES: dict[str, tuple[str, dict[str, str]]] = {
    "dall-e-2": ("image_generation", {"image:standard:256x256": "0.016",
                                      "image:standard:512x512": "0.018",
                                      "image:standard:1024x1024": "0.02"}),
    "dall-e-3": ("image_generation", {"image:standard:1024x1024": "0.04",
                                      "image:standard:1024x1792": "0.08",
                                      "image:standard:1792x1024": "0.08",
                                      "image:hd:1024x1024": "0.08",
                                      "image:hd:1024x1792": "0.12",
                                      "image:hd:1792x1024": "0.12"}),
    "tts-1": ("audio_speech", {SPEECH_CHARACTERS: "0.000015"}),
    "tts-1-1106": ("audio_speech", {SPEECH_CHARACTERS: "0.000015"}),
    "tts-1-hd": ("audio_speech", {SPEECH_CHARACTERS: "0.00003"}),
    "tts-1-hd-1106": ("audio_speech", {SPEECH_CHARACTERS: "0.00003"}),
    "whisper-1": ("audio_transcription", {AUDIO_SECONDS: "0.0001"}),
    "gpt-transcribe": ("audio_transcription", {AUDIO_SECONDS: "0.000075"}),
}
#: gpt-image per-image prices (the table's ``<quality>/<w>-x-<h>/<model>`` entries):
#: quality → (square, portrait/landscape).
_PER_IMAGE: dict[str, dict[str, tuple[str, str]]] = {
    "gpt-image-1": {"low": ("0.011", "0.016"), "medium": ("0.042", "0.063"),
                    "high": ("0.167", "0.25")},
    "gpt-image-1-mini": {"low": ("0.005", "0.006"), "medium": ("0.011", "0.015")},
    "gpt-image-1.5": {"low": ("0.009", "0.013"), "standard": ("0.009", "0.013"),
                      "medium": ("0.034", "0.05"), "high": ("0.133", "0.2")},
}
#: Google Imagen, per image (``output_cost_per_image``), through ``models.generate_images``.
_IMAGEN = {"imagen-3.0-generate-001": "0.04", "imagen-3.0-fast-generate-001": "0.02"}


def _per_image(model: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for quality, (square, oblong) in _PER_IMAGE.get(model, {}).items():
        out[f"{IMAGE}:{quality}:{_SQUARE}"] = square
        out[f"{IMAGE}:{quality}:{_TALL}"] = out[f"{IMAGE}:{quality}:{_WIDE}"] = oblong
    return out


def _unit_model(provider: str, name: str, mode: str, prices: dict[str, str]) -> dict[str, Any]:
    return {"provider": provider, "name": name, "mode": mode,
            "prices": [{"effective_from": None,
                        "rates": {"standard": {"input": "0", "output": "0"}},
                        "tools": {"prices": dict(sorted(prices.items()))}}]}


def media_models() -> dict[str, dict[str, Any]]:
    """The image and audio models in catalogue form, by ``provider/name``."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in _TOKEN_ENTRIES.items():
        model = convert_entry(name, entry, "openai")
        units = _per_image(name)
        per_second = entry.get("input_cost_per_second")
        if per_second is not None:
            units[AUDIO_SECONDS] = format(per_second, "f")
        if units:
            model["prices"][0]["tools"] = {"prices": dict(sorted(units.items()))}
        out[f"openai/{name}"] = model
    for name, (mode, prices) in _UNIT_ENTRIES.items():
        out[f"openai/{name}"] = _unit_model("openai", name, mode, prices)
    for name, price in _IMAGEN.items():
        for provider in ("google", "vertex"):
            out[f"{provider}/{name}"] = _unit_model(provider, name, "image_generation",
                                                    {IMAGE: price})
    return out


MEDIA_MODELS: dict[str, dict[str, Any]] = media_models()


def with_media_models(data: Mapping[str, Any]) -> dict[str, Any]:
    """Catalogue data ``data`` plus the media models it does not price itself."""
    models = dict(data.get("models") or {})
    for key, model in MEDIA_MODELS.items():
        models.setdefault(key, model)
    return {**data, "models": models}
