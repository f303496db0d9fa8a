"""Test helpers for llmlab users and llmlab itself (filled in by the SDK issue)."""
