"""Events of the non-chat endpoints (#15): the server prices their per-use units (images,
characters, seconds) with the same catalogue as the SDK."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from llmlab_server import db
from llmlab_server.models import CostEventRow, Project
from llmlab_server.services.ingest import ingest

from ..helpers import make_event


def _project(session: Any, slug: str) -> Project:
    project = Project(name=slug, slug=slug)
    session.add(project)
    session.commit()
    return project


@pytest.mark.parametrize(("model", "tools", "nanos"), [
    ("dall-e-3", {"image:hd:1024x1792": 2}, 240_000_000),    # 2 x $0.12
    ("tts-1", {"speech_characters": 1000}, 15_000_000),       # 1000 x $15/M
    ("whisper-1", {"audio_seconds": 60}, 6_000_000),          # $0.006 a minute
])
def test_the_server_prices_media_units(app: Flask, model: str, tools: dict[str, int],
                                       nanos: int) -> None:
    with app.app_context():
        session = db.session()
        project = _project(session, f"media-{model}")
        event = make_event(model=model, usage={"input_tokens": 0, "output_tokens": 0,
                                               "tools": tools})
        assert ingest(session, project, [event]).accepted == 1
        row = session.scalars(select(CostEventRow)).one()
        assert (row.cost_nanos, row.cost_tools_nanos, row.tools) == (nanos, nanos, tools)
        assert row.server_priced is True


def test_an_sdk_priced_image_event_is_repriced_identically(app: Flask) -> None:
    from llmlab.pricing import cost as sdk_cost
    from llmlab.schema import EventCost
    from llmlab.usage import Usage

    usage = Usage(input_tokens=50, output_tokens=4160, image_output_tokens=4160)
    breakdown = sdk_cost("gpt-image-1", usage, "openai")
    with app.app_context():
        session = db.session()
        project = _project(session, "media-gpt-image")
        event = make_event(model="gpt-image-1", usage=usage.to_sparse_dict(),
                           cost=EventCost.from_breakdown(breakdown).model_dump(mode="json"))
        assert event["cost"]["total"] == "0.16665"
        assert ingest(session, project, [event]).accepted == 1
        row = session.scalars(select(CostEventRow)).one()
        assert (row.cost_nanos, row.server_cost_nanos) == (166_650_000, 166_650_000)
        assert row.cost_mismatch is False
