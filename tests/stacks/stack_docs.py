"""The ```python stacks blocks of docs/integrations.md, run where their libraries are installed.

The main suite's doc test (tests/e2e/test_docs.py) runs the ```python blocks; blocks that need a
library the main environment cannot hold are fenced ```python stacks and run here, with the same
runner (tests/e2e/_doc_blocks.py: claims such as ``scope.calls  # -> 3`` are checked). Each
environment runs the blocks of the sections it names in `SECTIONS`; every stacks block must lie
in one of them.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "integrations.md"
#: tests/stacks environment -> the docs/integrations.md sections whose stacks blocks it runs.
SECTIONS = {
    "openai3": ("LangChain", "LangGraph", "OpenAI Agents SDK", "Pydantic AI"),
    "openai2": ("Instructor", "LlamaIndex", "OpenLIT"),
}
_HEADING = re.compile(r"^#{2,3} (?P<title>.+)$")


def doc_blocks() -> ModuleType:
    """tests/e2e/_doc_blocks.py (standard library only), imported by path."""
    name = "llmlab_stacks_doc_blocks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests/e2e/_doc_blocks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def stacks_blocks() -> list[tuple[str, object]]:
    """(section title, `Block`) of every ```python stacks block of the page, in order."""
    module = doc_blocks()
    found: list[tuple[str, object]] = []
    section, start, body = "", 0, list[str]()
    in_block = in_other = False
    for number, line in enumerate(PAGE.read_text("utf-8").splitlines(), start=1):
        if in_block:
            if line == "```":
                found.append((section, module.Block(PAGE, "docs/integrations.md", start,
                                                    "\n".join(body) + "\n")))
                in_block, body = False, []
            else:
                body.append(line)
        elif in_other:
            in_other = line != "```"
        elif line == "```python stacks":
            in_block, start = True, number
        elif line.startswith("```"):
            in_other = True
        elif heading := _HEADING.match(line):
            section = heading["title"]
        else:
            continue
    return found


def blocks_for(environment: str) -> list[object]:
    """The stacks blocks ``environment`` runs."""
    return [block for section, block in stacks_blocks() if section in SECTIONS[environment]]
