"""OpenAI images and audio endpoints, through the real openai client against the FakeProvider.

Every expected amount is worked out by hand from docs/pricing.md, "Images and audio", with the
fake's fixed answers (`llmlab.testing._fake_media`).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

import llmlab
from llmlab.errors import BudgetExceededError
from llmlab.schema import CostEvent
from llmlab.testing import FakeProvider
from llmlab.testing import _fake_media as media

openai = pytest.importorskip("openai")
from openai.types import ImagesResponse  # noqa: E402
from openai.types.audio import Transcription, TranscriptionVerbose  # noqa: E402

AUDIO = ("a.mp3", b"ID3" + b"\0" * 191_997, "audio/mpeg")  # 12 s at 128 kbit/s


def client(fake: FakeProvider) -> Any:
    return openai.OpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)


def aclient(fake: FakeProvider) -> Any:
    return openai.AsyncOpenAI(api_key="k", base_url=fake.openai_base_url, max_retries=0)


def only(events: list[CostEvent]) -> CostEvent:
    assert len(events) == 1, events
    return events[0]


def assert_cost(event: CostEvent, model: str, total: str, tools: str = "0") -> None:
    assert event.model == model
    assert event.cost is not None and event.cost.priced, event
    assert event.cost.total == Decimal(total)
    assert event.cost.tools == Decimal(tools)
    parts = (event.cost.input + event.cost.cache_read + event.cost.cache_write
             + event.cost.output + event.cost.reasoning + event.cost.tools)
    assert parts == event.cost.total


# -- images ---------------------------------------------------------------------------------

def test_dall_e_3_is_billed_per_image(fake: FakeProvider, events: list[CostEvent]) -> None:
    result = client(fake).images.generate(model="dall-e-3", prompt="a cat", quality="hd",
                                          size="1024x1792")
    assert type(result) is ImagesResponse and len(result.data) == 1
    event = only(events)
    assert event.usage.tools == {"image:hd:1024x1792": 1}
    assert_cost(event, "dall-e-3", "0.12", "0.12")  # one HD 1024x1792 image: $0.12


def test_dall_e_2_defaults_per_image(fake: FakeProvider, events: list[CostEvent]) -> None:
    result = client(fake).images.generate(prompt="a cat", n=2)  # the API's default model
    assert len(result.data) == 2
    event = only(events)
    assert event.usage.tools == {"image:standard:1024x1024": 2}
    assert_cost(event, "dall-e-2", "0.04", "0.04")  # 2 x $0.02


def test_gpt_image_is_billed_by_tokens(fake: FakeProvider, events: list[CostEvent]) -> None:
    result = client(fake).images.generate(model="gpt-image-1", prompt="a cat", quality="high")
    assert result.usage is not None and result.usage.output_tokens == media.IMAGE_OUTPUT_TOKENS
    event = only(events)
    assert event.usage.image_output_tokens == media.IMAGE_OUTPUT_TOKENS
    # 50 text tokens x $5/M + 4160 image output tokens x $40/M
    assert_cost(event, "gpt-image-1", "0.16665")


def test_gpt_image_edit(fake: FakeProvider, events: list[CostEvent]) -> None:
    client(fake).images.edit(model="gpt-image-1", image=("in.png", b"\x89PNG", "image/png"),
                             prompt="add a hat")
    event = only(events)
    assert event.operation == "images.edit"
    # 50 text x $5/M + 323 image input x $10/M + 4160 image output x $40/M
    assert_cost(event, "gpt-image-1", "0.16988")


def test_async_images(fake: FakeProvider, events: list[CostEvent]) -> None:
    async def run() -> Any:
        return await aclient(fake).images.generate(model="dall-e-3", prompt="a cat")

    result = asyncio.run(run())
    assert type(result) is ImagesResponse
    assert_cost(only(events), "dall-e-3", "0.04", "0.04")  # standard 1024x1024


def test_raw_response_image(fake: FakeProvider, events: list[CostEvent]) -> None:
    raw = client(fake).images.with_raw_response.generate(model="dall-e-3", prompt="a cat",
                                                         size="1792x1024")
    assert type(raw.parse()) is ImagesResponse
    assert_cost(only(events), "dall-e-3", "0.08", "0.08")


def test_streamed_image(fake: FakeProvider, events: list[CostEvent]) -> None:
    stream = client(fake).images.generate(model="gpt-image-1", prompt="a cat", stream=True,
                                          partial_images=1)
    kinds = [event.type for event in stream]
    assert kinds == ["image_generation.partial_image", "image_generation.completed"]
    event = only(events)
    assert event.stream
    assert_cost(event, "gpt-image-1", "0.16665")  # as the plain call: the final event's usage


# -- speech -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "total"), [("tts-1", "0.015"), ("tts-1-hd", "0.03")])
def test_tts_is_billed_per_character(fake: FakeProvider, events: list[CostEvent], model: str,
                                     total: str) -> None:
    audio = client(fake).audio.speech.create(model=model, voice="alloy", input="x" * 1000)
    assert audio.content == b"\xff\xfb" + b"\0" * (media.SPEECH_BYTES - 2)  # untouched
    event = only(events)
    assert event.usage.tools == {"speech_characters": 1000}
    assert_cost(event, model, total, total)  # 1000 characters x $15 (HD $30) per 1M


def test_streaming_speech(fake: FakeProvider, events: list[CostEvent]) -> None:
    speech = client(fake).audio.speech
    with speech.with_streaming_response.create(model="tts-1", voice="alloy",
                                               input="y" * 200) as response:
        body = b"".join(response.iter_bytes())
    assert len(body) == media.SPEECH_BYTES
    assert_cost(only(events), "tts-1", "0.003", "0.003")


def test_async_speech(fake: FakeProvider, events: list[CostEvent]) -> None:
    async def run() -> Any:
        return await aclient(fake).audio.speech.create(model="tts-1-hd", voice="alloy",
                                                       input="z" * 100)

    assert len(asyncio.run(run()).content) == media.SPEECH_BYTES
    assert_cost(only(events), "tts-1-hd", "0.003", "0.003")


def test_token_tts_is_estimated(fake: FakeProvider, events: list[CostEvent]) -> None:
    client(fake).audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="hello")
    event = only(events)
    assert event.estimated and event.usage.input_tokens > 0
    assert event.cost is not None and event.cost.priced


# -- transcription and translation ------------------------------------------------------------

def test_whisper_duration(fake: FakeProvider, events: list[CostEvent]) -> None:
    result = client(fake).audio.transcriptions.create(model="whisper-1", file=AUDIO)
    assert type(result) is Transcription and result.text
    event = only(events)
    assert event.usage.tools == {"audio_seconds": media.AUDIO_SECONDS}
    assert_cost(event, "whisper-1", "0.0012", "0.0012")  # 12 s x $0.006/min


def test_gpt_4o_transcribe_tokens(fake: FakeProvider, events: list[CostEvent]) -> None:
    client(fake).audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO)
    event = only(events)
    assert (event.usage.input_tokens, event.usage.audio_input_tokens) == (120, 100)
    # 20 text + 100 audio tokens x $2.50/M + 30 output x $10/M
    assert_cost(event, "gpt-4o-transcribe", "0.0006")


def test_async_streamed_transcript(fake: FakeProvider, events: list[CostEvent]) -> None:
    async def run() -> list[str]:
        stream = await aclient(fake).audio.transcriptions.create(
            model="gpt-4o-mini-transcribe", file=AUDIO, stream=True)
        return [event.type async for event in stream]

    assert asyncio.run(run()) == ["transcript.text.delta", "transcript.text.done"]
    # 20 text + 100 audio tokens x $1.25/M + 30 output x $5/M
    assert_cost(only(events), "gpt-4o-mini-transcribe", "0.0003")


def test_translation_verbose_duration(fake: FakeProvider, events: list[CostEvent]) -> None:
    async def run() -> Any:
        return await aclient(fake).audio.translations.create(
            model="whisper-1", file=AUDIO, response_format="verbose_json")

    result = asyncio.run(run())
    assert result.duration == media.VERBOSE_DURATION
    event = only(events)
    assert event.operation == "audio.translations"
    assert event.usage.tools == {"audio_seconds": 8}  # 7.6 s, billed to the nearest second
    assert_cost(event, "whisper-1", "0.0008", "0.0008")


def test_async_transcription_verbose(fake: FakeProvider, events: list[CostEvent]) -> None:
    async def run() -> Any:
        return await aclient(fake).audio.transcriptions.create(
            model="whisper-1", file=AUDIO, response_format="verbose_json")

    assert type(asyncio.run(run())) is TranscriptionVerbose
    assert_cost(only(events), "whisper-1", "0.0008", "0.0008")


def test_plain_text_transcript_is_estimated(fake: FakeProvider,
                                            events: list[CostEvent]) -> None:
    text = client(fake).audio.transcriptions.create(model="whisper-1", file=AUDIO,
                                                    response_format="text")
    assert isinstance(text, str) and "fake provider" in text
    event = only(events)
    assert event.estimated and event.model == "whisper-1"


def test_failed_call_raises_unchanged(fake: FakeProvider, events: list[CostEvent]) -> None:
    fake.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        client(fake).images.generate(model="dall-e-3", prompt="a cat")
    event = only(events)
    assert event.status == "error" and event.cost is not None and event.cost.total == 0


# -- attribution and budgets ------------------------------------------------------------------

def test_scope_attribution_and_budget(fake: FakeProvider, events: list[CostEvent]) -> None:
    """A track() scope attributes a media call and adds its cost; a call whose price would
    take it over its max_cost raises before anything is sent."""
    images = client(fake).images
    with llmlab.track(job="poster", tags={"feature": "art"}, max_cost="0.10") as scope:
        images.generate(model="dall-e-3", prompt="a cat", quality="hd")  # $0.08
        with pytest.raises(BudgetExceededError):  # another $0.08: $0.16 > $0.10
            images.generate(model="dall-e-3", prompt="a dog", quality="hd")
    event = only(events)
    assert (event.job_id, event.tags) == ("poster", {"feature": "art"})
    assert (scope.calls, scope.cost) == (1, Decimal("0.08"))
    assert [r.path for r in fake.requests] == ["/v1/images/generations"]


# -- the worst case, before the call ---------------------------------------------------------

PNG = ("in.png", b"\x89PNG", "image/png")
#: One request of each media kind: (resource path, method, keywords); each costs over $0.01.
MEDIA_CALLS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "dall-e-2": ("images", "generate", {"prompt": "a cat", "n": 2}),
    "dall-e-3 hd": ("images", "generate", {"model": "dall-e-3", "prompt": "a cat",
                                           "quality": "hd", "size": "1024x1792"}),
    "dall-e-3 auto": ("images", "generate", {"model": "dall-e-3", "prompt": "a cat",
                                             "quality": "auto"}),
    "gpt-image-1": ("images", "generate", {"model": "gpt-image-1", "prompt": "a cat",
                                           "quality": "high", "size": "1024x1024"}),
    "gpt-image-1 auto": ("images", "generate", {"model": "gpt-image-1", "prompt": "a cat"}),
    "gpt-image-1 by parameter": ("images", "generate", {"prompt": "a cat",
                                                        "output_format": "webp"}),
    "gpt-image-1 edit": ("images", "edit", {"model": "gpt-image-1", "image": PNG,
                                            "prompt": "add a hat"}),
    "dall-e-2 variation": ("images", "create_variation", {"image": PNG, "n": 1}),
    "tts-1": ("audio.speech", "create", {"model": "tts-1", "voice": "alloy",
                                         "input": "x" * 1000}),
    "tts-1-hd": ("audio.speech", "create", {"model": "tts-1-hd", "voice": "alloy",
                                            "input": "x" * 400}),
    "gpt-4o-mini-tts": ("audio.speech", "create", {"model": "gpt-4o-mini-tts", "voice": "alloy",
                                                   "input": "x" * 1000}),
    "whisper-1": ("audio.transcriptions", "create", {"model": "whisper-1", "file": AUDIO}),
    "whisper-1 verbose": ("audio.transcriptions", "create", {
        "model": "whisper-1", "file": AUDIO, "response_format": "verbose_json"}),
    "gpt-4o-transcribe": ("audio.transcriptions", "create", {"model": "gpt-4o-transcribe",
                                                             "file": AUDIO}),
    "translation": ("audio.translations", "create", {"model": "whisper-1", "file": AUDIO,
                                                     "response_format": "verbose_json"}),
}


def _send(fake: FakeProvider, path: str, method: str, kwargs: dict[str, Any]) -> Any:
    resource: Any = client(fake)
    for part in path.split("."):
        resource = getattr(resource, part)
    return getattr(resource, method)(**kwargs)


def _model(kwargs: dict[str, Any]) -> str:
    from llmlab.integrations.openai_media import default_image_model

    return kwargs.get("model") or default_image_model(kwargs)


@pytest.mark.parametrize("name", list(MEDIA_CALLS))
def test_the_worst_case_is_never_below_the_bill(fake: FakeProvider, events: list[CostEvent],
                                                name: str) -> None:
    """Each media kind's pre-call estimate is at least what the call is then priced at."""
    from llmlab._estimate import worst_case_cost
    from llmlab._tracker import get_tracker

    path, method, kwargs = MEDIA_CALLS[name]
    _send(fake, path, method, dict(kwargs))
    event = only(events)
    assert event.cost is not None and event.cost.priced and event.cost.total > 0
    reserved = worst_case_cost(get_tracker().catalogue, "openai", _model(kwargs), kwargs)
    assert reserved >= event.cost.total, (reserved, event.cost.total)


@pytest.mark.parametrize("name", list(MEDIA_CALLS))
def test_a_max_cost_scope_stops_each_media_call_before_it_is_sent(
        fake: FakeProvider, events: list[CostEvent], name: str) -> None:
    """A scope whose max_cost the call's price would pass raises before any request."""
    path, method, kwargs = MEDIA_CALLS[name]
    with llmlab.track(max_cost="0.0005"), pytest.raises(BudgetExceededError):
        _send(fake, path, method, dict(kwargs))
    assert fake.requests == [] and list(events) == []


def test_a_cheap_media_call_passes_the_scope(fake: FakeProvider, events: list[CostEvent]) -> None:
    """The worst case is not a blanket refusal: 2 characters of tts-1 fit in $0.0005."""
    with llmlab.track(max_cost="0.0005") as scope:
        client(fake).audio.speech.create(model="tts-1", voice="alloy", input="hi")
    assert scope.cost == Decimal("0.00003") and len(fake.requests) == 1


def test_the_audio_bound_follows_the_file_size(tmp_path: Any) -> None:
    """Per-second audio is bounded by the file's size at 6 kbit/s, however it is given."""
    import io

    from llmlab._estimate_media import MAX_AUDIO_BYTES, audio_seconds_bound

    path = tmp_path / "a.mp3"
    path.write_bytes(b"\0" * 7_500)  # 7,500 bytes x 8 / 6,000 bit/s = 10 s
    handle = io.BytesIO(b"\0" * 9_000)
    handle.seek(1_500)  # what is left to send: 7,500 bytes
    for upload in (path, b"\0" * 7_500, ("a.mp3", b"\0" * 7_500, "audio/mpeg"), handle):
        assert audio_seconds_bound(upload) == 10
    assert handle.tell() == 1_500  # not consumed
    assert audio_seconds_bound(object()) == MAX_AUDIO_BYTES * 8 // 6_000 + 1


def test_async_media_calls_are_stopped_before_they_are_sent(fake: FakeProvider,
                                                            events: list[CostEvent]) -> None:
    async def run() -> None:
        async_client = aclient(fake)
        with llmlab.track(max_cost="0.0005"):
            with pytest.raises(BudgetExceededError):  # 192 kB: up to 256 s, $0.0256
                await async_client.audio.transcriptions.create(model="whisper-1", file=AUDIO)
            with pytest.raises(BudgetExceededError):  # $0.04
                await async_client.images.generate(model="dall-e-3", prompt="a cat")

    asyncio.run(run())
    assert fake.requests == [] and list(events) == []
