"""The dashboard blueprint: the page, its locally served assets, its headers and its auth.

The page's behaviour in a browser is proven by ``tests/e2e/test_dashboard_browser.py``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from llmlab_server import create_app
from llmlab_server.config import TestConfig
from llmlab_server.dashboard import CSP, plotly_css, style_guards

from .helpers import Api

STATIC = Path(__file__).resolve().parents[2] / "server" / "llmlab_server" / "static" / "dashboard"
TEMPLATE = STATIC.parents[1] / "templates" / "dashboard.html"
PAGES_TEMPLATE = TEMPLATE.with_name("dashboard_pages.html")
MODULES = sorted((STATIC / "js").glob("*.js"))


def _scripts() -> dict[str, str]:
    """Every script of the page by name: the entry module and the modules it imports."""
    files = [STATIC / "dashboard.js", *MODULES]
    return {f.name: f.read_text(encoding="utf-8") for f in files}


@pytest.fixture
def page_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty SQLite file: the page and assets never touch the database."""
    config = TestConfig()
    config.DATABASE_URL = f"sqlite:///{tmp_path / 'unused.db'}"
    application = create_app(config)
    yield application
    application.extensions["llmlab_db"][0].dispose()


@pytest.fixture
def web(page_app: Flask) -> FlaskClient:
    """A test client of ``page_app``."""
    return page_app.test_client()


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/dashboard/assets/[^"]+)"', html)


def _plotly_file() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


class TestPage:
    """``GET /``: a static shell with a strict CSP."""

    def test_page_is_served_without_login(self, web: FlaskClient) -> None:
        """The page is public HTML (it holds no data) and is revalidated on every visit."""
        response = web.get("/")
        assert response.status_code == 200 and response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert 'id="login-form"' in html and 'id="chart-timeseries"' in html
        assert response.headers["Cache-Control"] == "no-cache"
        assert "Set-Cookie" not in response.headers

    def test_csp_allows_only_self(self, web: FlaskClient) -> None:
        """The CSP names no source but 'self' and forbids inline code, eval, frames and plugins."""
        response = web.get("/")
        csp = response.headers["Content-Security-Policy"]
        assert csp == CSP
        sources = {s for d in csp.split(";") for s in d.split()[1:]}
        assert sources == {"'self'", "'none'"}
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"

    def test_page_loads_nothing_from_other_hosts_and_has_no_inline_code(self, web: FlaskClient
                                                                       ) -> None:
        """Every script and stylesheet is a local versioned asset; no inline script or style."""
        html = web.get("/").get_data(as_text=True)
        assert "http://" not in html and "https://" not in html
        links = re.findall(r'(?:href|src)="([^"]*)"', html)
        # The in-page links (``?``, ``?view=keys``: views of this page) stay here; the rest
        # are assets.
        assets = [u for u in links if not u.startswith("?")]
        assert assets and all(u.startswith("/dashboard/assets/") for u in assets)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert "<style" not in html and " style=" not in html and "javascript:" not in html
        urls = _asset_urls(html)
        assert len(urls) == 5 and all(re.search(r"\?v=[0-9a-f]{12}$", u) for u in urls)

    def test_plotly_inline_styles_are_pre_empted(self, web: FlaskClient) -> None:
        """plotly.js finds its stylesheet (and the maplibre guard) and injects no <style>."""
        html = web.get("/").get_data(as_text=True)
        assert re.search(r'<link rel="stylesheet" id="plotly\.js-style-global" '
                         r'class="no-inline-styles" href="/dashboard/assets/plotly\.css\?v=', html)
        for guard in style_guards():
            assert f'id="{guard}"' in html

    def test_script_is_an_es_module(self, web: FlaskClient) -> None:
        """dashboard.js is loaded as a module (deferred, after plotly.js, no build step)."""
        html = web.get("/").get_data(as_text=True)
        assert re.search(r'<script type="module" src="/dashboard/assets/dashboard\.js\?v=', html)
        assert html.index("plotly.min.js") < html.index("dashboard.js?v=")

    def test_assets_are_documented_in_openapi(self, web: FlaskClient) -> None:
        """The page and its assets are declared operations (tag ``dashboard``, no auth)."""
        paths = web.get("/api/openapi.json").get_json()["paths"]
        for path in ("/", "/dashboard/assets/plotly.min.js", "/dashboard/assets/plotly.css",
                     "/dashboard/assets/dashboard.js", "/dashboard/assets/dashboard.css",
                     "/dashboard/assets/js/{name}"):
            assert paths[path]["get"]["tags"] == ["dashboard"]
            assert paths[path]["get"]["security"] == []


class TestAssets:
    """Assets are served from this server: plotly.js from the installed package."""

    def test_plotly_is_the_installed_package_file(self, web: FlaskClient) -> None:
        """``plotly.min.js`` is byte for byte the file shipped in the ``plotly`` package."""
        response = web.get("/dashboard/assets/plotly.min.js")
        assert response.status_code == 200 and response.mimetype == "text/javascript"
        assert response.data == _plotly_file().read_bytes()
        assert b"plotly.js v" in response.data[:200]

    def test_versioned_urls_are_cached_for_a_year(self, web: FlaskClient) -> None:
        """The URL the page uses is immutable for a year; an unversioned one revalidates."""
        for url in _asset_urls(web.get("/").get_data(as_text=True)):
            response = web.get(url)
            assert response.status_code == 200, url
            assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert response.headers["Content-Security-Policy"] == CSP
            bare = web.get(url.split("?")[0])
            assert bare.headers["Cache-Control"] == "no-cache" and bare.data == response.data

    def test_gzip_when_accepted(self, web: FlaskClient) -> None:
        """With ``Accept-Encoding: gzip`` plotly.js is sent compressed (≈ 1.4 MB, not 4.8)."""
        plain = web.get("/dashboard/assets/plotly.min.js").data
        response = web.get("/dashboard/assets/plotly.min.js", headers={"Accept-Encoding": "gzip"})
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        assert len(response.data) < len(plain) / 2
        assert gzip.decompress(response.data) == plain

    def test_etag_revalidation(self, web: FlaskClient) -> None:
        """A revalidation with the ETag answers 304 without a body."""
        first = web.get("/dashboard/assets/dashboard.js")
        again = web.get("/dashboard/assets/dashboard.js",
                        headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""

    def test_plotly_stylesheet_is_extracted_from_the_bundle(self, web: FlaskClient) -> None:
        """plotly.css holds the rules plotly.js would have injected (positioning, hover, modebar)."""
        css = web.get("/dashboard/assets/plotly.css").get_data(as_text=True)
        assert ".js-plotly-plot .plotly .main-svg{position:absolute;" in css
        assert ".js-plotly-plot .plotly .modebar{" in css
        assert ".plotly-notifier" in css
        assert css.count("{") == css.count("}") >= 40
        assert plotly_css("no table here") == ""

    def test_own_assets_are_served(self, web: FlaskClient) -> None:
        """dashboard.js and dashboard.css are the files of the package."""
        js = web.get("/dashboard/assets/dashboard.js")
        css = web.get("/dashboard/assets/dashboard.css")
        assert js.mimetype == "text/javascript" and js.data == (STATIC / "dashboard.js").read_bytes()
        assert css.mimetype == "text/css" and css.data == (STATIC / "dashboard.css").read_bytes()
        icon = web.get("/dashboard/assets/favicon.svg")
        assert icon.mimetype == "image/svg+xml" and icon.data == (STATIC / "favicon.svg").read_bytes()


    def test_modules_are_served(self, web: FlaskClient) -> None:
        """Each module under ``static/dashboard/js/`` is served as JavaScript with the CSP and
        revalidated by ETag (its URL carries no version)."""
        assert len(MODULES) >= 8
        for path in MODULES:
            response = web.get(f"/dashboard/assets/js/{path.name}")
            assert response.status_code == 200 and response.mimetype == "text/javascript"
            assert response.data == path.read_bytes()
            assert response.headers["Cache-Control"] == "no-cache" and response.headers["ETag"]
            assert response.headers["Content-Security-Policy"] == CSP

    def test_module_route_serves_only_module_names(self, web: FlaskClient) -> None:
        """Anything but a plain ``name.js`` of the folder is a 404 (no traversal, no other type)."""
        for name in ("missing.js", "..%2Fdashboard.css", "api.css", "API.js", "api.js.map",
                     "%2E%2E%2Fdashboard.js"):
            assert web.get(f"/dashboard/assets/js/{name}").status_code == 404, name

    def test_every_import_resolves_to_a_served_module(self, web: FlaskClient) -> None:
        """The module graph is complete: each ``import ... from "./x.js"`` names a served file."""
        for name, code in _scripts().items():
            base = "/dashboard/assets/" + ("" if name == "dashboard.js" else "js/")
            for target in re.findall(r'from "(\./[^"]+)"', code):
                url = base + target[2:]
                assert web.get(url).status_code == 200, (name, target)


class TestSafety:
    """The scripts render data as text and keep tokens out of URLs."""

    def test_script_never_parses_html_or_evaluates_strings(self) -> None:
        """No innerHTML/outerHTML/insertAdjacentHTML/document.write/eval/new Function."""
        for name, js in _scripts().items():
            code = "\n".join(line for line in js.splitlines() if not line.strip().startswith("//"))
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                         "eval(", "new Function", "setTimeout(\""):
                assert sink not in code, (name, sink)
        assert "textContent" in _scripts()["dom.js"]

    def test_local_storage_holds_the_theme_only(self) -> None:
        """localStorage (which outlives the tab) is touched by theme.js alone, for one key."""
        for name, js in _scripts().items():
            if name != "theme.js":
                assert "localStorage" not in js, name
        theme = _scripts()["theme.js"]
        assert set(re.findall(r"localStorage\.\w+\(([^,)]*)", theme)) == {"KEY"}
        assert 'const KEY = "llmlab.theme";' in theme

    def test_tokens_travel_in_headers_only(self) -> None:
        """The token goes in ``Authorization`` and ``sessionStorage``, never in a URL or cookie."""
        api = _scripts()["api.js"]
        assert "Authorization: `Bearer ${sessionStorage.getItem(KEYS.access)" in api
        assert 'credentials: "omit"' in api
        for name, js in _scripts().items():
            assert not re.search(r"searchParams\.set\([^)]*token", js), name
            assert "document.cookie" not in js, name
        # The view's state in the URL never includes a credential.
        assert "token" not in _scripts()["url-state.js"].lower()

    def test_template_has_no_unescaped_output(self) -> None:
        """The templates print nothing with ``|safe`` (autoescape stays on)."""
        for template in (TEMPLATE, PAGES_TEMPLATE):
            assert "|safe" not in template.read_text(encoding="utf-8").replace(" ", "")

    def test_every_api_call_is_a_documented_authenticated_route(self, web: FlaskClient) -> None:
        """Each route the scripts call (reads and writes) is in the OpenAPI document and needs
        a bearer token, except redeeming a mailed verification token: the page adds no
        unscoped read."""
        spec = web.get("/api/openapi.json").get_json()
        routes = {re.sub(r"\{[^}]+\}", "{}", path): ops for path, ops in spec["paths"].items()}
        calls = set()
        for name, js in _scripts().items():
            for match in re.finditer(r'(request|send)\(\s*(?:"([A-Z]+)",\s*)?([`"])(/api/[^`"]*)\3', js):
                method = (match.group(2) or "GET").lower()
                calls.add((name, method, re.sub(r"\$\{[^}]+\}", "{}", match.group(4))))
        assert len(calls) > 30
        for name, method, path in sorted(calls):
            assert path in routes and method in routes[path], (name, method, path)
            if path != "/api/auth/verify-email":
                assert routes[path][method]["security"] == [{"bearer": []}], (name, method, path)

    def test_every_form_control_has_a_label(self) -> None:
        """Inputs and selects of both templates are inside a <label> or carry aria-label."""
        for template in (TEMPLATE, PAGES_TEMPLATE):
            html = template.read_text(encoding="utf-8")
            inside = [(label.start(), label.end())
                      for label in re.finditer(r"<label\b.*?</label>", html, re.S)]
            assert inside
            for control in re.finditer(r"<(input|select)\b[^>]*>", html):
                named = "aria-label=" in control.group(0)
                wrapped = any(a < control.start() < b for a, b in inside)
                assert named or wrapped, (template.name, control.group(0))


class TestAuth:
    """The page is a shell; every number it shows comes from the authenticated API."""

    def test_data_routes_the_page_calls_need_a_token(self, api: Api) -> None:
        """Without a bearer token the API the page calls answers 401."""
        for path in ("/api/projects", "/api/costs/summary", "/api/costs/timeseries",
                     "/api/events", "/api/costs/export"):
            assert api.call("GET", path).status_code == 401, path

    def test_login_refresh_and_reads_work_as_the_page_does_them(self, api: Api) -> None:
        """Login, then a summary, timeseries and export with the JWT; refresh rotates tokens."""
        session = api.signup(password="correct horse battery")
        login = api.data("POST", "/api/auth/login", json_body={
            "email": session["user"]["email"], "password": "correct horse battery"})
        token = login["access_token"]
        project = api.project(token)
        query = f"?project={project['id']}&tz=Europe/Paris&start=2026-11-01&end=2026-11-08"
        summary = api.data("GET", f"/api/costs/summary{query}&group_by=model", token)
        assert summary["source"] == "rollups"  # whole-hour zone and range: the rollup table
        series = api.data("GET", f"/api/costs/timeseries{query}&interval=day", token)
        assert len(series["points"]) == 7
        export = api.call("GET", f"/api/costs/export{query}", token)
        assert export.status_code == 200 and export.mimetype == "text/csv"
        fresh = api.data("POST", "/api/auth/refresh",
                         json_body={"refresh_token": login["refresh_token"]})
        assert fresh["access_token"] and fresh["refresh_token"] != login["refresh_token"]

    def test_another_users_project_is_invisible(self, api: Api) -> None:
        """The project picker's source lists only the caller's projects; others' data is 404."""
        alice, bob = api.tenant(), api.tenant()
        mine = api.data("GET", "/api/projects", bob.token)
        assert [p["id"] for p in mine] == [bob.project_id]
        response = api.call("GET", f"/api/costs/summary?project={alice.project_id}", bob.token)
        assert response.status_code == 404
