"""On/off environment variables, read by one spelling table shared with the server's config.

A switch is ``1/0``, ``true/false``, ``yes/no`` or ``on/off``, in any case, surrounding spaces
ignored; unset or blank means the default. Anything else is refused rather than guessed at:
a plain truthiness test reads ``LLMLAB_DEBUG=0`` as on, since any non-empty string is true.
pydantic's own bool parser also takes ``t/f/y/n``; we do not, so the SDK (no pydantic-settings)
and the server (`llmlab_server.config`) accept exactly the same words::

    if env_bool("LLMLAB_DEBUG", False):
        raise
"""

from __future__ import annotations

import os

from llmlab.errors import ConfigurationError

__all__ = ["FALSE_WORDS", "SPELLINGS", "TRUE_WORDS", "env_bool", "parse_bool"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
#: The accepted spellings, as error messages and docs name them.
SPELLINGS = "1/0, true/false, yes/no or on/off (any case)"


def parse_bool(raw: str) -> bool | None:
    """``raw`` read as a switch; None when it is none of the accepted spellings (or blank)."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def env_bool(name: str, default: bool) -> bool:
    """The switch in environment variable ``name``; ``default`` when it is unset or blank.

    Raises `llmlab.errors.ConfigurationError` naming the variable when it holds anything else.
    """
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    flag = parse_bool(raw)
    if flag is None:
        raise ConfigurationError(f"{name} must be {SPELLINGS}, got {raw!r}")
    return flag
