"""docs/integrations.md's Instructor and LlamaIndex examples run
as written, each call priced once; the OpenLIT one runs in test_openlit_otlp.py."""

from __future__ import annotations

from typing import Any

import pytest
from stack_docs import blocks_for, doc_blocks
from stack_helpers import expected_cost

import llmlab
from llmlab.testing import FakeProvider

BLOCKS = [block for block in blocks_for("openai2") if "openlit" not in block.code]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_block_runs_as_written(block: Any, doc_env: FakeProvider) -> None:
    """The block runs, its claims hold, and its scope holds every request exactly priced."""
    doc_env.configure("openai", text='{"name": "Ada", "age": 36}')  # Instructor's Person
    run = doc_blocks().run_block(block)
    assert llmlab.flush(timeout=10)
    assert not run.false_claims(block)
    scope = run.namespace["scope"]
    assert doc_env.requests
    assert (scope.calls, scope.cost) == (len(doc_env.requests), expected_cost(doc_env))
