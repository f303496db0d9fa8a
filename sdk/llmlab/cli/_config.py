"""The CLI's settings: flags, the CLI's own environment, and ``$LLMLAB_HOME/config.toml``.

Precedence, highest first: the command-line flag, the environment variable, the file::

    setting    flag        environment            config.toml
    base_url   --url       LLMLAB_BASE_URL        base_url
    api_key    --api-key   LLMLAB_CLI_API_KEY     api_key
    project    --project   LLMLAB_PROJECT         project

The server URL and the project are shared with the app (they name the same server and the
same project). The key is not: an app's ``LLMLAB_API_KEY`` is an ingest-only key that cannot
read costs, so the CLI never reads it — in the app's shell it keeps using its own key.

``llmlab init`` and ``llmlab login`` write the file (mode 0600: it holds API keys)::

    base_url = "http://127.0.0.1:8000"
    api_key = "llm_…"        # the CLI's key: scopes admin (reads, budgets) — keep it private
    project = "support-bot"  # the default project (slug)
    ingest_key = "llm_…"     # an ingest-only key for your app's LLMLAB_API_KEY
    email = "me@example.com"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmlab._paths import home_dir

__all__ = ["ENV", "FLAGS", "KEYS", "ConfigFileError", "Settings", "config_path", "load_file",
           "resolve", "save_file"]

#: Keys of the config file, in the order they are written.
KEYS = ("base_url", "api_key", "project", "ingest_key", "email")
#: The command-line flag of each setting that has one.
FLAGS = {"base_url": "--url", "api_key": "--api-key", "project": "--project"}
#: The environment variable of each setting that has one (never the app's LLMLAB_API_KEY).
ENV = {"base_url": "LLMLAB_BASE_URL", "api_key": "LLMLAB_CLI_API_KEY",
       "project": "LLMLAB_PROJECT"}


class ConfigFileError(ValueError):
    """The config file exists but cannot be read."""


def config_path() -> Path:
    """``$LLMLAB_HOME/config.toml``."""
    return home_dir() / "config.toml"


def load_file(path: Path | None = None) -> dict[str, str]:
    """The config file's settings (empty when there is no file)."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"{path} is not valid TOML: {exc}") from exc
    return {k: str(v) for k, v in data.items() if k in KEYS and v is not None}


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def save_file(values: dict[str, Any], path: Path | None = None) -> Path:
    """Merge ``values`` into the config file (None removes a key); mode 0600."""
    path = path or config_path()
    current = load_file(path) if path.exists() else {}
    for key, value in values.items():
        if key not in KEYS:
            raise KeyError(key)
        if value is None:
            current.pop(key, None)
        else:
            current[key] = str(value)
    lines = ["# llmlab CLI settings (written by `llmlab init` / `llmlab login`)."]
    lines += [f"{key} = {_toml_string(current[key])}" for key in KEYS if key in current]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


@dataclass
class Settings:
    """The resolved connection settings, and where each came from: the flag (``--url``), the
    environment variable's name, or the config file's path (``llmlab status`` shows them)."""

    base_url: str | None = None
    api_key: str | None = None
    project: str | None = None
    ingest_key: str | None = None
    email: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    path: Path = field(default_factory=config_path)


def resolve(flags: dict[str, str | None] | None = None, path: Path | None = None) -> Settings:
    """Flags over the CLI's environment over the file."""
    path = path or config_path()
    settings = Settings(path=path)
    given = {k: v for k, v in (flags or {}).items() if v}
    from_file = load_file(path)
    for key in KEYS:
        layers = [(FLAGS.get(key), given.get(key)),
                  (ENV.get(key), os.environ.get(ENV[key]) if key in ENV else None),
                  (str(path), from_file.get(key))]
        for source, value in layers:
            if source and value:
                setattr(settings, key, value)
                settings.sources[key] = source
                break
    return settings
