"""Integrations with provider SDKs: one module per library, each installed once.

Each integration patches class methods of its library with wrapt (`setup_once`), can undo it
(`teardown`), and can instrument a single client instance (`wrap_client`). A library that is
not installed, or too old, raises `DidNotEnable` and is skipped.
"""

from __future__ import annotations

import importlib
import logging
import threading
from abc import ABC
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

import wrapt

__all__ = [
    "INTEGRATIONS",
    "DidNotEnable",
    "Integration",
    "installed",
    "instrument",
    "uninstrument",
    "wrap_client",
]

logger = logging.getLogger("llmlab")

#: Integration identifier → "module:Class"; imported only when asked for.
INTEGRATIONS: dict[str, str] = {
    "openai": "llmlab.integrations.openai:OpenAIIntegration",
    "openai_media": "llmlab.integrations.openai_media:OpenAIMediaIntegration",
    "anthropic": "llmlab.integrations.anthropic:AnthropicIntegration",
    "google_genai": "llmlab.integrations.google_genai:GoogleGenAIIntegration",
    "google_genai_media": "llmlab.integrations.google_genai_media:GoogleGenAIMediaIntegration",
    "google_generativeai": "llmlab.integrations.google_generativeai:GoogleGenerativeAIIntegration",
    "litellm": "llmlab.integrations.litellm:LiteLLMIntegration",
    "dspy": "llmlab.integrations.dspy:DSPyIntegration",
}
_ALIASES = {"google-genai": "google_genai", "google-generativeai": "google_generativeai",
            "genai": "google_genai", "generativeai": "google_generativeai"}
#: Integrations a library's name brings along: ``instrument("openai")`` records every call of
#: the openai package, its images and audio endpoints included (each stays nameable alone).
_COMPANIONS = {"openai": ("openai_media",), "google_genai": ("google_genai_media",)}

_LOCK = threading.Lock()
_INSTALLED: dict[str, Integration] = {}
#: Enabled, waiting for the application to import the library.
_PENDING: set[str] = set()


class DidNotEnable(Exception):
    """The integration's library is missing or unsupported; it is skipped."""


class Integration(ABC):
    """Base of every provider integration."""

    identifier: ClassVar[str]
    #: The module whose import triggers the patching.
    module: ClassVar[str]
    #: The distribution name, the oldest version tested and the first release not supported
    #: (None: no upper bound). An installed release outside the range is warned about once.
    distribution: ClassVar[str]
    min_version: ClassVar[tuple[int, ...]]
    max_version: ClassVar[tuple[int, ...] | None] = None

    def __init__(self) -> None:
        self._patches: list[tuple[Any, str, Any]] = []

    @classmethod
    def check_version(cls) -> None:
        """Raise `DidNotEnable` unless a supported version of the library is installed
        (`UnsupportedVersion`, a subclass, when it is installed outside the range)."""
        from llmlab.integrations import _versions

        _versions.check(cls.distribution, cls.min_version, cls.max_version)

    def _targets(self) -> list[tuple[Any, str, Any, bool]]:
        """(class, method name, `CallSpec`, is_async) for each method the default
        `setup_once` patches."""
        raise DidNotEnable(f"{type(self).__name__} declares no methods to patch")

    def _wrapper(self, spec: Any, is_async: bool) -> Any:
        """The wrapt wrapper recording calls described by ``spec``."""
        from llmlab.integrations._common import async_wrapper, sync_wrapper

        return async_wrapper(spec) if is_async else sync_wrapper(spec)

    def setup_once(self) -> None:
        """Patch the library's classes (called once per process, under a lock)."""
        for owner, name, spec, is_async in self._targets():
            self.patch(owner, name, self._wrapper(spec, is_async))

    def patch(self, owner: Any, name: str, wrapper: Any) -> None:
        """Wrap ``owner.name`` with a wrapt ``wrapper``, remembering how to undo it."""
        original = owner.__dict__.get(name)
        if original is None:
            raise DidNotEnable(f"{owner.__qualname__}.{name} does not exist in this version")
        setattr(owner, name, wrapt.FunctionWrapper(original, wrapper))
        self._patches.append((owner, name, original))

    def teardown(self) -> None:
        """Undo every patch, newest first."""
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)

    def wrap_client(self, client: Any) -> bool:
        """Instrument one client instance; False when ``client`` is not of this library."""
        return False


def _load(identifier: str) -> type[Integration]:
    target = INTEGRATIONS[identifier]
    module_name, _, class_name = target.partition(":")
    cls: type[Integration] = getattr(importlib.import_module(module_name), class_name)
    return cls


def _normalise(names: tuple[str, ...]) -> list[str]:
    wanted = [_ALIASES.get(n.lower(), n.lower().replace("-", "_")) for n in names] or list(INTEGRATIONS)
    wanted = list(dict.fromkeys(w for name in wanted for w in (name, *_COMPANIONS.get(name, ()))))
    unknown = [n for n in wanted if n not in INTEGRATIONS]
    if unknown:
        from llmlab.errors import ConfigurationError

        raise ConfigurationError(f"unknown integration(s) {unknown}; one of {list(INTEGRATIONS)}")
    return wanted


def instrument(*names: str) -> list[str]:
    """Patch every installed supported library (or the named ones), once; returns those enabled.

    A library that is installed but not imported yet is patched the moment the application
    imports it (a post-import hook), so `init()` never imports a provider SDK itself (nor
    triggers its import-time warnings). Explicitly named libraries that are missing are logged
    as warnings; with no names, missing libraries are skipped quietly.
    """
    enabled: list[str] = []
    with _LOCK:
        for identifier in _normalise(names):
            if identifier in _INSTALLED or identifier in _PENDING:
                enabled.append(identifier)
                continue
            try:
                cls = _load(identifier)
                cls.check_version()
            except (DidNotEnable, ImportError) as exc:
                if _report_unsupported(identifier, exc):
                    continue
                (logger.warning if names else logger.debug)("llmlab: %s not instrumented: %s",
                                                             identifier, exc)
                continue
            _PENDING.add(identifier)
            enabled.append(identifier)
    for identifier in enabled:
        if identifier not in _INSTALLED:
            wrapt.register_post_import_hook(_hook_for(identifier), _load(identifier).module)
    return enabled


def _report_unsupported(identifier: str, exc: Exception) -> bool:
    """Warn (once) when ``exc`` says the library is installed in an unsupported release."""
    from llmlab.integrations import _versions

    if isinstance(exc, _versions.UnsupportedVersion):
        _versions.warn_unsupported(identifier, exc)
        return True
    return False


def _hook_for(identifier: str) -> Callable[[ModuleType], None]:
    def hook(_module: ModuleType) -> None:
        _setup(identifier)

    return hook


def _setup(identifier: str) -> None:
    """Patch one library now that it is imported (called by its post-import hook)."""
    with _LOCK:
        if identifier not in _PENDING:  # uninstrumented meanwhile, or already set up
            return
        _PENDING.discard(identifier)
        try:
            integration = _load(identifier)()
            integration.setup_once()
        except (DidNotEnable, ImportError) as exc:
            logger.warning("llmlab: %s not instrumented: %s", identifier, exc)
            return
        _INSTALLED[identifier] = integration


def uninstrument(*names: str) -> None:
    """Undo `instrument` (for every library, or the named ones)."""
    with _LOCK:
        for identifier in _normalise(names):
            _PENDING.discard(identifier)
            integration = _INSTALLED.pop(identifier, None)
            if integration is not None:
                integration.teardown()


def installed() -> list[str]:
    """Identifiers of the integrations currently patched in (imported libraries only)."""
    return sorted(_INSTALLED)


def wrap_client(client: Any) -> Any:
    """Instrument one client instance of any supported library; returns the client."""
    from llmlab.errors import ConfigurationError

    module = type(client).__module__.split(".")[0]
    candidates = {"openai": ["openai"], "anthropic": ["anthropic"],
                  "google": ["google_genai", "google_generativeai"]}.get(module, [])
    for identifier in candidates:
        try:
            cls = _load(identifier)
            cls.check_version()
        except (DidNotEnable, ImportError) as exc:
            _report_unsupported(identifier, exc)
            continue
        if cls().wrap_client(client):
            return client
    raise ConfigurationError(f"llmlab.wrap() does not know clients of type {type(client).__name__}")
