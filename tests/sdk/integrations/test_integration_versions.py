"""Supported provider SDK releases: an installed release outside an integration's range is not
patched and is said once at WARNING with the range; a missing library stays quiet."""

from __future__ import annotations

import logging
from importlib.metadata import version

import pytest

import llmlab
from llmlab.integrations import _versions, installed
from llmlab.integrations.openai import OpenAIIntegration


@pytest.fixture(autouse=True)
def _fresh() -> object:
    """No integration patched, nothing warned yet, before and after."""
    llmlab.uninstrument()
    saved = set(_versions._WARNED)
    _versions._WARNED.clear()
    yield None
    llmlab.uninstrument()
    _versions._WARNED.clear()
    _versions._WARNED.update(saved)


def test_parse_and_range() -> None:
    assert _versions.parse("2.54.0rc1") == (2, 54, 0)
    assert _versions.parse("garbage") == ()
    assert _versions.supported_range((1, 92), (4,)) == ">=1.92,<4"
    assert _versions.supported_range((2, 0), None) == ">=2.0"


def test_installed_openai_is_within_the_range() -> None:
    assert _versions.check("openai", OpenAIIntegration.min_version,
                           OpenAIIntegration.max_version) == version("openai")


@pytest.mark.parametrize(("minimum", "below"), [((99,), None), ((1, 92), (2,))])
def test_outside_the_range_is_warned_once(caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch,
                                          minimum: tuple[int, ...], below: tuple[int, ...] | None
                                          ) -> None:
    """Too old or too new: not instrumented, one WARNING naming the version and the range,
    however often instrument() runs."""
    monkeypatch.setattr(OpenAIIntegration, "min_version", minimum)
    monkeypatch.setattr(OpenAIIntegration, "max_version", below)
    with caplog.at_level(logging.DEBUG, logger="llmlab"):
        for _ in range(3):
            assert "openai" not in llmlab.instrument()
    import openai  # noqa: F401  (the post-import hook would patch it if it had been enabled)

    assert "openai" not in installed()
    [record] = [r for r in caplog.records if r.getMessage().startswith("llmlab: openai")]
    assert record.levelno == logging.WARNING
    wanted = _versions.supported_range(minimum, below)
    assert f"openai {version('openai')} is installed; llmlab supports openai{wanted}" in (
        record.getMessage())


def test_named_unsupported_library_through_wrap_is_warned(caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """llmlab.wrap() on a client of an unsupported release says why before refusing it."""
    import openai

    from llmlab.errors import ConfigurationError

    monkeypatch.setattr(OpenAIIntegration, "min_version", (99,))
    with caplog.at_level(logging.WARNING, logger="llmlab"), pytest.raises(ConfigurationError):
        llmlab.wrap(openai.OpenAI(api_key="sk-test"))
    assert any("llmlab supports openai>=99" in r.getMessage() for r in caplog.records)


def test_missing_library_is_not_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(_versions.DidNotEnable) as raised:
        _versions.check("llmlab-no-such-distribution", (1,), None)
    assert not isinstance(raised.value, _versions.UnsupportedVersion)
    assert not caplog.records


def test_one_warning_per_library_not_per_integration(caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An openai release outside the range skips both of its integrations (``openai`` and
    ``openai_media``) and says so once, naming the library."""
    from llmlab.integrations.openai_media import OpenAIMediaIntegration

    for cls in (OpenAIIntegration, OpenAIMediaIntegration):
        monkeypatch.setattr(cls, "max_version", (1,))
    with caplog.at_level(logging.DEBUG, logger="llmlab"):
        for names in ((), ("openai",), ("openai_media",), ("openai", "openai_media")):
            enabled = llmlab.instrument(*names)
            assert "openai" not in enabled and "openai_media" not in enabled
    warnings = [r.getMessage() for r in caplog.records if "not instrumented" in r.getMessage()
                and "openai" in r.getMessage()]
    assert warnings == [f"llmlab: openai not instrumented, its calls are not recorded: openai "
                        f"{version('openai')} is installed; llmlab supports openai>=1.92,<1"]


@pytest.mark.parametrize(("name", "companion"), [("openai", "openai_media"),
                                                 ("google-genai", "google_genai_media")])
def test_naming_a_library_instruments_its_media_endpoints(name: str, companion: str) -> None:
    """instrument("openai") patches the images and audio endpoints too (google-genai: Imagen);
    uninstrument("openai") removes both."""
    import google.genai  # noqa: F401
    import openai  # noqa: F401

    enabled = llmlab.instrument(name)
    assert companion in enabled and companion in installed()
    llmlab.uninstrument(name)
    assert companion not in installed()
