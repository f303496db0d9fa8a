"""docs/integrations.md's plain-HTTP example: its curl command, run as written against a real
server, stores one event with the exact cost and the attribution it sent, once."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from stack_docs import PAGE
from stack_helpers import GPT_4O_COST


def curl_example() -> str:
    """The ```bash block of the page's "Any language, plain HTTP" section."""
    section = PAGE.read_text("utf-8").split("## Any language, plain HTTP", 1)[1]
    match = re.search(r"^```bash\n(.*?)^```$", section, re.S | re.M)
    assert match, "the section has no ```bash block"
    return match[1]


def test_curl_example_is_priced_once(live_url: str, tenant: dict[str, Any],
                                     stored: Callable[[datetime, datetime], list[Any]]) -> None:
    """Sent twice (a retry), the event is stored once: gpt-4o, 1200 in (1000 cached), 300 out."""
    command = curl_example()
    assert "curl" in command
    env = {"PATH": "/usr/bin:/bin", "LLMLAB_URL": live_url, "LLMLAB_API_KEY": tenant["key"]}
    answers = [subprocess.run(["bash", "-euo", "pipefail", "-c", command], env=env,
                              capture_output=True, text=True, timeout=30, check=True).stdout
               for _ in range(2)]
    assert '"accepted":1' in answers[0].replace(" ", "")
    assert '"duplicates":1' in answers[1].replace(" ", "")
    [event] = stored(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    assert (event["provider"], event["model"], event["job_id"], event["user_id"]) == (
        "openai", "gpt-4o", "nightly-report", "cust-42")
    assert event["tags"] == {"service": "checkout"}
    assert Decimal(event["cost"]) == GPT_4O_COST
