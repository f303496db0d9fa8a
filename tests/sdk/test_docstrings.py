"""The ``>>>`` examples in the SDK's docstrings run and print what they claim.

Users read them in their editor and on the API pages; a stale one (``Decimal('0.003500')``
where the engine gives ``Decimal('0.0035000')``) teaches the wrong thing. Examples that need a
network or a server are marked ``# doctest: +SKIP`` where they stand.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import llmlab


def _modules_with_examples() -> list[str]:
    names = ["llmlab"]
    for info in pkgutil.walk_packages(llmlab.__path__, "llmlab."):
        if info.name.startswith(("llmlab.cli", "llmlab.integrations.")):
            continue  # the CLI needs its extra; integrations need their provider SDKs
        names.append(info.name)
    return [n for n in names if ">>> " in Path(importlib.import_module(n).__file__ or "").read_text(
        "utf-8")]


MODULES = _modules_with_examples()


def test_the_sdk_has_docstring_examples_to_check() -> None:
    """The collection finds the modules whose docstrings carry examples (so none is missed
    silently by a broken walk)."""
    assert {"llmlab", "llmlab.usage", "llmlab.schema", "llmlab.api"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every example of the module's docstrings gives the output it shows."""
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    for var in ("LLMLAB_BASE_URL", "LLMLAB_API_KEY", "LLMLAB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    module = importlib.import_module(name)
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 report=True, verbose=False)
    finally:
        llmlab.shutdown()
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see above)"
    assert result.attempted > 0
