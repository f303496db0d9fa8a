"""The web dashboard: a page at ``/`` and its assets, all served by this server (no CDN).

The page is a static shell; its script (an ES module, ``dashboard.js``, importing one module per
concern from ``static/dashboard/js/``) logs in through ``/api/auth/login``, keeps the tokens in
``sessionStorage`` and draws everything from the JSON API (the rollup-backed summaries first).
No build step: the browser loads the modules as they are.
Charts are drawn by plotly.js, served from the installed ``plotly`` package. Every response of
this blueprint carries a Content-Security-Policy allowing only ``'self'``: no inline script or
style, so plotly's own stylesheet is served as a file (`plotly_css`) instead of being injected.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request, url_for

from llmlab_server.openapi import operation

__all__ = ["CSP", "Asset", "bp", "plotly_css"]

bp = Blueprint("dashboard", __name__)

#: Only this origin: scripts, styles, fetches, images; no frames, plugins or foreign forms.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"
_YEAR = 365 * 24 * 3600
#: The page's own modules: plain names only (no path, no traversal).
_MODULE = re.compile(r"^[a-z][a-z0-9-]{0,40}\.js$")
# plotly.js keeps its stylesheet as a table of rules it inserts at load time (blocked by CSP);
# ``X`` stands for the plot's selector and ``Y`` for the notifier's (its build/plotcss.js).
_RULES = re.compile(r"""(?:"([^"]*)"|'([^']*)'):(?:"([^"]*)"|'([^']*)')""")
# Bundled libraries that inject a <style> unless an element with a given id exists (maplibre).
_GUARDED_STYLE = re.compile(
    r'getElementById\("([0-9A-Za-z_-]{8,80})"\)\)\{var (\w+)=document\.createElement\("style"\)')


@dataclass(frozen=True)
class Asset:
    """A file of the dashboard, kept in memory with its gzip form and a content version."""

    body: bytes
    mimetype: str

    @functools.cached_property
    def gzipped(self) -> bytes:
        """The body, gzip-compressed (plotly.js: 4.8 MB → 1.4 MB)."""
        return gzip.compress(self.body, compresslevel=6, mtime=0)

    @functools.cached_property
    def version(self) -> str:
        """A short hash of the body: part of the URL, so the file can be cached for a year."""
        return hashlib.sha256(self.body).hexdigest()[:12]


def _plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def plotly_css(js: str) -> str:
    """plotly.js's stylesheet, extracted from the rule table in its bundle.

    >>> plotly_css('{"X .crisp":"shape-rendering:crispEdges;"};for(x in y)')
    '.js-plotly-plot .plotly .crisp{shape-rendering:crispEdges;}\\n'
    """
    start = js.find('{"X,X div":')
    if start < 0:
        start = js.find('{"X .crisp":')
    if start < 0:
        return ""
    table = js[start:js.index("};", start)]
    out = []
    for key_dq, key_sq, val_dq, val_sq in _RULES.findall(table):
        selector = (key_dq or key_sq)
        selector = re.sub(r"^,", " ,", selector).replace("X", ".js-plotly-plot .plotly")
        selector = selector.replace("Y", ".plotly-notifier")
        out.append(f"{selector}{{{val_dq or val_sq}}}\n")
    return "".join(out)


@functools.cache
def style_guards() -> tuple[str, ...]:
    """Ids that stop plotly.js's bundled libraries from injecting inline ``<style>`` elements.

    Maps (maplibre) are the only such library and the dashboard draws none, so an empty element
    with the id is enough: their stylesheet is not needed, and the CSP stays strict.
    """
    try:
        js = _plotly_js_path().read_text(encoding="utf-8")
    except (FileNotFoundError, ImportError):
        return ()
    return tuple(dict.fromkeys(m.group(1) for m in _GUARDED_STYLE.finditer(js)))


@functools.cache
def _asset(name: str) -> Asset:
    if name == "plotly.min.js":
        return Asset(_plotly_js_path().read_bytes(), "text/javascript")
    if name == "plotly.css":
        css = plotly_css(_plotly_js_path().read_text(encoding="utf-8"))
        return Asset(css.encode(), "text/css")
    if name.startswith("js/") and not _MODULE.match(name[3:]):
        raise FileNotFoundError(name)
    path = _STATIC / name
    mimetype = ("text/javascript" if name.endswith(".js")
                else "image/svg+xml" if name.endswith(".svg") else "text/css")
    return Asset(path.read_bytes(), mimetype)


def _serve(name: str) -> Response:
    try:
        asset = _asset(name)
    except (FileNotFoundError, ImportError):
        abort(404)
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(asset.gzipped if gzipped else asset.body, mimetype=asset.mimetype)
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    # Versioned URLs (``?v=<hash>``) never change content; unversioned ones revalidate.
    response.headers["Cache-Control"] = (f"public, max-age={_YEAR}, immutable"
                                         if request.args.get("v") == asset.version
                                         else "no-cache")
    response.set_etag(asset.version + ("-gz" if gzipped else ""))
    response.make_conditional(request)  # 304 in place when the ETag matches
    return response


def asset_url(name: str) -> str:
    """The versioned URL of a dashboard asset."""
    endpoint = {"plotly.min.js": "dashboard.plotly_js", "plotly.css": "dashboard.plotly_stylesheet",
                "dashboard.js": "dashboard.script", "dashboard.css": "dashboard.stylesheet",
                "favicon.svg": "dashboard.favicon"}[name]
    return url_for(endpoint, v=_asset(name).version)


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.get("/")
@operation(tag="dashboard", auth="none", media_type="text/html")
def index() -> Response:
    """The dashboard page (log in with an account of this server)."""
    html = render_template("dashboard.html", asset_url=asset_url, style_guards=style_guards())
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/dashboard/assets/plotly.min.js")
@operation(tag="dashboard", auth="none", media_type="text/javascript")
def plotly_js() -> Response:
    """plotly.js, from the installed ``plotly`` package (cached a year when versioned)."""
    return _serve("plotly.min.js")


@bp.get("/dashboard/assets/plotly.css")
@operation(tag="dashboard", auth="none", media_type="text/css")
def plotly_stylesheet() -> Response:
    """plotly.js's stylesheet as a file, so the page needs no inline styles."""
    return _serve("plotly.css")


@bp.get("/dashboard/assets/dashboard.js")
@operation(tag="dashboard", auth="none", media_type="text/javascript")
def script() -> Response:
    """The dashboard's script."""
    return _serve("dashboard.js")


@bp.get("/dashboard/assets/dashboard.css")
@operation(tag="dashboard", auth="none", media_type="text/css")
def stylesheet() -> Response:
    """The dashboard's stylesheet."""
    return _serve("dashboard.css")


@bp.get("/dashboard/assets/favicon.svg")
@operation(tag="dashboard", auth="none", media_type="image/svg+xml")
def favicon() -> Response:
    """The page's icon."""
    return _serve("favicon.svg")


@bp.get("/dashboard/assets/js/<name>")
@operation(tag="dashboard", auth="none", media_type="text/javascript", errors=(404,))
def module(name: str) -> Response:
    """One of the modules ``dashboard.js`` imports (revalidated with its ETag)."""
    return _serve(f"js/{name}")
