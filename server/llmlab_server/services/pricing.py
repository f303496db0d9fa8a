"""The pricing catalogue as served by ``GET /api/models/pricing`` (a searchable list) and
``GET /api/pricing/catalogue`` (the whole catalogue, for SDKs to price with).

The server prices with `llmlab.pricing.Catalogue.default`: the bundled catalogue, the user
catalogue written by ``llmlab server pricing update`` (``$LLMLAB_PRICING_CATALOGUE``, else
``$LLMLAB_HOME/catalogue.json``) and the host's ``pricing.toml`` overrides. Running processes
notice a new user catalogue within `RELOAD_CHECK_SECONDS`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from pathlib import Path

from llmlab.pricing import Catalogue
from llmlab.pricing._overrides import user_catalogue_path
from llmlab_server.schemas import ModelPricing, PricingList, PricingQuery

__all__ = ["catalogue_payload", "etag_matches", "list_pricing", "reload_if_changed"]


def list_pricing(query: PricingQuery) -> PricingList:
    """Current standard-tier prices of the catalogue's models matching the query."""
    catalogue = Catalogue.default()
    needle = (query.q or "").strip().lower()
    matches = []
    for key, model in sorted(catalogue.models.items()):
        if query.provider and model.provider != query.provider.lower():
            continue
        if query.mode and model.mode != query.mode.lower():
            continue
        if needle and needle not in key.lower():
            continue
        card = model.period_at(None).card("standard", 0)
        matches.append(ModelPricing(
            key=key, provider=model.provider, name=model.name, mode=model.mode,
            max_input_tokens=model.max_input_tokens, max_output_tokens=model.max_output_tokens,
            per_million=card.per_million()))
    return PricingList(pricing_version=catalogue.pricing_version, count=len(matches),
                       models=matches[:query.limit])


# -- the catalogue served to SDKs (GET /api/pricing/catalogue) ---------------------------------

#: How often a server process checks whether ``llmlab server pricing update`` wrote a new
#: catalogue (a stat of one file; every process and gunicorn worker picks it up by itself).
RELOAD_CHECK_SECONDS = 10.0

_served: tuple[Catalogue, dict[bool, tuple[bytes, str]]] | None = None
_seen: tuple[float, tuple[int, int] | None] = (0.0, None)
_lock = threading.Lock()


def catalogue_payload(gzipped: bool = False) -> tuple[bytes, str]:
    """The JSON of the catalogue this server prices with (gzip-compressed when ``gzipped``)
    and its strong ETag (one per content coding, as RFC 9110 8.8.3 asks)."""
    global _served
    catalogue = Catalogue.default()
    served = _served
    if served is None or served[0] is not catalogue:
        with _lock:
            served = _served
            if served is None or served[0] is not catalogue:
                body = json.dumps(catalogue.to_dict(), sort_keys=True,
                                  separators=(",", ":")).encode()
                tag = hashlib.sha256(body).hexdigest()[:40]
                served = _served = (catalogue, {
                    False: (body, f'"{tag}"'),
                    True: (gzip.compress(body, 6, mtime=0), f'"{tag}-gzip"')})
    return served[1][gzipped]


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def reload_if_changed(now: float | None = None) -> bool:
    """Reload the catalogue when the user catalogue file changed (checked every few seconds);
    True when it was reloaded."""
    global _seen
    now = time.monotonic() if now is None else now
    checked, stamp = _seen
    if now - checked < RELOAD_CHECK_SECONDS:
        return False
    current = _stamp(user_catalogue_path())
    _seen = (now, current)
    if checked == 0.0 or current == stamp:
        return False
    Catalogue.reset_default()
    return True
