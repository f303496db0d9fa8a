"""The fake provider's OpenAI images and audio routes (``/v1/images/*``, ``/v1/audio/*``).

Answers are deterministic, so tests can compute the exact bill:

- images: ``n`` images (default 1), the request's quality and size echoed; gpt-image models
  report token usage (`IMAGE_INPUT_TEXT_TOKENS` text tokens, plus `EDIT_IMAGE_TOKENS` image
  tokens on edits, and `IMAGE_OUTPUT_TOKENS` image tokens per image); DALL·E reports none;
- ``stream=True`` images and transcripts: SSE, a partial event then the final one, which
  carries the usage above;
- speech: `SPEECH_BYTES` bytes of audio;
- transcriptions: ``json`` with usage (a duration of `AUDIO_SECONDS` s for whisper-1, tokens
  `TRANSCRIBE_USAGE` for the gpt-4o models), ``verbose_json`` with ``duration``
  (`VERBOSE_DURATION`), ``text`` / ``srt`` / ``vtt`` as plain text; translations alike but
  their ``json`` carries only the text (as OpenAI's does);
- Imagen (``models/{m}:predict``, Gemini API and Vertex paths): ``sampleCount`` images
  (default 1); a prompt containing ``filtered`` has its last image withheld by the safety
  filter (a ``raiFilteredReason`` instead of an image).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

__all__ = ["AUDIO_SECONDS", "EDIT_IMAGE_TOKENS", "ENDPOINTS", "IMAGE_INPUT_TEXT_TOKENS",
           "IMAGE_OUTPUT_TOKENS", "ROUTES", "SPEECH_BYTES", "TRANSCRIBE_USAGE",
           "VERBOSE_DURATION", "answer", "route"]

ROUTES = {
    "/images/generations": "openai.images.generate",
    "/images/edits": "openai.images.edit",
    "/images/variations": "openai.images.variation",
    "/audio/speech": "openai.audio.speech",
    "/audio/transcriptions": "openai.audio.transcriptions",
    "/audio/translations": "openai.audio.translations",
}
ENDPOINTS = frozenset(ROUTES.values()) | {"google.predict"}
_IMAGEN_ROUTE = re.compile(
    r"^/(?:v1beta1|v1beta|v1|v1alpha)/(?:projects/[^/]+/locations/[^/]+/)?"
    r"(?:publishers/[^/]+/)?models/(?P<model>[^:/]+):predict$")
IMAGE_INPUT_TEXT_TOKENS = 50
EDIT_IMAGE_TOKENS = 323
IMAGE_OUTPUT_TOKENS = 4160
SPEECH_BYTES = 2048
AUDIO_SECONDS = 12
VERBOSE_DURATION = 7.6
TRANSCRIBE_USAGE = {"type": "tokens", "input_tokens": 120, "output_tokens": 30,
                    "total_tokens": 150,
                    "input_token_details": {"text_tokens": 20, "audio_tokens": 100}}
_TEXT = "Hello from the fake provider."
_PART = re.compile(rb'name="(?P<name>[^"]+)"(?:; filename="[^"]*")?\r\n(?:[^\r\n]+\r\n)*\r\n'
                   rb"(?P<value>.*?)\r\n--", re.S)


def form_fields(raw: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (files skipped)."""
    out: dict[str, str] = {}
    for m in _PART.finditer(raw):
        name = m["name"].decode()
        if b'filename="' in raw[m.start():m.start("value")]:
            continue
        out[name] = m["value"].decode("utf-8", "replace")
    return out


def route(path: str) -> tuple[Any, str, str] | None:
    """(provider, endpoint, model) of an Imagen ``:predict`` path, else None."""
    m = _IMAGEN_ROUTE.match(path)
    return ("google", "google.predict", m["model"]) if m else None


def _imagen(data: dict[str, Any]) -> dict[str, Any]:
    count = int((data.get("parameters") or {}).get("sampleCount") or 1)
    predictions: list[dict[str, Any]] = [
        {"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"} for _ in range(count)]
    prompts = " ".join(str(i.get("prompt", "")) for i in data.get("instances") or ())
    if "filtered" in prompts:
        predictions[-1] = {"raiFilteredReason": "withheld by the fake safety filter"}
    return {"predictions": predictions}


def _images(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
    model = str(data.get("model") or "dall-e-2")
    n = int(data.get("n") or 1)
    body: dict[str, Any] = {"created": int(time.time()),
                            "data": [{"b64_json": "iVBORw0KGgo="} for _ in range(n)]}
    if model.startswith("gpt-image") or model.startswith("chatgpt-image"):
        body["quality"] = data.get("quality") or "medium"
        body["size"] = data.get("size") or "1024x1024"
        image_in = EDIT_IMAGE_TOKENS if endpoint == "openai.images.edit" else 0
        output = IMAGE_OUTPUT_TOKENS * n
        body["usage"] = {
            "input_tokens": IMAGE_INPUT_TEXT_TOKENS + image_in, "output_tokens": output,
            "total_tokens": IMAGE_INPUT_TEXT_TOKENS + image_in + output,
            "input_tokens_details": {"text_tokens": IMAGE_INPUT_TEXT_TOKENS,
                                     "image_tokens": image_in},
            "output_tokens_details": {"image_tokens": output, "text_tokens": 0}}
    return body


def _transcript(endpoint: str, data: dict[str, Any]) -> tuple[str, bytes]:
    model = str(data.get("model") or "whisper-1")
    fmt = data.get("response_format") or "json"
    if fmt in ("text", "srt", "vtt"):
        return "text/plain; charset=utf-8", _TEXT.encode()
    body: dict[str, Any] = {"text": _TEXT}
    if fmt == "verbose_json":
        body.update(language="english", duration=VERBOSE_DURATION, segments=[])
    elif endpoint == "openai.audio.transcriptions":
        body["usage"] = (TRANSCRIBE_USAGE if model.startswith("gpt-")
                         else {"type": "duration", "seconds": AUDIO_SECONDS})
    return "application/json", json.dumps(body).encode()


def _stream(endpoint: str, data: dict[str, Any]) -> bytes:
    """The SSE body of a streamed image or transcript: a partial event, then the final one
    (which carries the usage)."""
    if endpoint.startswith("openai.images."):
        body = _images(endpoint, data)
        prefix = "image_edit" if endpoint == "openai.images.edit" else "image_generation"
        common = {"b64_json": "iVBORw0KGgo=", "background": "opaque",
                  "created_at": body["created"], "output_format": "png",
                  "quality": body.get("quality", "medium"),
                  "size": body.get("size", "1024x1024")}
        events = [{**common, "type": f"{prefix}.partial_image", "partial_image_index": 0},
                  {**common, "type": f"{prefix}.completed", "usage": body.get("usage")}]
    else:
        events = [{"type": "transcript.text.delta", "delta": _TEXT},
                  {"type": "transcript.text.done", "text": _TEXT, "usage": TRANSCRIBE_USAGE}]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def answer(handler: Any, endpoint: str, raw: bytes, data: dict[str, Any]) -> None:
    """Answer one media request on ``handler`` (the fake's request handler)."""
    if not data and raw:
        data = form_fields(raw)
    if str(data.get("stream")).lower() == "true" and endpoint != "openai.audio.speech":
        _send(handler, "text/event-stream; charset=utf-8", _stream(endpoint, data))
        return
    if endpoint == "google.predict":
        handler._send_json(200, _imagen(data))
        return
    if endpoint.startswith("openai.images."):
        handler._send_json(200, _images(endpoint, data))
        return
    if endpoint == "openai.audio.speech":
        content_type, payload = "audio/mpeg", b"\xff\xfb" + b"\0" * (SPEECH_BYTES - 2)
    else:
        content_type, payload = _transcript(endpoint, data)
    _send(handler, content_type, payload)


def _send(handler: Any, content_type: str, payload: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
