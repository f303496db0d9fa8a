"""Built-in (server-side) tools billed per use: their kinds, and readers of provider responses.

A call's tool uses are counts per kind (``{"web_search": 5}``), part of its normalised
`llmlab.usage.Usage` and priced by the catalogue (docs/pricing.md, "Tools"). Kinds:

- ``web_search``: Anthropic ``usage.server_tool_use.web_search_requests``, OpenAI Responses
  ``web_search_call`` items, Gemini ``grounding_metadata.web_search_queries``;
- ``web_fetch``: Anthropic ``server_tool_use.web_fetch_requests``;
- ``code_execution``: Anthropic ``server_tool_use.code_execution_requests`` when reported;
- ``file_search``: OpenAI ``file_search_call`` items;
- ``code_interpreter``: OpenAI code interpreter containers (distinct ``container_id``);
- ``image_generation:<model>:<quality>:<size>``: OpenAI image generation tool calls;
- ``maps_grounding``: Gemini grounding with Google Maps (one per grounded response).
- ``image:<quality>:<size>`` / ``image``, ``speech_characters``, ``audio_seconds``: units of
  the images and audio endpoints (`llmlab.pricing._media_prices`).

>>> checked_tools({"web_search": 2, "file_search": 0})
{'web_search': 2}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from llmlab.errors import UsageError

__all__ = ["MAX_TOOL_KINDS", "MAX_TOOL_USES", "NO_TOOLS", "TOOL_KIND_PATTERN", "ToolCounts",
           "checked_tools",
           "gemini_tools", "merge_tools", "openai_response_tools", "server_tool_use"]

WEB_SEARCH, WEB_FETCH, CODE_EXECUTION = "web_search", "web_fetch", "code_execution"
FILE_SEARCH, CODE_INTERPRETER = "file_search", "code_interpreter"
IMAGE_GENERATION, MAPS_GROUNDING = "image_generation", "maps_grounding"

#: More uses than this of one tool in one call are a bug upstream, not a bill.
MAX_TOOL_USES = 1_000_000
MAX_TOOL_KINDS = 32
TOOL_KIND_PATTERN = r"^[a-z][a-z0-9_]*(:[a-z0-9_.-]+)*$"
_KIND = re.compile(TOOL_KIND_PATTERN)


class ToolCounts(dict[str, int]):
    """Read-only, hashable tool counts (a dict subclass: JSON and pydantic take it as is)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("tool counts are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only


NO_TOOLS: ToolCounts = ToolCounts()

#: Anthropic ``server_tool_use`` fields → tool kinds.
_SERVER_TOOL_FIELDS = {"web_search_requests": WEB_SEARCH, "web_fetch_requests": WEB_FETCH,
                       "code_execution_requests": CODE_EXECUTION}
#: The image generation tool's model when the response does not name one (OpenAI's default).
DEFAULT_IMAGE_TOOL_MODEL = "gpt-image-1"


def checked_tools(tools: Mapping[str, Any]) -> ToolCounts:
    """``tools`` validated (kinds as in `TOOL_KIND_PATTERN`, counts 0..`MAX_TOOL_USES`), zero
    counts dropped, as a read-only mapping; raises `UsageError`."""
    if not isinstance(tools, Mapping):
        raise UsageError(f"tools must be a mapping of tool kind to count, got {tools!r}")
    if len(tools) > MAX_TOOL_KINDS:
        raise UsageError(f"at most {MAX_TOOL_KINDS} tool kinds per call, got {len(tools)}")
    out: dict[str, int] = {}
    for kind, count in tools.items():
        if not isinstance(kind, str) or len(kind) > 96 or not _KIND.match(kind):
            raise UsageError(f"tool kind {kind!r} must look like 'web_search' or "
                             "'image_generation:gpt-image-1:low:1024x1024'")
        if type(count) is not int or not 0 <= count <= MAX_TOOL_USES:
            raise UsageError(f"tools[{kind!r}] must be a count from 0 to {MAX_TOOL_USES:,}, "
                             f"got {count!r}")
        if count:
            out[kind] = count
    return ToolCounts(out) if out else NO_TOOLS


def merge_tools(*parts: Mapping[str, int]) -> dict[str, int]:
    """Counts of several calls (or sources) added per kind."""
    out: dict[str, int] = {}
    for part in parts:
        for kind, count in part.items():
            out[kind] = out.get(kind, 0) + count
    return out


def _attr(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra:
            value = extra.get(name)
    return value


def server_tool_use(value: Any) -> dict[str, int]:
    """Tool counts of an Anthropic-style ``server_tool_use`` object or dict (None: none)."""
    if value is None:
        return {}
    out: dict[str, int] = {}
    for name, kind in _SERVER_TOOL_FIELDS.items():
        count = _attr(value, name)
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            out[kind] = count
    return out


def _image_tool_model(tools: Iterable[Any] | None) -> str:
    for tool in tools or ():
        if _attr(tool, "type") == IMAGE_GENERATION:
            model = _attr(tool, "model")
            if isinstance(model, str) and model:
                return model.lower()
    return DEFAULT_IMAGE_TOOL_MODEL


def _variant(value: Any) -> str:
    text = str(value).lower() if value else "auto"
    return re.sub(r"[^a-z0-9_.-]", "", text) or "auto"


def openai_response_tools(response: Any) -> dict[str, int]:
    """Tool counts of an OpenAI Responses ``Response`` (or its JSON): one ``web_search`` per
    ``web_search_call`` item, one ``file_search`` per ``file_search_call``, one
    ``code_interpreter`` per distinct container, one ``image_generation:…`` per image."""
    output = _attr(response, "output")
    if not output:
        return {}
    out: dict[str, int] = {}
    containers: set[str] = set()
    image_model: str | None = None
    for item in output:
        kind = _attr(item, "type")
        if kind == "web_search_call":
            out[WEB_SEARCH] = out.get(WEB_SEARCH, 0) + 1
        elif kind == "file_search_call":
            out[FILE_SEARCH] = out.get(FILE_SEARCH, 0) + 1
        elif kind == "code_interpreter_call":
            containers.add(str(_attr(item, "container_id") or ""))
        elif kind == "image_generation_call" and _attr(item, "status") != "failed":
            if image_model is None:
                image_model = _image_tool_model(_attr(response, "tools"))
            key = (f"{IMAGE_GENERATION}:{_variant(image_model)}:{_variant(_attr(item, 'quality'))}"
                   f":{_variant(_attr(item, 'size'))}")
            out[key] = out.get(key, 0) + 1
    if containers:
        out[CODE_INTERPRETER] = len(containers)
    return out


def gemini_tools(response: Any) -> dict[str, int]:
    """Tool counts of a Gemini ``GenerateContentResponse`` (or its JSON): ``web_search`` per
    query in ``grounding_metadata.web_search_queries``, ``maps_grounding`` once when the
    answer is grounded with Google Maps."""
    candidates = _attr(response, "candidates")
    if not candidates:
        return {}
    searches = 0
    maps = False
    for candidate in candidates:
        meta = _attr(candidate, "grounding_metadata")
        if meta is None:
            meta = _attr(candidate, "groundingMetadata")
        if meta is None:
            continue
        queries = _attr(meta, "web_search_queries") or _attr(meta, "webSearchQueries")
        searches += len(queries or ())
        chunks = _attr(meta, "grounding_chunks") or _attr(meta, "groundingChunks") or ()
        if (_attr(meta, "google_maps_widget_context_token")
                or _attr(meta, "googleMapsWidgetContextToken")
                or any(_attr(chunk, "maps") is not None for chunk in chunks)):
            maps = True
        elif not queries and any(_attr(chunk, "web") is not None for chunk in chunks):
            searches += 1  # grounded on the web without the queries listed: one grounded prompt
    out: dict[str, int] = {}
    if searches:
        out[WEB_SEARCH] = searches
    if maps:
        out[MAPS_GROUNDING] = 1
    return out
