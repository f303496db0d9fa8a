"""Every script in examples/ runs offline and prints real, non-zero costs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_prints_costs(script: Path, tmp_path: Path) -> None:
    """The example exits 0 within 60 s and prints at least one non-zero dollar amount."""
    env = {**os.environ, "LLMLAB_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    amounts = [float(a) for a in re.findall(r"\$?(\d+\.\d+)", result.stdout)]
    assert any(a > 0 for a in amounts), result.stdout
