"""docs/integrations.md's LangChain, LangGraph, OpenAI Agents SDK and Pydantic AI examples run
as written, each call priced once (see tests/stacks/stack_docs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from stack_docs import SECTIONS, blocks_for, doc_blocks, stacks_blocks
from stack_helpers import expected_cost

import llmlab
from llmlab.testing import FakeProvider


def test_every_stacks_block_runs_somewhere() -> None:
    """Each ```python stacks block is in a section an environment runs, and each of those
    sections has one."""
    sections = [section for section, _ in stacks_blocks()]
    assert set(sections) == {name for names in SECTIONS.values() for name in names}


@pytest.mark.parametrize("block", blocks_for("openai3"), ids=lambda block: block.id)
def test_block_runs_as_written(block: Any, doc_env: FakeProvider) -> None:
    """The block runs, its claims hold, and its scope holds every request exactly priced."""
    run = doc_blocks().run_block(block)
    assert llmlab.flush(timeout=10)
    assert not run.false_claims(block)
    scope = run.namespace["scope"]
    assert doc_env.requests
    assert (scope.calls, scope.cost) == (len(doc_env.requests), expected_cost(doc_env))
