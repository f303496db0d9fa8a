"""What each provider SDK version raises where releases differ (the tests run on a range).

Each bound was found by installing the versions around it (scripts/provider_versions.py runs
the integration tests on the oldest and newest release of every supported range).
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from types import ModuleType


def _at_least(package: str, minimum: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in version(package).split(".")[:2])
    return (major, minor) >= minimum


def openai_http() -> ModuleType:
    """The HTTP library the installed openai is built on: httpx2 from 3.0, httpx before
    (2.x runs in the stacks environment, tests/stacks)."""
    return importlib.import_module("httpx2" if _at_least("openai", (3, 0)) else "httpx")


def openai_cut_stream_error() -> type[BaseException]:
    """A stream cut mid-body: openai wraps it in APIConnectionError from 3.14, earlier
    releases let the HTTP library's RemoteProtocolError through."""
    import openai

    if _at_least("openai", (3, 14)):
        return openai.APIConnectionError
    error: type[BaseException] = openai_http().RemoteProtocolError
    return error


def anthropic_cut_stream_error() -> type[BaseException]:
    """A stream cut mid-body: anthropic wraps it in APIConnectionError from 2.17, earlier 2.x
    releases let httpx2.RemoteProtocolError through."""
    import anthropic
    import httpx2

    if _at_least("anthropic", (2, 17)):
        return anthropic.APIConnectionError
    return httpx2.RemoteProtocolError
